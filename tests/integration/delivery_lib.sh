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
