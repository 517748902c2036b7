#!/bin/bash
# The incident-map page in a real browser: headless Chromium (Debian's)
# loads the page the aggregator serves at / against three racks of a
# policy with rows and cooling loops (a01: one simulated CDU, a02: two,
# a03: in the policy but never reporting), after a flag is set on a01 and
# a02's second CDU is killed. Asserts what a person sees in the rendered
# DOM: the rack count, a01 shown as flagged, a02's dead CDU listed as
# missing evidence, and the detail view (?rack=a01) showing the same
# values as the API. Also: the page's Content-Type and strict
# Content-Security-Policy. The page reads GET /v1/floor, the upkeep pass's
# cached summaries (up to ~1 s old), so the test waits for what it expects;
# that pass and the page's views are neither counted as gate decisions nor
# audited. A screenshot is kept (path printed at the end).
source "$(dirname "$0")/lib.sh"

CHROMIUM=$(command -v chromium || true)
[ -n "$CHROMIUM" ] || fail "chromium is not installed (tools/deps.sh installs Debian's)"

start_broker
C1=$(free_port)
start_cdu "$C1" --no-drift
C2=$(free_port)
start_cdu "$C2" --no-drift
C3=$(free_port)
start_cdu "$C3" --no-drift
C3_PID=${PIDS[-1]}
cdu_set "$C1" '{"supply_temp": 31.0, "return_temp": 41.0, "flow": 120.0}'
cdu_set "$C2" '{"supply_temp": 33.0, "return_temp": 42.0, "flow": 110.0}'
cdu_set "$C3" '{"supply_temp": 33.0, "return_temp": 42.0, "flow": 110.0}'
write_agent_config "$WORK/agent-a01.yaml" a01 "$C1"
write_agent_config "$WORK/agent-a02.yaml" a02 "$C2" "$C3"

cat >"$WORK/policy.yaml" <<'YAML'
version: floor-1
defaults:
  max_staleness: 4s
  power_margin_kw: 2
  supply_temp: {max: 40}
  power: {enabled: true, series: cdu.heat_load, stat: latest, across: sum}
  thermal: {enabled: true, series: cdu.heat_load, stat: latest, across: sum}
racks:
  - {id: a01, row: r1, loop: l1, breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}
  - {id: a02, row: r1, loop: l2, breaker_kw: 250, derating: 0.8, cdu_capacity_kw: 300}
  - {id: a03, row: r2, loop: l1, breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}
YAML
umask 077
echo "floor-token-for-tests" >"$WORK/token"
umask 022
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_HTTP_EXTRA="token_file: $WORK/token"
AGG_EXTRA="flags: {automatic: false}"  # no automatic flags: a01's is the only one
start_aggregator
for r in a01 a02; do
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent-$r.yaml" >"$WORK/agent-$r.out" 2>"$WORK/agent-$r.log" &
  PIDS+=($!)
done

# --- the page is served, with its types and a strict CSP --------------------
curl -s -D "$WORK/h.txt" -o "$WORK/index.html" "$URL/" || fail "GET / failed"
grep -qi '^content-type: text/html; charset=utf-8' "$WORK/h.txt" || fail "GET /: $(cat "$WORK/h.txt")"
grep -qi "^content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'" "$WORK/h.txt" \
  || fail "GET /: no strict CSP: $(cat "$WORK/h.txt")"
grep -q '<script src="floor.js"' "$WORK/index.html" || fail "the page does not load floor.js"
! grep -qiE ' on(click|load|error)=|<script>' "$WORK/index.html" || fail "inline code in the page"
curl -s -D - -o /dev/null "$URL/floor.js" | grep -qi '^content-type: text/javascript' || fail "floor.js type"
curl -s -D - -o /dev/null "$URL/floor.css" | grep -qi '^content-type: text/css' || fail "floor.css type"
pass "/ is text/html with a strict Content-Security-Policy, floor.js and floor.css with their types"

# --- the floor: a flag on a01, a02's second CDU dead --------------------------
floor() { curl -s "$URL/v1/floor${1:+?rack=$1}"; }
field() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_for 30 sh -c "curl -s '$URL/v1/floor' | $PY -c \"import json,sys; d=json.load(sys.stdin); r={x['rack']: x for x in d['racks']}; sys.exit(0 if r['a01']['supply_temp'] == 31.0 and r['a02']['supply_temp'] == 33.0 else 1)\"" \
  || fail "a01 and a02 did not report: $(floor)"
code=$(curl -s -o "$WORK/f.json" -w '%{http_code}' -H "Authorization: Bearer floor-token-for-tests" \
  -X POST "$URL/v1/flags" \
  -d "{\"rack\":\"a01\",\"flag\":\"maintenance\",\"owner\":\"ops\",\"reason\":\"pump swap\",\"expires_ms\":$(( $(date +%s%3N) + 3600000 ))}")
[ "$code" = 201 ] || fail "flag on a01: HTTP $code $(cat "$WORK/f.json")"
kill -TERM "$C3_PID"
# The cached pass catches up within a second or so: wait for both.
wait_for 30 sh -c "curl -s '$URL/v1/floor' | $PY -c \"import json,sys; d={x['rack']: x for x in json.load(sys.stdin)['racks']}; sys.exit(0 if any('cdu2 (modbus) down' in m for m in d['a02']['missing']) and any(f['check'] == 'flags' for f in d['a01']['failing']) else 1)\"" \
  || fail "a02's dead CDU is not missing evidence or a01's flag not failing: $(floor)"
floor >"$WORK/floor.json"
$PY - "$WORK/floor.json" <<'PYEOF' || fail "the floor API: $(cat "$WORK/floor.json")"
import json, sys
d = {r["rack"]: r for r in json.load(open(sys.argv[1]))["racks"]}
assert sorted(d) == ["a01", "a02", "a03"], d.keys()
assert (d["a01"]["row"], d["a01"]["loop"], d["a02"]["loop"], d["a03"]["row"]) == ("r1", "l1", "l2", "r2")
assert d["a01"]["flags"] == ["maintenance"] and d["a01"]["decision"] == "deny"
assert any(f["check"] == "flags" for f in d["a01"]["failing"])
assert d["a03"]["decision"] == "deny" and d["a03"]["missing"] and d["a03"]["age_s"] is None
assert isinstance(d["a01"]["power_headroom_kw"], float) and isinstance(d["a01"]["thermal_headroom_kw"], float)
# What the page needs beyond the summary: limits, class, the supply trend.
assert d["a01"]["power_limit_kw"] == 96.0 and d["a01"]["thermal_capacity_kw"] == 150.0, d["a01"]
assert d["a03"]["thermal_capacity_kw"] == 150.0 and d["a01"]["supply_limit"] == 40.0, d
for k in ("pool", "class", "supply_slope_per_min", "time_to_limit_min"):
    assert all(k in r for r in d.values()), k
assert all("checks" not in r for r in d.values()), "the whole floor carries checks"
PYEOF
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/floor?rack=nosuch")" = 404 ] || fail "?rack=nosuch is not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/floor?rack=a%2F1")" = 400 ] || fail "?rack=a/1 is not 400"
floor a01 | field '[c["name"] for c in d["racks"][0]["checks"]]' | grep -q "'flags'" || fail "?rack=a01 without checks: $(floor a01)"
decisions() { curl -s "$URL/metrics" | grep '^rackpulse_gate_decisions_total' | tr '\n' ' '; }
evaluated() { floor | field 'd["evaluated_at_ms"]'; }
before=$(decisions)
e0=$(evaluated)
for _ in 1 2 3; do floor >/dev/null; floor a01 >/dev/null; done
# Two more upkeep passes (every rack evaluated twice) and the views above.
wait_for 30 sh -c "[ \$(curl -s '$URL/v1/floor' | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"evaluated_at_ms\"])') -gt $(( e0 + 1500 )) ]" \
  || fail "the upkeep pass did not run again: $(floor)"
[ "$(decisions)" = "$before" ] || fail "upkeep passes or floor views counted as gate decisions: $before -> $(decisions)"
# (The flag set on a01 is audited as a change; no gate decision may be.)
[ "$(curl -s "$URL/v1/audit?rack=a01" | field 'len([e for e in d["decisions"] if "action" not in e])')" = 0 ] \
  || fail "floor views audited: $(curl -s "$URL/v1/audit?rack=a01")"
pass "/v1/floor: rows, loops and limits from the policy, a01 flagged, a02's cdu2 down, a03 never reported, ?rack=a01 with checks; upkeep passes and views neither counted nor audited"

# --- what a person sees, in Chromium -------------------------------------------
# Only 127.0.0.1 is reachable: every other name resolves nowhere.
browse() { # OUT URL [extra chromium args]
  local out=$1 url=$2; shift 2
  local sandbox=()
  [ "$(id -u)" -ne 0 ] || sandbox=(--no-sandbox)
  timeout 60 "$CHROMIUM" --headless "${sandbox[@]}" --disable-gpu --no-first-run \
    --user-data-dir="$WORK/chromium" --disable-extensions --disable-sync \
    --disable-background-networking --disable-component-update --no-default-browser-check \
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" --proxy-server="direct://" \
    --enable-logging=stderr --v=0 \
    --virtual-time-budget=6000 "$@" "$url" >"$out" 2>>"$WORK/chromium.log"
}
browse "$WORK/floor.dom" "$URL/" --dump-dom || fail "chromium could not load the page: $(tail -5 "$WORK/chromium.log")"
curl -s "$URL/v1/racks/a01/gate?kw=3" | grep -q '"decision":"deny"' || fail "a01 flagged but not denied"
browse "$WORK/detail.dom" "$URL/?rack=a01" --dump-dom || fail "chromium (detail): $(tail -5 "$WORK/chromium.log")"
floor a01 >"$WORK/a01-floor.json"
curl -s "$URL/v1/racks/a01" >"$WORK/a01.json"
cat >"$WORK/dom.py" <<'PYEOF'
# A minimal DOM of chromium's --dump-dom output: elements with attributes,
# children and text, enough to ask what a person would see.
import html.parser
class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []
    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)
    def cls(self):
        return (self.attrs.get("class") or "").split()
    def all(self, pred):
        for c in self.children:
            if isinstance(c, Node):
                if pred(c):
                    yield c
                yield from c.all(pred)
VOID = {"meta", "link", "br", "img", "input", "hr", "col", "source", "wbr"}
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.root = self.cur = Node("#root", [], None)
    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n
    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))
    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent
    def handle_data(self, data):
        self.cur.children.append(data)
def load(path):
    p = P()
    p.feed(open(path, encoding="utf-8").read())
    return p.root
def by_id(root, i):
    return next(root.all(lambda n: n.attrs.get("id") == i), None)
PYEOF
PYTHONPATH=$WORK $PY - "$WORK/floor.dom" <<'PYEOF' || fail "the floor as rendered (DOM in $WORK/floor.dom)"
import sys
from dom import load, by_id
root = load(sys.argv[1])
count = by_id(root, "count")
assert count is not None and count.attrs.get("data-count") == "3", "rack count: %r" % (count and count.text())
assert count.text().strip() == "3 racks", count.text()
tiles = {n.attrs["data-rack"]: n for n in root.all(lambda n: "rack" in n.cls() and n.tag == "a")}
assert sorted(tiles) == ["a01", "a02", "a03"], sorted(tiles)
a01 = tiles["a01"]
assert "flagged" in a01.cls() and "deny" in a01.cls(), a01.cls()
assert "maintenance" in a01.text(), a01.text()
assert "flagged" not in tiles["a02"].cls(), tiles["a02"].cls()
# Grouped by row and loop from the policy.
rows = {n.attrs["data-row"]: n for n in root.all(lambda n: "row" in n.cls() and "data-row" in n.attrs)}
assert sorted(rows) == ["r1", "r2"], sorted(rows)
loops_r1 = sorted(n.attrs["data-loop"] for n in rows["r1"].all(lambda n: "data-loop" in n.attrs))
assert loops_r1 == ["l1", "l2"], loops_r1
# What is failing lists the flag; what evidence is missing lists a02's dead CDU and a03.
failing = by_id(root, "failing").text()
assert "a01: flag maintenance" in failing, failing
missing = by_id(root, "missing")
m02 = [li.text() for li in missing.all(lambda n: n.tag == "li" and n.attrs.get("data-rack") == "a02")]
assert any("cdu2 (modbus) down" in t for t in m02), m02
assert "missing" in tiles["a02"].cls() and "missing" in tiles["a03"].cls()
assert any(n.attrs.get("data-rack") == "a03" for n in missing.all(lambda n: n.tag == "li"))
print("rendered:", by_id(root, "summary").text(), "|", by_id(root, "perf").text())
PYEOF
! grep -E "Refused to|Uncaught|Content Security Policy" "$WORK/chromium.log" \
  || fail "the page broke its CSP or threw (above, from $WORK/chromium.log)"
pass "Chromium shows 3 racks in rows r1 (loops l1, l2) and r2, a01 flagged (maintenance), a02's cdu2 listed as missing evidence"

PYTHONPATH=$WORK $PY - "$WORK/detail.dom" "$WORK/a01-floor.json" "$WORK/a01.json" <<'PYEOF' || fail "the detail view (DOM in $WORK/detail.dom)"
import json, sys
from dom import load, by_id
root = load(sys.argv[1])
api_checks = {c["name"]: c for c in json.load(open(sys.argv[2]))["racks"][0]["checks"]}
api = json.load(open(sys.argv[3]))
detail = by_id(root, "detail")
assert detail is not None and "hidden" not in detail.attrs and detail.attrs.get("data-rack") == "a01", detail and detail.attrs
rows = {tr.attrs["data-check"]: tr for tr in by_id(root, "checks").all(lambda n: "data-check" in n.attrs)}
compared = 0
assert {"supply_temp", "power_headroom", "thermal_headroom", "flags"} <= set(api_checks), sorted(api_checks)
for name, c in api_checks.items():
    if name in ("telemetry_fresh", "clock_skew") or c["observed"] is None:
        continue  # the age moves between the page's request and ours
    assert name in rows, (name, sorted(rows))
    tds = [c for c in rows[name].children if getattr(c, "tag", None) == "td"]
    shown, limit = tds[1].attrs.get("data-value"), tds[2].attrs.get("data-value")
    assert shown is not None and float(shown) == api_checks[name]["observed"], (name, shown, api_checks[name])
    if "limit" in api_checks[name]:
        assert float(limit) == api_checks[name]["limit"], (name, limit, api_checks[name])
    assert tds[4].text() == ("pass" if api_checks[name]["pass"] else "FAIL"), (name, tds[4].text())
    compared += 1
assert rows["flags"].text().find("maintenance") >= 0
series = {tr.attrs["data-series"]: tr for tr in by_id(root, "series").all(lambda n: "data-series" in n.attrs)}
for key, s in api["series"].items():
    if key.startswith(("cdu.supply_temp", "cdu.return_temp", "cdu.flow", "cdu.heat_load")):
        tds = [c for c in series[key].children if getattr(c, "tag", None) == "td"]
        assert float(tds[1].attrs["data-value"]) == s["value"], (key, tds[1].attrs, s)
        assert next(series[key].all(lambda n: n.tag == "svg"), None) is not None, "no sparkline for " + key
        compared += 1
assert "maintenance" in by_id(root, "detail-flags").text()
assert by_id(root, "devices").text().find("cdu1") >= 0
decisions = by_id(root, "detail-decisions").text()
assert "deny 3.0 kW (flags)" in decisions, decisions
print("compared", compared, "values with the API")
PYEOF
pass "the detail view (?rack=a01) shows the API's check values and limits, series values with sparklines, the flag, the audited decision"

# A screenshot of the floor with a02 open, kept among the test's logs.
browse /dev/null "$URL/?rack=a02" --screenshot="$WORK/floor.png" --window-size=1400,900 \
  || fail "chromium screenshot: $(tail -5 "$WORK/chromium.log")"
[ -s "$WORK/floor.png" ] || fail "no screenshot"
SHOTS="$RP_BIN/Testing/floor_page"
mkdir -p "$SHOTS" && cp "$WORK/floor.png" "$WORK/floor.dom" "$WORK/detail.dom" "$SHOTS/"
pass "screenshot: $SHOTS/floor.png"
