#!/bin/bash
# The API under pressure: a client over http.rate_limit gets 429 with a JSON
# error (and is served again once its bucket refills), counted in /metrics;
# half-open and slow clients holding connections do not stall other
# clients, and the connection timeout closes them.
source "$(dirname "$0")/lib.sh"

start_broker
AGG_HTTP_EXTRA="rate_limit: 20, rate_burst: 20"
start_aggregator

codes=$(for _ in $(seq 60); do curl -s -o /dev/null -w '%{http_code}\n' "$URL/healthz"; done | sort | uniq -c)
echo "60 quick requests at rate 20/s, burst 20: $(echo $codes)"
echo "$codes" | grep -q " 429" || fail "no 429 past the burst: $codes"
echo "$codes" | grep -q " 200" || fail "no request served at all: $codes"
for _ in $(seq 40); do
  [ "$(curl -s -o "$WORK/429.json" -w '%{http_code}' "$URL/healthz")" = 429 ] && break
done
grep -q '"error":"too many requests' "$WORK/429.json" || fail "429 without a JSON error: $(cat "$WORK/429.json")"
sleep 1.5
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ] || fail "not served again after the bucket refilled"
n=$(curl -s "$URL/metrics" | awk '/^rackpulse_http_limited_total/ {print $2}')
[ "${n:-0}" -gt 0 ] || fail "rackpulse_http_limited_total is ${n:-missing}"
pass "rate limit: 429s past the burst, served again after refill, $n counted"

# Forty half-open clients (headers never finished) and a slow reader: the
# others are still answered promptly, and the half-open ones are closed by
# the connection timeout (10 s).
$PY - "$HTTP_PORT" "$URL" <<'PYEOF' || fail "slow clients stalled the API"
import socket, sys, time, urllib.request
port, url = int(sys.argv[1]), sys.argv[2]
hung = []
for _ in range(40):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/racks HTTP/1.1\r\nHost: x\r\n")   # never finished
    hung.append(s)
time.sleep(1.5)  # let the rate bucket refill after the probes above
t0 = time.time()
for _ in range(5):
    with urllib.request.urlopen(url + "/healthz", timeout=3) as r:
        assert r.status == 200
took = time.time() - t0
assert took < 2, f"5 requests took {took:.2f} s with 40 half-open clients"
# The server closes idle half-open connections after its timeout.
deadline = time.time() + 20
closed = 0
for s in hung:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        if s.recv(1) == b"":
            closed += 1
    except (socket.timeout, ConnectionResetError):
        closed += 1 if isinstance(sys.exc_info()[1], ConnectionResetError) else 0
assert closed == len(hung), f"only {closed} of {len(hung)} half-open connections were closed"
print(f"5 requests in {took*1000:.0f} ms beside 40 half-open clients; all 40 closed by the timeout")
PYEOF
pass "half-open clients neither stall others nor stay open"
