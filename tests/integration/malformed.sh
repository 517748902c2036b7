#!/bin/bash
# Malformed input from the topic and from HTTP clients, beyond
# ingest_garbage.sh (garbage bytes, a truncated frame, agent_id as a varint,
# schema version 2, 5 MB of 'x'):
#   1. Frames published with kcat that break a rule: a valid frame over the
#      4 MiB limit, wrong wire types for nested messages and packed fields, a
#      length running past the end, an 11-byte varint, negative times (near
#      INT64_MIN), decimals out of range, over-long and non-UTF-8 strings,
#      too many or too long labels. Each is skipped, counted as invalid and
#      logged with its offset and the reason.
#   2. Absurd query strings on the gate, placement and audit (a 5000-byte
#      rack id, %00, negative/NaN/inf/huge kW, bad durations and counts, a
#      100 kB URL) and reservation, extension and flag bodies (nesting 10000
#      deep, numbers over any range, wrong JSON types, JSON that is no
#      object, duplicate keys, invalid UTF-8, over 64 KiB). Each gets a 4xx
#      with {"error": "..."}.
#   3. After all of it the state is what it was (/v1/racks, the rack's
#      series, no reservation, no flag), a valid change still works and the
#      aggregator runs on; under ASan/UBSan its log holds no report.
#   4. Frames that are odd but valid are applied: unknown fields (a newer
#      agent), NaN/inf window statistics, negative values, an unknown
#      reading status, a device error that is not UTF-8, a long non-ASCII
#      status detail; /v1/racks/R and /metrics still answer, with all of it.
source "$(dirname "$0")/lib.sh"

TOKEN='malformed-test-token'
(umask 077; echo "$TOKEN" >"$WORK/token")
start_broker
AGG_HTTP_EXTRA="token_file: $WORK/token" AGG_EXTRA="metrics: {series: true}" start_aggregator
loadgen() { "$RP_BIN/tools/rackpulse-loadgen" -b "$BOOTSTRAP" -q "$@"; }
# (Read whole before awk looks: awk leaving early would make curl fail with
# EPIPE, and the pipeline with it.)
metric() {
  curl -sf "$URL/metrics" -o "$WORK/metrics.now" && awk -v k="$1" '$1 == k {print $2; exit}' "$WORK/metrics.now"
}
invalid() { metric 'rackpulse_ingest_frames_total{outcome="invalid"}'; }
invalid_is() { [ "$(invalid)" = "$1" ]; }
applied_is() { [ "$(metric 'rackpulse_agent_frames_total{agent="lg-r0001-1",rack="r0001"}')" = "$1" ]; }

loadgen --racks 1 --frames 5 --series 10 2>"$WORK/loadgen.log" || fail "loadgen failed"
wait_for 30 applied_is 5 || fail "the 5 frames of r0001 were not applied"
# The state every bad input must leave alone (ages change with the clock).
snapshot() {
  curl -sf "$URL/v1/racks" >"$WORK/racks.json" && curl -sf "$URL/v1/racks/r0001" >"$WORK/r0001.json" \
    && curl -sf "$URL/v1/reservations" >"$WORK/res.json" && curl -sf "$URL/v1/flags" >"$WORK/flags.json" \
    || return 1
  $PY - "$WORK" <<'PYEOF'
import json, sys
w = sys.argv[1]
def load(name):
    d = json.load(open("%s/%s.json" % (w, name)))
    for r in d.get("racks", [d]):
        r.pop("age_s", None)
    return d
print(json.dumps([load(n) for n in ("racks", "r0001", "res", "flags")], sort_keys=True))
PYEOF
}
snapshot >"$WORK/before.txt" || fail "cannot read the state"
grep -q '"last_seq": 5' "$WORK/before.txt" || fail "unexpected state: $(head -c 300 "$WORK/before.txt")"

# --- 1. frames that break a rule --------------------------------------------
mkdir -p "$WORK/bad"
NOW=$(($(date +%s) * 1000))
H="schema_version: 1 agent_id: \"evil\" rack_id: \"r0001\" seq: 100 ts_ms: $NOW dictionary_version: 1"
D='dictionary { id: 1 name: "cdu.supply_temp" unit: "Cel" device: "cdu1" decimals: 1'
n=0
expect=()
# bad NAME 'reason in the log' TEXT: a frame from its text format.
bad() {
  n=$((n + 1))
  printf '%s' "$3" | protoc --encode=rackpulse.v1.Frame -I "$RP_SRC/proto" \
    "$RP_SRC/proto/rackpulse.proto" >"$WORK/bad/$(printf %02d $n)-$1.bin" \
    || fail "protoc could not encode $1"
  expect+=("$2")
}
# raw NAME 'reason' BYTES: a message written byte by byte (printf escapes).
raw() {
  n=$((n + 1))
  printf "$3" >"$WORK/bad/$(printf %02d $n)-$1.bin"
  expect+=("$2")
}
big=$(head -c 4300000 /dev/zero | tr '\0' 'e')
bad oversized "exceeds the 4194304-byte frame limit" "$H statuses { series: 1 detail: \"$big\" }"
unset big
raw dictionary-as-varint "protobuf decoding failed" '\x08\x01\x12\x01a\x1a\x01r\x42\x02\x08\x01\x40\x05'
raw samples-as-fixed64 "protobuf decoding failed" '\x08\x01\x12\x01a\x1a\x01r\x49\x01\x02\x03\x04\x05\x06\x07\x08'
raw length-past-end "protobuf decoding failed" '\x08\x01\x12\x7fa\x1a\x01r'
raw varint-11-bytes "protobuf decoding failed" '\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x12\x01a\x1a\x01r'
raw agent-not-utf8 "agent_id is not UTF-8" '\x08\x01\x12\x03a\xff\xfe\x1a\x01r'
bad ts-int64-min "ts_ms -9223372036854775808 is negative" \
  "schema_version: 1 agent_id: \"evil\" rack_id: \"r0001\" seq: 101 ts_ms: -9223372036854775808"
bad block-ts-negative "sample block 0: ts_ms -1 is negative" "$H $D } samples { ts_ms: -1 series: [1] scaled: [1] }"
bad decimals "decimals -10 outside -9..9" "$H dictionary { id: 1 name: \"x\" decimals: -10 }"
bad name-129 "series name longer than 128 bytes" "$H dictionary { id: 1 name: \"$(printf 'n%.0s' {1..129})\" }"
bad label-value-129 "label value longer than 128 bytes" \
  "$H $D labels { key: \"k\" value: \"$(printf 'v%.0s' {1..129})\" } }"
labels=$(for i in {1..17}; do printf 'labels { key: "k%d" value: "v" } ' "$i"; done)
bad labels-17 "has 17 labels \\(limit 16\\)" "$H $D $labels }"
labels=$(for i in {1..4}; do printf 'labels { key: "k%d" value: "%s" } ' "$i" "$(printf 'v%.0s' {1..100})"; done)
bad series-key-too-long "total .* bytes \\(limit 400\\)" "$H $D $labels }"
bad rack-id-65 "rack_id longer than 64 bytes" \
  "schema_version: 1 agent_id: \"evil\" rack_id: \"$(printf 'r%.0s' {1..65})\""
bad unequal-block "1 series ids but 2 values" "$H samples { series: [1] scaled: [1, 2] }"
before_invalid=$(invalid)
before_invalid=${before_invalid:-0}
kcat -P -b "$BOOTSTRAP" -t rackpulse.frames -k r0001 -X message.max.bytes=10000000 \
  "$WORK"/bad/*.bin 2>"$WORK/kcat.log" || fail "kcat could not publish: $(cat "$WORK/kcat.log")"
wait_for 30 invalid_is $((before_invalid + n)) \
  || fail "$n bad frames published, invalid counter went from $before_invalid to $(invalid)"
for e in "${expect[@]}"; do
  grep -q -E "ingest: rackpulse.frames \[[0-9]+\] offset [0-9]+: [0-9]+-byte message skipped: .*$e" \
    "$WORK/aggregator.log" || fail "no log line for '$e': $(grep skipped "$WORK/aggregator.log" | tail -5)"
done
pass "$n frames breaking a rule skipped, counted and logged with their reason"

# --- 2. HTTP: absurd queries and bodies --------------------------------------
# answer NAME 'STATUSES' CURL-ARGS...: the status is one of STATUSES and the
# body a JSON object with an "error" string.
answer() {
  local name=${1:0:60} want=$2 got out; shift 2
  out="$WORK/http-$(tr -c 'A-Za-z0-9_.-' _ <<<"$name").json"
  got=$(curl -s -o "$out" -w '%{http_code}' "$@") || true
  [[ " $want " == *" $got "* ]] || fail "$name: status $got, expected $want: $(head -c 200 "$out")"
  $PY -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert isinstance(e,str) and e' \
    "$out" 2>/dev/null || fail "$name: no JSON error: $(head -c 200 "$out")"
}
long=$(printf 'a%.0s' {1..5000})
G="$URL/v1/racks/r0001/gate"
answer rack-5000 400 "$URL/v1/racks/$long/gate?kw=1"
answer rack-slash "400 404" "$URL/v1/racks/%2e%2e%2fetc/gate?kw=1"
for kw in -1 NaN nan inf -inf 1e999 100001 '' %00 '1;2' 0x1p99; do
  answer "kw-$kw" 400 "$G?kw=$kw"
done
answer kw-missing 400 "$G"
for d in -5m 1e30h 2y %00 '' 5s5 nan; do answer "duration-$d" 400 "$G?kw=1&duration=$d"; done
answer class-nul 400 "$G?kw=1&class=%00"
answer owner-long 400 "$G?kw=1&owner=$long"
answer class-utf8 400 "$G?kw=1&class=%c3%a9t%c3%a9"
for c in 0 -1 99999999999999999999 1001 x; do answer "count-$c" 400 "$URL/v1/placement?kw=1&count=$c"; done
answer placement-kw 400 "$URL/v1/placement?kw=inf"
for q in since=-1 until=x limit=0 limit=10001 'rack=%00'; do answer "audit-$q" 400 "$URL/v1/audit?$q"; done
# A 100 kB request line: libmicrohttpd refuses it (414) or drops the
# connection; either way nothing else changes.
code=$(curl -s -o /dev/null -w '%{http_code}' "$G?kw=1&x=$(printf 'x%.0s' {1..100000})") || true
case "$code" in 414 | 400 | 431 | 000) ;; *) fail "100 kB URL: status $code" ;; esac
pass "absurd query strings: 400 with an error (a 100 kB URL: $code)"

auth=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')
END=$((NOW + 3600000))
post() { answer "$1" "$2" -X POST "${auth[@]}" --data-binary "$3" "$URL/v1/reservations"; }
deep=$(printf '[%.0s' {1..10000})
post deep-array 400 "$deep"
post deep-object 400 "$(printf '{"a":%.0s' {1..3000})1$(printf '}%.0s' {1..3000})"
post deep-in-hosts 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"end\":$END,\"hosts\":$deep}"
post kw-1e400 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1e400,\"end\":$END}"
post kw-1e308 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1e308,\"end\":$END}"
post kw-negative 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":-5,\"end\":$END}"
post end-huge-int 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"end\":99999999999999999999999}"
post end-real 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"end\":1e30}"
post start-year-0 400 \
  '{"rack":"r0001","owner":"o","kw":1,"start":"0000-01-01T00:00:00Z","end":9223372036854775807}'
post start-negative 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"start\":-1,\"end\":$END}"
post rack-number 400 "{\"rack\":5,\"owner\":\"o\",\"kw\":1,\"end\":$END}"
post kw-string 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":\"7\",\"end\":$END}"
post hosts-string 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"end\":$END,\"hosts\":\"a\"}"
post hosts-numbers 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"end\":$END,\"hosts\":[1,2]}"
post preemptible-text 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"end\":$END,\"preemptible\":\"yes\"}"
post class-unknown 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"end\":$END,\"class\":\"platinum\"}"
post class-utf8 400 "{\"rack\":\"r0001\",\"owner\":\"o\",\"kw\":1,\"end\":$END,\"class\":\"$(printf '\\u00e9%.0s' {1..300})\"}"
post owner-long 400 "{\"rack\":\"r0001\",\"owner\":\"$long\",\"kw\":1,\"end\":$END}"
# JSON that is not an object: each was freed and then used (and freed
# again) before this test existed.
for b in '[]' '[1,2]' '"text"' '5' 'null' 'true'; do post "body-$b" 400 "$b"; done
post body-empty 400 ''
post body-duplicate 400 "{\"rack\":\"r0001\",\"rack\":\"r0002\",\"owner\":\"o\",\"kw\":1,\"end\":$END}"
post body-not-utf8 400 "$(printf '{"rack":"r\xff\xfe","owner":"o","kw":1,"end":1}')"
printf '{"rack":"r\0001","owner":"o","kw":1,"end":1}' >"$WORK/nul.json"
answer body-nul 400 -X POST "${auth[@]}" --data-binary @"$WORK/nul.json" "$URL/v1/reservations"
post body-trailing 400 '{"rack":"r0001"} x'
head -c 70000 /dev/zero | tr '\0' ' ' >"$WORK/70k.json"
answer body-70k 413 -X POST "${auth[@]}" --data-binary @"$WORK/70k.json" "$URL/v1/reservations"
for b in '[]' '"x"' '{"end":"soon"}' "{\"end\":$deep}"; do
  answer "extend-$b" "400 404" -X POST "${auth[@]}" --data-binary "$b" "$URL/v1/reservations/abc/extend"
done
for b in '[]' '1' '{"rack":"r0001","flag":"maintenance","owner":"o","expires_ms":1e400}' \
  '{"rack":"r0001","flag":"maintenance","owner":"o","expires_ms":-1}' \
  '{"rack":"r0001","flag":"x","owner":"o","expires_ms":9999999999999}' \
  "{\"rack\":\"r0001\",\"flag\":\"maintenance\",\"owner\":\"o\",\"expires_ms\":9999999999999,\"reason\":\"$(printf 'r%.0s' {1..300})\"}"; do
  answer "flag-${b:0:12}" 400 -X POST "${auth[@]}" --data-binary "$b" "$URL/v1/flags"
done
answer no-token 401 -X POST --data-binary '[]' "$URL/v1/reservations"
pass "reservation, extension and flag bodies: deep, huge, mistyped, not objects: 4xx with an error"

# --- 3. nothing changed, and valid requests still work ----------------------
snapshot >"$WORK/after.txt" || fail "cannot read the state after"
cmp -s "$WORK/before.txt" "$WORK/after.txt" \
  || fail "state changed: $(diff <(tr ',' '\n' <"$WORK/before.txt") <(tr ',' '\n' <"$WORK/after.txt") | head -20)"
loadgen --racks 1 --frames 2 --series 10 --seq-start 6 2>>"$WORK/loadgen.log" || fail "loadgen failed"
wait_for 30 applied_is 7 || fail "frames 6 and 7 not applied after the bad ones"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "${auth[@]}" --data-binary \
  "{\"rack\":\"r0001\",\"flag\":\"evacuate\",\"owner\":\"o\",\"expires_ms\":$END}" "$URL/v1/flags")" = 201 ] \
  || fail "a valid flag was refused after the garbage"
kill -0 "$AGG_PID" || fail "the aggregator died"
pass "state unchanged (racks, r0001's series, reservations, flags); valid frames and changes still apply"

# --- 4. odd but valid frames --------------------------------------------------
O="schema_version: 1 agent_id: \"odd-1\" rack_id: \"odd\" seq: 1 ts_ms: $NOW dictionary_version: 1
dictionary { id: 1 name: \"cdu.supply_temp\" unit: \"Cel\" device: \"cdu1\" decimals: 3 }
dictionary { id: 2 name: \"cdu.flow\" unit: \"L/min\" device: \"cdu1\" decimals: -9 }
samples { ts_ms: $NOW series: [1, 2] scaled: [-123456789, 9223372036854775807] }
stats { series: 1 window_s: 60 count: 3 min: nan max: inf mean: -inf stddev: nan p50: -5
        p95: 1e308 p99: -1e308 has_slope: true slope_per_min: nan }
statuses { series: 2 status: 7 detail: \"$(printf '\\303\\251%.0s' {1..200})\" }"
printf '%s' "$O" | protoc --encode=rackpulse.v1.Frame -I "$RP_SRC/proto" \
  "$RP_SRC/proto/rackpulse.proto" >"$WORK/odd.bin" || fail "protoc could not encode the odd frame"
# Unknown fields, as a newer agent would add: 99 (bytes) and 100 (varint);
# and a device whose last_error is "e\xffr", not UTF-8 (protoc refuses to
# write that, so it is appended by hand: field 12, DeviceStatus {device 1,
# kind 2, last_error 4}).
printf '\x9a\x06\x05hello\xa0\x06\x2a' >>"$WORK/odd.bin"
printf '\x62\x13\x0a\x04cdu1\x12\x06modbus\x22\x03e\xffr' >>"$WORK/odd.bin"
kcat -P -b "$BOOTSTRAP" -t rackpulse.frames -k odd "$WORK/odd.bin" 2>>"$WORK/kcat.log" \
  || fail "kcat could not publish"
wait_for 30 curl -sf "$URL/v1/racks/odd" -o "$WORK/odd.json" || fail "the odd frame was not applied"
$PY - "$WORK/odd.json" <<'PYEOF' || fail "rack odd is wrong: $(head -c 400 "$WORK/odd.json")"
import json, sys
r = json.load(open(sys.argv[1]))
s = r["series"]
assert s["cdu.supply_temp@cdu1"]["value"] == -123456.789, s
assert s["cdu.flow@cdu1"]["status"] == "?" and s["cdu.flow@cdu1"]["value"] is None, s
# 200 x U+00E9 (400 bytes) kept to whole characters in the store's 96 bytes.
assert s["cdu.flow@cdu1"]["detail"] == "\u00e9" * 47, s["cdu.flow@cdu1"]
assert r["devices"]["cdu1"]["last_error"] == "e?r", r["devices"]
PYEOF
curl -sf "$URL/metrics" >"$WORK/metrics.txt" || fail "/metrics did not answer"
$PY - "$WORK/metrics.txt" <<'PYEOF' || fail "/metrics is not valid exposition text"
import math, re, sys
line_re = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (\S+)$')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    m = line_re.match(line)
    assert m, line
    v = float(m.group(4))
    assert not math.isnan(v), line
assert 'rackpulse_value{rack="odd",series="cdu.supply_temp",device="cdu1",unit="Cel"} -123456.789' \
    in open(sys.argv[1]).read()
PYEOF
pass "unknown fields, NaN/inf statistics, negative values, an unknown status, bytes that are not UTF-8 in an error: applied, API and /metrics answer"
