#!/usr/bin/python3
"""A simulated CDU (coolant distribution unit) for local runs and tests.

Serves Modbus TCP on 127.0.0.1 with Debian's python3-pymodbus (3.0.x) and
the register map of tests/fixtures/sim-cdu-device.yaml (also the layout of
packaging/profiles/modbus/generic-cdu.yaml, in 1-based notation):

  input 0   supply temperature   i16  x0.1 degC
  input 1   return temperature   i16  x0.1 degC
  input 2   flow                 u16  x0.1 L/min
  input 3   differential press.  u16  x1 kPa
  input 4-5 heat load            f32  CDAB kW (word-swapped, as Liebert does)
  input 6   reservoir level      u16  x1 %
  input 8   alarms               bitfield: bit 0 leak, bit 1 pump fault
  holding 0 pump speed           u16  x0.1 %

Values drift slowly around a steady state. A test steers them by writing a
JSON object to the --control file, e.g. {"supply_temp": 47.5}: keys are the
names above (supply_temp, return_temp, flow, dp, level, pump, leak,
pump_fault) and are re-read every tick. Run with Debian's python:
/usr/bin/python3 tools/cdu_sim.py --port 15020.
"""
import argparse
import asyncio
import json
import logging
import math
import os
import struct
import sys
import time

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server import StartAsyncTcpServer

STEADY = {
    "supply_temp": 30.0,   # degC
    "return_temp": 40.0,   # degC
    "flow": 120.0,         # L/min
    "dp": 85.0,            # kPa
    "level": 78.0,         # %
    "pump": 62.5,          # %
    "leak": 0,
    "pump_fault": 0,
}


def read_control(path):
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError) as e:
        logging.warning("control file %s: %s", path, e)
        return {}


def current_values(t, control, drift):
    v = dict(STEADY)
    if drift:
        v["supply_temp"] += 0.4 * math.sin(t / 20.0)
        v["return_temp"] = v["supply_temp"] + 10.0 + 0.3 * math.sin(t / 7.0)
        v["flow"] += 2.0 * math.sin(t / 11.0)
    for key, value in control.items():
        if key in v:
            v[key] = value
    return v


def heat_kw(v):
    # Q = rho * cp * dT * flow / 60000 (water at 30 degC).
    return 995.6 * 4.18 * (v["return_temp"] - v["supply_temp"]) * v["flow"] / 60000.0


def encode(v):
    def i16(x):
        return int(round(x)) & 0xFFFF

    f32 = struct.unpack(">HH", struct.pack(">f", heat_kw(v)))
    inputs = [
        i16(v["supply_temp"] * 10),
        i16(v["return_temp"] * 10),
        int(round(v["flow"] * 10)) & 0xFFFF,
        int(round(v["dp"])) & 0xFFFF,
        f32[1], f32[0],            # CDAB: low word first
        int(round(v["level"])) & 0xFFFF,
        0,
        (1 if v["leak"] else 0) | (2 if v["pump_fault"] else 0),
    ]
    holding = [int(round(v["pump"] * 10)) & 0xFFFF]
    return inputs, holding


async def update_loop(context, args):
    start = time.monotonic()
    while True:
        v = current_values(time.monotonic() - start, read_control(args.control),
                           not args.no_drift)
        inputs, holding = encode(v)
        slave = context[0]
        slave.setValues(4, 0, inputs)
        slave.setValues(3, 0, holding)
        await asyncio.sleep(args.tick)


async def main():
    p = argparse.ArgumentParser(description="Simulated CDU over Modbus TCP (loopback).")
    p.add_argument("--port", type=int, default=15020, help="TCP port (default 15020)")
    p.add_argument("--control", help="JSON file of value overrides, re-read every tick")
    p.add_argument("--tick", type=float, default=0.2, help="update period in seconds")
    p.add_argument("--no-drift", action="store_true", help="hold the steady state")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="cdu_sim: %(message)s")

    store = ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, [0] * 16),
        co=ModbusSequentialDataBlock(0, [0] * 16),
        hr=ModbusSequentialDataBlock(0, [0] * 32),
        ir=ModbusSequentialDataBlock(0, [0] * 32),
        zero_mode=True)
    context = ModbusServerContext(slaves=store, single=True)
    asyncio.get_running_loop().create_task(update_loop(context, args))
    print(f"cdu_sim: serving Modbus TCP on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    await StartAsyncTcpServer(context=context, address=("127.0.0.1", args.port))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
