#!/bin/bash
# A frame Kafka refuses for itself is the only one the agent drops: with
# message.max.bytes set between the size of the frames that carry the
# dictionary (every 4th) and the others, the big ones are refused
# (MSG_SIZE_TOO_LARGE), logged and counted in frames_rejected, and every
# other frame arrives, once, in order. Exactly the refused sequence numbers
# are missing on the topic.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
# Three devices without window statistics (they go at their own cadence):
# ~275 bytes a frame, ~1 190 with the dictionary (librdkafka's
# message.max.bytes is at least 1 000).
write_agent_config "$WORK/agent.yaml" r7 "$CDU" "$CDU" "$CDU"
sed -i 's/interval: 1s,/interval: 1s, dictionary_every: 4,/' "$WORK/agent.yaml"
echo "stats: {series: []}" >>"$WORK/agent.yaml"
sed -i 's/linger: 5ms}/linger: 5ms, properties: {message.max.bytes: "1000"}}/' "$WORK/agent.yaml"
start_agent "$WORK/agent.yaml"
wait_for 60 sh -c "[ \$(grep -c 'refused by Kafka' $WORK/agent.log) -ge 2 ] && [ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 8 ]" \
  || fail "expected refused frames and others delivered: $(grep -c 'refused by Kafka' "$WORK/agent.log") refused, $(frames_on_topic) on the topic"

seqs_on_topic agent-r7 >"$WORK/seqs.txt"
last=$(sort -n "$WORK/seqs.txt" | tail -1)
sort -n -c "$WORK/seqs.txt" || fail "frames out of order on the topic"
[ "$(wc -l <"$WORK/seqs.txt")" -eq "$(sort -u "$WORK/seqs.txt" | wc -l)" ] || fail "duplicate frames"
sed -n 's/.*frame \([0-9]*\) ([0-9]* bytes) refused by Kafka: .*MSG_SIZE_TOO_LARGE.*/\1/p' "$WORK/agent.log" \
  | awk -v l="$last" '$1 < l' | sort -n >"$WORK/refused.txt"
seq 1 "$last" | awk 'NR == FNR { have[$1] = 1; next } !($1 in have)' "$WORK/seqs.txt" - >"$WORK/missing.txt"
echo "seq 1..$last: $(wc -l <"$WORK/seqs.txt") on the topic, refused $(tr '\n' ' ' <"$WORK/refused.txt"), missing $(tr '\n' ' ' <"$WORK/missing.txt")"
[ -s "$WORK/refused.txt" ] || fail "no frame before $last was refused"
diff "$WORK/refused.txt" "$WORK/missing.txt" >/dev/null || fail "the missing frames are not the refused ones"
rejected=$(agent_health frames_rejected)
[ "$rejected" -eq "$(wc -l <"$WORK/refused.txt")" ] || fail "frames_rejected $rejected, but $(wc -l <"$WORK/refused.txt") refused before the newest frame"
[ "$(agent_health frames_dropped)" -eq 0 ] || fail "frames counted as dropped"
pass "$rejected frame(s) too large for Kafka dropped and counted; every other frame arrived once, in order"
