#!/bin/bash
# The API under pressure: a client over http.rate_limit gets 429 with a JSON
# error (and is served again once its bucket refills), counted in /metrics,
# while other clients keep their own buckets;
# half-open and slow clients holding connections do not stall other
# clients, and the connection timeout closes them.
source "$(dirname "$0")/lib.sh"

start_broker
# A bucket of 20 that refills one token every 5 s: 60 requests overrun it
# however slowly curl starts (unless they took over 200 s), so the test
# does not depend on how fast this machine forks.
AGG_HTTP_EXTRA="rate_limit: 0.2, rate_burst: 20"
start_aggregator
# Other requests come from other loopback addresses: each has a bucket of
# its own (the limit is per client address).
other() { curl -s --interface "$1" "${@:2}"; }

codes=$(for _ in $(seq 60); do curl -s -o /dev/null -w '%{http_code}\n' "$URL/healthz"; done | sort | uniq -c)
echo "60 requests at rate 0.2/s, burst 20: $(echo $codes)"
echo "$codes" | grep -q " 429" || fail "no 429 past the burst: $codes"
echo "$codes" | grep -q " 200" || fail "no request served at all: $codes"
for _ in $(seq 40); do
  [ "$(curl -s -o "$WORK/429.json" -w '%{http_code}' "$URL/healthz")" = 429 ] && break
done
grep -q '"error":"too many requests' "$WORK/429.json" || fail "429 without a JSON error: $(cat "$WORK/429.json")"
# A refused request takes no token: polling until served waits for the
# refill (one token in 5 s).
wait_for 60 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$URL/healthz')\" = 200 ]" \
  || fail "not served again after the bucket refilled"
n=$(other 127.0.0.2 "$URL/metrics" | awk '/^rackpulse_http_limited_total/ {print $2}')
[ "${n:-0}" -gt 0 ] || fail "rackpulse_http_limited_total is ${n:-missing}"
pass "rate limit: 429s past the burst, served again after refill, $n counted"

# Forty half-open clients (headers never finished) and a slow reader: the
# others are still answered promptly, and the half-open ones are closed by
# the connection timeout (10 s).
$PY - "$HTTP_PORT" <<'PYEOF' || fail "slow clients stalled the API"
import http.client, socket, sys, time
port = int(sys.argv[1])
hung = []
for _ in range(40):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/racks HTTP/1.1\r\nHost: x\r\n")   # never finished
    hung.append(s)
# From another address, whose rate bucket is full (the probes above
# emptied 127.0.0.1's).
t0 = time.time()
for _ in range(5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=("127.0.0.3", 0))
    c.request("GET", "/healthz")
    r = c.getresponse()
    assert r.status == 200, r.status
    c.close()
took = time.time() - t0
# Stalled behind the half-open clients, an answer would wait for their
# connection timeout (10 s); a loaded machine is slower, never that slow.
assert took < 8, f"5 requests took {took:.2f} s with 40 half-open clients"
# The server closes idle half-open connections after its timeout.
deadline = time.time() + 40
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
