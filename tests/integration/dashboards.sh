#!/bin/bash
# Every Grafana panel's query returns data: the stack runs on loopback (dev
# broker, pymodbus CDU, an ipmi_sim BMC for server power, the agent with
# derived cdu.delta_t and cdu.heat_removed, the aggregator with a policy
# file, a gate allow and deny, a flag and a reservation), Debian's
# Prometheus scrapes the aggregator every second (its own config and
# storage in $WORK, not the system service), and each PromQL expression of
# dashboards/*.json, with the dashboard variables at "All", goes through
# /api/v1/query: an error or an empty result fails the test. The variables'
# own queries must find values too, and the JSON must be what
# dashboards/generate.py writes (the one place metric names live).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ipmi_lib.sh"

command -v prometheus >/dev/null || fail "prometheus is not installed (bash tools/deps.sh)"
command -v ipmi_sim >/dev/null || fail "ipmi_sim is not installed (openipmi)"
$PY "$RP_SRC/dashboards/generate.py" --check || fail "dashboards/*.json differ from generate.py's output"

start_broker
CDU=$(free_port)
start_cdu "$CDU"      # drifting values: slopes and deviations are not all zero
BMC=$(free_udp_port)
start_bmc srv1 "$BMC" inlet_temp=24 exhaust_temp=38 ps1_input_power=1400 ps2_input_power=1420
write_agent_config "$WORK/agent.yaml" d1 "$CDU"
{
  echo "ipmi:"
  ipmi_bmc_yaml srv1 "$BMC"
  cat <<'YAML'
derived:
  - {name: cdu.delta_t, type: delta_t, return: cdu.return_temp, supply: cdu.supply_temp}
  - {name: cdu.heat_removed, type: heat_removed, return: cdu.return_temp,
     supply: cdu.supply_temp, flow: cdu.flow, coolant: water}
YAML
} >>"$WORK/agent.yaml"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --check-config >"$WORK/check.txt" 2>&1 \
  || fail "agent config refused: $(cat "$WORK/check.txt")"
# A policy with rack metadata (for power headroom and reservations), and a
# token for the endpoints that change state (flags, reservations).
cat >"$WORK/policy.yaml" <<'YAML'
version: dash-1
defaults:
  max_staleness: 10s
  power_margin_kw: 1
  supply_temp: {max: 60}
  power: {enabled: true, series: cdu.heat_load, stat: latest, across: sum}
tariff: {currency: EUR, flat: 0.15}
racks:
  - {id: d1, pool: p1, row: r1, breaker_kw: 250, derating: 0.8, cdu_capacity_kw: 300}
slo:
  - {name: supply-hot, check: supply_temp, above: 60, period: 1h, budget: 5m}
YAML
(umask 077; echo "dashboards-test-token" >"$WORK/token")
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_HTTP_EXTRA="token_file: $WORK/token"
AGG_EXTRA="metrics: {series: true, devices: true}" # series and device panels need the opt-ins
start_aggregator
start_agent "$WORK/agent.yaml"
has_all_series() {
  curl -sf "$URL/v1/racks/d1" >"$WORK/rack.json" || return 1
  for s in cdu.supply_temp@ cdu.delta_t@ cdu.heat_removed@ server.power '"srv1"'; do
    grep -q "$s" "$WORK/rack.json" || return 1
  done
}
wait_for 60 has_all_series || fail "rack d1 lacks series: $(head -c 1500 "$WORK/rack.json")"
pass "stack up: rack d1 has CDU, derived and IPMI power series"

# Gate decisions (an allow and a deny), a flag and a reservation, so the
# gates and reservations panels have series.
AUTH=(-H "Authorization: Bearer dashboards-test-token")
later=$(( $(date +%s%3N) + 3600000 ))
wait_for 20 ctl gate --rack d1 --kw 1 || fail "no allow at 1 kW: $(ctl gate --rack d1 --kw 1 2>&1)"
# A deploy's gate: the deploy annotations mark it.
ctl --deploy-id dash-deploy-1 gate --rack d1 --kw 1 >/dev/null || fail "gate with a deploy id"
set +e; ctl gate --rack d1 --kw 5000 >/dev/null 2>&1; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "5000 kW was not denied (exit $rc)"
code=$(curl -s -o "$WORK/flag.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/flags" \
  -d "{\"rack\":\"d1\",\"flag\":\"maintenance\",\"owner\":\"dash\",\"expires_ms\":$later}")
[ "$code" = 201 ] || fail "POST /v1/flags: $code $(cat "$WORK/flag.json")"
code=$(curl -s -o "$WORK/res.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
  -d "{\"rack\":\"d1\",\"kw\":3,\"owner\":\"dash\",\"end\":$later}")
[ "${code:0:1}" = 2 ] || fail "POST /v1/reservations: $code $(cat "$WORK/res.json")"
pass "a gate allow and deny, a maintenance flag and a 3 kW reservation on d1"

PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
cat >"$WORK/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: rackpulse
    static_configs: [{targets: ["127.0.0.1:$HTTP_PORT"]}]
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
PROM_PID=$!
wait_for 30 curl -sf "$PROM/-/ready" || fail "prometheus did not become ready"
scrapes_done() {
  curl -sf "$PROM/api/v1/query" --data-urlencode 'query=count_over_time(up{job="rackpulse"}[1m]) >= 8' \
    | grep -q '"value"'
}
wait_for 60 scrapes_done || fail "prometheus did not scrape the aggregator 8 times: $(tail "$WORK/prometheus.log")"
pass "prometheus scraped the aggregator 8 times"

$PY - "$PROM" "$RP_SRC/dashboards" "$WORK/queries.txt" <<'PYEOF' || fail "dashboard queries: $(cat "$WORK/queries.txt")"
import glob, json, os, re, sys, urllib.parse, urllib.request

prom, folder, report = sys.argv[1], sys.argv[2], sys.argv[3]
UID = "rackpulse-prometheus"
failures, lines, nqueries = [], [], 0

def api(path, **params):
    url = prom + path + "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:   # 400/422: a bad query, with the reason
        return json.load(e)

def substitute(expr, variables):
    # Grafana's built-ins, then the dashboard's variables at "All".
    for builtin, value in (("$__rate_interval", "1m"), ("$__interval", "5s"), ("$__range", "1h")):
        expr = expr.replace(builtin, value)
    for name, value in variables.items():
        expr = re.sub(r"\$\{%s\}|\[\[%s\]\]|\$%s\b" % (name, name, name), value, expr)
    if "$" in expr:
        failures.append("unknown variable in %r" % expr)
    return expr

def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))

files = sorted(glob.glob(os.path.join(folder, "*.json")))
if len(files) < 4:
    failures.append("expected 4 dashboards, found %s" % files)
uids = set()
for path in files:
    name = os.path.basename(path)
    d = json.load(open(path))
    if d.get("uid") in uids:
        failures.append("%s: duplicate uid %s" % (name, d.get("uid")))
    uids.add(d.get("uid"))
    if not 36 <= d.get("schemaVersion", 0) <= 41:
        failures.append("%s: schemaVersion %s" % (name, d.get("schemaVersion")))
    variables = {}
    for v in d.get("templating", {}).get("list", []):
        variables[v["name"]] = v.get("allValue") or ".*"
    for v in d.get("templating", {}).get("list", []):
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
        if not m or v.get("datasource", {}).get("uid") != UID:
            failures.append("%s: variable %s: unexpected query or data source: %r" % (name, v["name"], q))
            continue
        r = api("/api/v1/series", **{"match[]": substitute(m.group(1), variables)})
        found = sorted({s.get(m.group(2)) for s in r.get("data", [])} - {None})
        lines.append("%s: $%s -> %s" % (name, v["name"], found))
        if r.get("status") != "success" or not found:
            failures.append("%s: variable %s finds no values: %s" % (name, v["name"], r))
    # Annotations from Prometheus (the deploy markers): their queries too.
    for an in d.get("annotations", {}).get("list", []):
        if an.get("builtIn"):
            continue
        if an.get("datasource", {}).get("uid") != UID:
            failures.append("%s: annotation %s not on %s" % (name, an.get("name"), UID))
            continue
        expr = substitute(an["expr"], variables)
        nqueries += 1
        r = api("/api/v1/query", query=expr)
        res = r.get("data", {}).get("result", []) if r.get("status") == "success" else []
        lines.append("%s annotation %s: %d series  %s" % (name, an["name"], len(res), expr))
        if not any(x["metric"].get("deploy_id") == "dash-deploy-1" and
                   x["metric"].get("kind") == "gate_allow" for x in res):
            failures.append("%s: annotation %s does not mark dash-deploy-1: %s" % (name, an["name"], r))
    ids = set()
    for p in panels(d["panels"]):
        if p["id"] in ids:
            failures.append("%s: duplicate panel id %s" % (name, p["id"]))
        ids.add(p["id"])
        if p["type"] == "row":
            continue
        title = "%s / %s" % (name, p["title"])
        if p.get("datasource", {}).get("uid") != UID or not p.get("targets"):
            failures.append("%s: no targets or not on data source %s" % (title, UID))
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != UID:
                failures.append("%s %s: target not on %s" % (title, t.get("refId"), UID))
            expr = substitute(t["expr"], variables)
            nqueries += 1
            r = api("/api/v1/query", query=expr)
            n = len(r.get("data", {}).get("result", [])) if r.get("status") == "success" else 0
            lines.append("%s %s: %d series  %s" % (title, t["refId"], n, expr))
            if r.get("status") != "success":
                failures.append("%s %s: %s: %s" % (title, t["refId"], r.get("error"), expr))
            elif n == 0:
                failures.append("%s %s: no series: %s" % (title, t["refId"], expr))
with open(report, "w") as f:
    f.write("\n".join(failures + ["--- every query:"] + lines) + "\n")
print("%d queries in %d dashboards" % (nqueries, len(files)))
sys.exit(1 if failures else 0)
PYEOF
pass "every panel query of dashboards/*.json returns series ($(grep -c 'series  ' "$WORK/queries.txt") queries), and every variable finds values"

grep -q "uid: rackpulse-prometheus" "$RP_SRC/dashboards/provisioning/datasources/rackpulse.yaml" \
  && grep -q "url: http://127.0.0.1:9090" "$RP_SRC/dashboards/provisioning/datasources/rackpulse.yaml" \
  || fail "the data source provisioning file does not name uid rackpulse-prometheus at 127.0.0.1:9090"
pass "provisioning names the data source the dashboards use"

# The daemons stop cleanly, without sanitizer reports (in an ASan build).
for pid in "$PROM_PID" "$AGENT_PID" "$AGG_PID"; do
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || fail "process $pid exited non-zero on SIGTERM"
done
! grep -q "Sanitizer" "$WORK/agent.log" "$WORK/aggregator.log" \
  || fail "sanitizer report: $(grep -h -A15 Sanitizer "$WORK/agent.log" "$WORK/aggregator.log" | head -30)"
pass "prometheus, the agent and the aggregator stop cleanly"
