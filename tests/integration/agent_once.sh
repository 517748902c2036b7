#!/bin/bash
# `rackpulse-agent --once` against a real Modbus server and an address where
# nothing listens: the reachable CDU's values are in the frame, the other is
# a device status (up: false, with its address), and the agent exits 0.
source "$(dirname "$0")/lib.sh"

CDU=$(free_port)
DEAD=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 28.4, "leak": 1}'
write_agent_config "$WORK/agent.yaml" r5 "$CDU" "$DEAD"
once() {
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once >"$WORK/frame.json" \
    2>"$WORK/agent.log" || fail "--once exited non-zero"
}
# The simulator applies the control file on its next tick: wait for it.
once
for _ in $(seq 20); do
  grep -q '"value": 28.4' "$WORK/frame.json" && break
  sleep 0.25
  once
done
$PY - "$WORK/frame.json" "$DEAD" <<'PYEOF' || fail "frame is wrong: $(cat "$WORK/frame.json")"
import json, sys
f = json.load(open(sys.argv[1]))
dead = sys.argv[2]
dev = {d["device"]: d for d in f["devices"]}
assert dev["cdu1"]["up"] is True, dev
assert dev["cdu2"]["up"] is False, dev
assert f"127.0.0.1:{dead}" in dev["cdu2"]["last_error"], dev["cdu2"]
vals = {(s["device"], s["name"], s["series"]): s["value"] for s in f["samples"]}
names = {s["id"]: (s["name"], s["labels"]) for s in f["dictionary"]}
got = {(d, n): v for (d, n, sid), v in vals.items() if not names[sid][1]}
assert got[("cdu1", "cdu.supply_temp")] == 28.4, got
leak = [s["value"] for s in f["samples"]
        if s["device"] == "cdu1" and names[s["series"]][1].get("alarm") == "leak"]
assert leak == [1.0], leak
assert not any(s["device"] == "cdu2" for s in f["samples"]), "cdu2 produced samples"
assert f["encoded_bytes"] > 0 and f["rack_id"] == "r5"
# Window statistics (issue 25): scaled integers on the wire, shown as values
# with the series' decimals; the frame says their cadence (stats.every: 10).
assert f["stats_every_frames"] == 10, f.get("stats_every_frames")
st = [w for w in f["stats"] if names[w["series"]][0] == "cdu.supply_temp"]
assert st and all(w["scaled"] is True and w["count"] >= 1 for w in st), f["stats"]
sup = [s["value"] for s in f["samples"] if s["name"] == "cdu.supply_temp"]
assert all(abs(w["min"] - min(sup)) < 1e-9 and abs(w["max"] - max(sup)) < 1e-9 for w in st), (st, sup)
PYEOF
pass "--once: cdu1 values (supply 28.4, leak alarm 1); cdu2 down with its address"
