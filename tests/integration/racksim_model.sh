#!/bin/bash
# racksim's model alone (--no-devices, 100x real time, to model time 250 s): every shipped
# scenario loads and runs, and its ground truth obeys the physics at every
# publish: Q = rho cp (return - supply) flow, PDU inlets = the servers' PSU
# power + losses, phase current = P / (V PF), energy never decreases, return
# >= supply, served = true within the device resolution unless a fault is
# injected (or a reading saturates). Then each failure scenario does what
# it says: a degrading pump loses flow and raises pump_fault, a leak drains
# the reservoir with the leak alarm on, a stuck sensor stays put while the
# truth moves, a lost feed reads 0 while the other carries the load, a
# facility excursion lifts the supply above its setpoint, a training job
# swings power by about +-30 %, a job on one of two racks on a loop heats
# the other's supply. Also: a scenario with an unknown key or
# parameter is refused, naming the file.
source "$(dirname "$0")/lib.sh"

for f in "$RP_SRC"/tools/racksim/scenarios/*.yaml; do
  n=$(basename "$f" .yaml)
  $PY "$RP_SRC/tools/racksim/racksim.py" --scenario "$n" --no-devices --speed 100 --until 250 \
    --run "$WORK/$n" >"$WORK/$n.log" 2>&1 || fail "scenario $n: $(tail -3 "$WORK/$n.log")"
  [ -s "$WORK/$n/truth.jsonl" ] || fail "scenario $n: no truth"
done
pass "every scenario runs: $(ls "$RP_SRC"/tools/racksim/scenarios/ | sed 's/.yaml//' | paste -sd' ')"

$PY - "$WORK" "$RP_SRC/tools/racksim" <<'PYEOF' || fail "physics or scenario check failed (above)"
import collections, glob, json, os, sys
work, here = sys.argv[1], sys.argv[2]
sys.path.insert(0, here)
import model
K = 995.6 * 4.18 / 60000.0

def load(name):
    pubs = collections.OrderedDict()
    faults = set()
    for line in open(f"{work}/{name}/truth.jsonl"):
        r = json.loads(line)
        if r["quantity"] == "event":
            for kind in ("stuck", "drift"):
                if kind in r["event"]:
                    faults.add((r["event"][kind]["device"], r["event"][kind]["quantity"]))
            continue
        pubs.setdefault(r["t"], {}).setdefault(r["device"], {})[r["quantity"]] = r
    return pubs, faults

def scenario_params(name):
    import yaml
    doc = yaml.safe_load(open(f"{here}/scenarios/{name}.yaml"))
    p = dict(model.DEFAULTS); p.update(doc.get("rack") or {})
    return p

names = [os.path.basename(p)[:-5] for p in sorted(glob.glob(f"{here}/scenarios/*.yaml"))]
series = {}
for name in names:
    pubs, faults = load(name)
    p = scenario_params(name)
    assert len(pubs) >= 60, (name, len(pubs))
    energy = {}
    for t, d in pubs.items():
        c = d["cdu1"]; T = lambda q: c[q]["true"]
        q = d["rack"]["cdu.heat_removed"]["true"]
        assert T("cdu.return_temp") >= T("cdu.supply_temp") - 1e-9, (name, t)
        assert abs(K * (T("cdu.return_temp") - T("cdu.supply_temp")) * T("cdu.flow") - q) < 1e-3, (name, t, q)
        it = sum(d[g]["server.power{source=psu_sum}"]["true"] for g in d if "gpu" in g)
        pdus = [x for x in d if "pdu" in x]
        up = sum(1 for x in pdus if d[x]["pdu.phase.voltage{phase=1}"]["true"] > 0)
        tot = sum(d[x]["pdu.power{inlet=1}"]["true"] for x in pdus)
        assert abs(tot - (it * (1 + p["pdu_loss"]) + p["pdu_own_w"] * up)) < 0.05, (name, t, tot, it)
        for x in pdus:
            for ph in (1, 2, 3):
                v = d[x][f"pdu.phase.voltage{{phase={ph}}}"]["true"]
                a = d[x][f"pdu.phase.current{{phase={ph}}}"]["true"]
                w = d[x][f"pdu.phase.power{{phase={ph}}}"]["true"]
                assert (v == 0 and a == 0) or abs(a - w / (v * p["power_factor"])) < 1e-3, (name, t, x, ph)
            e = d[x]["pdu.energy{inlet=1}"]["true"]
            assert e >= energy.get(x, 0) - 1e-9, (name, t, x)
            energy[x] = e
        for dev, qs in d.items():
            for qn, r in qs.items():
                if r["served"] is None or (dev, qn) in faults or qn == "cdu.heat_load" and faults:
                    continue
                if qn.startswith("psu.input_power") and r["served"] >= 5100 or \
                   qn.startswith("server.power") and any(d[dev][f"psu.input_power{{psu={k}}}"]["served"] >= 5100 for k in (1, 2)):
                    continue   # the test BMC's 8-bit reading saturates
                assert abs(r["served"] - r["true"]) <= r["tol"] + 1e-6, (name, t, dev, qn, r)
    series[name] = pubs
print("physics holds at every publish of", len(names), "scenarios")

def at(name, t, dev, q, key="true"):
    pubs = series[name]
    tt = min(pubs, key=lambda x: abs(x - t))
    return pubs[tt][dev][q][key]

s = "pump-degrading"
assert at(s, 50, "cdu1", "cdu.flow") > 50 and at(s, 239, "cdu1", "cdu.flow") < 40, "flow"
assert at(s, 239, "cdu1", "cdu.alarms{alarm=pump_fault}") == 1 and at(s, 50, "cdu1", "cdu.alarms{alarm=pump_fault}") == 0
assert at(s, 239, "cdu1", "cdu.pump1_speed") > 99.9, "pump at full speed"
assert at(s, 239, "rack", "cdu.delta_t") > at(s, 50, "rack", "cdu.delta_t") + 2, "dT rises"
s = "leak"
assert at(s, 20, "cdu1", "cdu.alarms{alarm=leak}") == 0 and at(s, 100, "cdu1", "cdu.alarms{alarm=leak}") == 1
assert at(s, 199, "cdu1", "cdu.level") < at(s, 29, "cdu1", "cdu.level") - 4, "level falls"
assert at(s, 210, "cdu1", "cdu.alarms{alarm=leak}") == 0
s = "stuck-sensor"
assert at(s, 26, "cdu1", "cdu.supply_temp", "served") == at(s, 230, "cdu1", "cdu.supply_temp", "served")
assert at(s, 230, "cdu1", "cdu.supply_temp") > at(s, 26, "cdu1", "cdu.supply_temp") + 4, "true supply rises"
s = "feed-lost"
assert at(s, 80, "pdu-b", "pdu.power{inlet=1}") == 0 and at(s, 30, "pdu-b", "pdu.power{inlet=1}") > 1000
assert at(s, 80, "gpu1", "psu.input_power{psu=2}") == 0
assert abs(at(s, 80, "gpu1", "psu.input_power{psu=1}") - at(s, 80, "gpu1", "server.power{source=psu_sum}")) < 1e-6
assert at(s, 170, "pdu-b", "pdu.power{inlet=1}") > 1000, "feed back"
s = "facility-excursion"
assert at(s, 200, "cdu1", "cdu.supply_temp") > 38 and at(s, 20, "cdu1", "cdu.supply_temp") < 35
s = "shared-loop"
assert at(s, 150, "r01-rack", "rack.it_power") < 8 and at(s, 150, "r02-rack", "rack.it_power") > 25
assert at(s, 150, "cdu1", "cdu.supply_temp") > 32, "the job on sim-r02 heats the shared loop"
assert abs(at(s, 150, "rack", "rack.it_power") - at(s, 150, "r01-rack", "rack.it_power")
           - at(s, 150, "r02-rack", "rack.it_power")) < 1e-3
s = "training"
pw = [series[s][t]["rack"]["rack.it_power"]["true"] for t in series[s] if 100 <= t <= 200]
assert max(pw) > 1.25 * min(pw) and max(pw) < 2 * min(pw), (min(pw), max(pw))
assert at(s, 10, "rack", "rack.it_power") < 8 and max(pw) > 30
print("the failure scenarios do what they say")
PYEOF
pass "physics invariants hold at every publish; pump, leak, stuck sensor, lost feed, facility excursion and training swings as described"

# A bad scenario is refused with its file named.
printf 'name: bad\nrack: {pumps: 3}\nevents: []\n' >"$WORK/bad.yaml"
if $PY "$RP_SRC/tools/racksim/racksim.py" --scenario "$WORK/bad.yaml" --no-devices --for 1 --run "$WORK/bad" \
  >"$WORK/bad.out" 2>&1; then fail "a scenario with an unknown parameter ran"; fi
grep -q "bad.yaml: rack.pumps: unknown parameter" "$WORK/bad.out" || fail "error does not name file and key: $(cat "$WORK/bad.out")"
printf 'name: bad\nevents:\n  - {at: 5, jobb: {util: 1}}\n' >"$WORK/bad2.yaml"
if $PY "$RP_SRC/tools/racksim/racksim.py" --scenario "$WORK/bad2.yaml" --no-devices --for 1 --run "$WORK/bad2" \
  >"$WORK/bad2.out" 2>&1; then fail "a scenario with an unknown event ran"; fi
grep -q "bad2.yaml: events\[0\]" "$WORK/bad2.out" || fail "error does not name the event: $(cat "$WORK/bad2.out")"
pass "bad scenarios are refused naming the file and the key"
printf 'name: bad\nevents:\n  - {at: 5, stuck: {device: cdu1, quantity: cdu.supply_tmp}}\n' >"$WORK/bad3.yaml"
if $PY "$RP_SRC/tools/racksim/racksim.py" --scenario "$WORK/bad3.yaml" --no-devices --for 1 --run "$WORK/bad3" \
  >"$WORK/bad3.out" 2>&1; then fail "a stuck sensor on an unknown quantity ran"; fi
grep -q "bad3.yaml: events\[0\]: stuck: no quantity 'cdu.supply_tmp' on device 'cdu1'" "$WORK/bad3.out" \
  || fail "error does not name the quantity: $(cat "$WORK/bad3.out")"
pass "a fault on a quantity the rack does not serve is refused, naming it"
