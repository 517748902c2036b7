# rackpulse.events decoded with the schema alone (kcat + protoc), one event a
# line; sourced by tests that read flags from the topic (gate_policy.sh,
# ladder_events.sh). Decode to a file or a variable before grep -q: a grep
# that exits early breaks the pipe, and lib.sh's pipefail fails the pipeline.
decode_events() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.events -o beginning -e -q -f '%s\n--\n' 2>/dev/null \
    | $PY -c '
import subprocess, sys
data = sys.stdin.buffer.read().split(b"\n--\n")
for m in data:
    if m:
        out = subprocess.run(["protoc", "--decode=rackpulse.v1.Event", "-I", sys.argv[1], sys.argv[2]],
                             input=m, capture_output=True).stdout.decode()
        print(" ".join(out.split()))' "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto"
}
