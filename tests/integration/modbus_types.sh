#!/bin/bash
# Every Modbus type in every word and byte order, read through the agent from
# a real pymodbus server (tests/fixtures/modbus/typed_server.py) whose values
# pymodbus's own BinaryPayloadBuilder encoded: u16 i16 u32 i32 f32 f64 and
# bitfield in ABCD CDAB BADC DCBA, coils, discrete inputs, an input register
# scaled x0.1, a word-swapped float and an absent-sensor sentinel. Read once
# coalesced (52 holding words in one request) and once with max_regs 4.
source "$(dirname "$0")/lib.sh"
FIX="$RP_SRC/tests/fixtures/modbus"

PORT=$(free_port)
$PY "$FIX/typed_server.py" --port "$PORT" --describe "$WORK/map.json" >"$WORK/typed.log" 2>&1 &
PIDS+=($!)
wait_for 15 $PY -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" \
  || fail "typed_server did not start"

for regs in 125 4; do
  $PY "$FIX/agent_config.py" "$WORK/map.json" "$WORK" --tcp "$PORT" \
    --extra "max_regs: $regs" >"$WORK/agent-$regs.yaml"
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent-$regs.yaml" --once >"$WORK/frame-$regs.json" \
    2>"$WORK/agent-$regs.log" || fail "--once (max_regs $regs) exited non-zero"
  $PY "$FIX/check_frame.py" "$WORK/map.json" "$WORK/frame-$regs.json" typed --all-types \
    >"$WORK/check-$regs.log" 2>&1 || fail "max_regs $regs: $(cat "$WORK/check-$regs.log")"
done
pass "every type (u16 i16 u32 i32 f32 f64 bitfield) in every order (ABCD CDAB BADC DCBA), coils, discretes, scale, sentinel; coalesced and max_regs 4"
