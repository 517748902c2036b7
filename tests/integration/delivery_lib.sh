# Helpers for the delivery tests (sourced after lib.sh).

# seqs_on_topic AGENT: every sequence number of AGENT's frames on the topic,
# one per line, in topic order (read from the rackpulse-seq header).
seqs_on_topic() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -q -f '%h\n' 2>/dev/null \
    | tr ',' '\n' | awk -F= -v agent="$1" '
        $1 == "rackpulse-seq" { seq = $2 }
        $1 == "rackpulse-agent" && $2 == agent { print seq }'
}

# broker_down / broker_up: the dev broker's fault signals.
broker_down() { kill -USR1 "$BROKER_PID"; }
broker_up() { kill -USR2 "$BROKER_PID"; }

# agent_health FIELD: the value of FIELD in the health of the newest frame
# on the topic (decoded with protoc from the schema alone).
agent_health() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o -1 -c 1 -e -q -f '%s' 2>/dev/null \
    | protoc --decode=rackpulse.v1.Frame -I "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto" \
    | awk -v f="$1" '$1 == f":" { v = $2 } END { print (v == "" ? 0 : v) }'
}

# start_control_broker: the dev broker with a control file for
# broker_control (pushed request errors, topic errors).
start_control_broker() {
  "$RP_BIN/tools/rackpulse-devbroker" --bootstrap-file "$WORK/bootstrap" \
    --control "$WORK/broker.ctl" >"$WORK/broker.out" 2>"$WORK/broker.log" &
  PIDS+=($!)
  BROKER_PID=$!
  wait_for 10 test -s "$WORK/bootstrap" || fail "dev broker did not start"
  BOOTSTRAP=$(cat "$WORK/bootstrap")
}

# broker_control LINE...: has the dev broker apply these commands (see
# tools/devbroker.c) and waits until it has.
broker_control() {
  rm -f "$WORK/broker.ctl.done"
  printf '%s\n' "$@" >"$WORK/broker.ctl"
  kill -HUP "$BROKER_PID"
  wait_for 10 test -e "$WORK/broker.ctl.done" || fail "dev broker did not apply: $*"
}

# frames_on_topic: how many frames the topic holds.
frames_on_topic() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l
}

# all_health FIELD: FIELD of the health of every frame on the topic, one
# line per frame in topic order ("" when unset).
all_health() {
  local p o
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -q -f '%p %o\n' 2>/dev/null \
    | while read -r p o; do
        kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -p "$p" -o "$o" -c 1 -e -q -f '%s' 2>/dev/null \
          | protoc --decode=rackpulse.v1.Frame -I "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto" \
          | awk -v f="$1" '$1 == f":" { sub(/^[^:]*: /, ""); v = $0 } END { print v }'
      done
}

# check_seqs AGENT LABEL: every sequence number of AGENT on the topic once,
# in order; prints a summary line. SEQ_DUPLICATES_OK, when set, lists (one
# a line) the sequence numbers that may be on the topic twice because the
# Kafka client itself sent them again (see kafka_possibly_persisted); any
# other duplicate fails, and the first copies must still be in order.
check_seqs() {
  seqs_on_topic "$1" >"$WORK/seqs.txt"
  local total distinct first last missing dups s
  total=$(wc -l <"$WORK/seqs.txt")
  distinct=$(sort -un "$WORK/seqs.txt" | wc -l)
  first=$(sort -n "$WORK/seqs.txt" | head -1)
  last=$(sort -n "$WORK/seqs.txt" | tail -1)
  missing=$(( last - first + 1 - distinct ))
  echo "$2: $total frames on the topic, seq $first..$last, $distinct distinct, $(( total - distinct )) duplicate(s), $missing missing"
  [ "$missing" -eq 0 ] || fail "$2: $missing sequence number(s) missing: $(sort -n "$WORK/seqs.txt" | tr '\n' ' ')"
  if [ "$total" -ne "$distinct" ] && [ -n "${SEQ_DUPLICATES_OK:-}" ]; then
    dups=$(sort -n "$WORK/seqs.txt" | uniq -d)
    for s in $dups; do
      grep -qx "$s" <<<"$SEQ_DUPLICATES_OK" \
        || fail "$2: frame $s is on the topic twice and the Kafka client did not send it again (it did: $(echo $SEQ_DUPLICATES_OK)); topic: $(tr '\n' ' ' <"$WORK/seqs.txt")"
    done
    echo "note: $2: frame(s) $(echo $dups) on the topic twice: the Kafka client sent them again after a lost connection (the dev broker does not de-duplicate)" >&2
    awk '!seen[$1]++' "$WORK/seqs.txt" | sort -n -c || fail "$2: frames out of order on the topic"
    return 0
  fi
  [ "$total" -eq "$distinct" ] || fail "$2: $(( total - distinct )) duplicate frame(s)"
  sort -n -c "$WORK/seqs.txt" || fail "$2: frames out of order on the topic"
}

# kafka_debug_msg CONFIG: has the agent of CONFIG log librdkafka's message
# debugging (agent.log_level debug, kafka property debug: msg), for
# kafka_possibly_persisted.
kafka_debug_msg() {
  sed -i -e 's|^agent: {|agent: {log_level: debug, |' \
    -e 's|^kafka: {\(.*\)}$|kafka: {\1, properties: {debug: msg}}|' "$1"
}

# kafka_possibly_persisted LOG: the messages librdkafka sent again after a
# connection was lost with their Produce request unanswered ("possibly
# persisted"), one a line, by librdkafka's message id (1, 2, ... in the
# order the agent handed them over: with a new spool and one producer that
# is the frame's sequence number). A real broker de-duplicates such a
# retry of the idempotent producer (same producer id and sequence); the
# dev broker, librdkafka's mock cluster, checks sequences only for
# transactional producers and appends the message again.
kafka_possibly_persisted() {
  sed -n 's/.*MessageSet with \([0-9]*\) message(s) (MsgId \([0-9]*\), BaseSeq [-0-9]*) encountered error: .*MsgPossiblyPersisted.*/\1 \2/p' "$1" \
    | awk '{ for (i = 0; i < $1; i++) print $2 + i }' | sort -un
}

# drained SINCE_MS: the newest frame was built after SINCE_MS + 3 s and says
# nothing is waiting in the spool.
drained() {
  [ "$(agent_health ts_ms)" -gt $(( $1 + 3000 )) ] && [ "$(agent_health spool_depth)" -eq 0 ]
}

# frame_dicts: one line per frame on the topic, in topic order: its
# sequence number, 1 if it carries the dictionary (else 0), 1 if it
# carries samples (else 0: built before the first scrape), and its
# health's kafka_error ("-" when none); decoded with protoc from the schema.
frame_dicts() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -q -f '%S:%s' >"$WORK/frames.bin" 2>/dev/null
  $PY - "$WORK/frames.bin" "$RP_SRC/proto" <<'PYEOF'
import re, subprocess, sys
data, i = open(sys.argv[1], "rb").read(), 0
while i < len(data):
    j = data.index(b":", i)
    n = int(data[i:j])
    txt = subprocess.run(["protoc", "--decode=rackpulse.v1.Frame", "-I", sys.argv[2],
                          "rackpulse.proto"], input=data[j + 1:j + 1 + n],
                         capture_output=True, check=True).stdout.decode()
    err = re.search(r'^  kafka_error: "(.*)"$', txt, re.M)
    print(re.search(r"^seq: (\d+)", txt, re.M).group(1),
          int(re.search(r"^dictionary \{", txt, re.M) is not None),
          int(re.search(r"^samples \{", txt, re.M) is not None),
          err.group(1) if err else "-")
    i = j + 1 + n
PYEOF
}
