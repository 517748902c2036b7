#!/usr/bin/python3
"""racksim: one simulated rack that obeys physics, behind every simulator.

Steps the model of model.py every 100 ms of model time, applies a scenario
(tools/racksim/scenarios/*.yaml) and a live control file, and serves the
rack's values as real devices on 127.0.0.1, free ports:

  CDU   Modbus TCP, pymodbus in this process, the generic-cdu register map
        (packaging/profiles/modbus/generic-cdu.yaml)
  PDUs  SNMP v2c, one Debian snmpd per feed, PDU2-MIB (Raritan PX) values
        through pass_persist (pdu_pass.py), the raritan-px profile's map
  BMCs  IPMI LAN, one ipmi_sim per server (tests/fixtures/ipmi_sim), whose
        sensors poll value files this process rewrites

What was served is recorded as ground truth (truth.jsonl: time, device,
quantity, true value, served value) and the latest snapshot in state.json.
`--agent-config FILE` writes an agent configuration for the devices
started. See tools/racksim/README.md. Run with Debian's python:

  /usr/bin/python3 tools/racksim/racksim.py --scenario training --agent-config /tmp/a.yaml
"""
import argparse
import asyncio
import json
import logging
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import model  # noqa: E402

STEP = 0.1            # s of model time per step
log = logging.getLogger("racksim")


# ---------------------------------------------------------------- scenarios

EVENT_KINDS = {"job", "set", "stuck", "drift", "clear", "feed", "bmc", "hold"}


def load_scenario(name):
    """A scenario by name (scenarios/NAME.yaml) or path; errors name the file."""
    path = name if os.path.sep in name or name.endswith(".yaml") else \
        os.path.join(HERE, "scenarios", name + ".yaml")
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise SystemExit(f"racksim: scenario {path}: {e.strerror}")
    except yaml.YAMLError as e:
        raise SystemExit(f"racksim: scenario {path}: {e}")
    if not isinstance(doc, dict):
        raise SystemExit(f"racksim: scenario {path}: expected a mapping")
    for k in doc:
        if k not in ("name", "version", "description", "duration", "rack", "racks", "events"):
            raise SystemExit(f"racksim: scenario {path}: unknown key '{k}'")
    events = doc.get("events") or []
    for i, ev in enumerate(events):
        check_event(ev, f"{path}: events[{i}]")
    doc["events"] = sorted(events, key=lambda e: float(e.get("at", 0)))
    doc["path"] = path
    return doc


def check_event(ev, where):
    if not isinstance(ev, dict):
        raise SystemExit(f"racksim: {where}: expected a mapping")
    kinds = [k for k in ev if k in EVENT_KINDS]
    extra = [k for k in ev if k not in EVENT_KINDS and k not in ("at", "over", "note")]
    if len(kinds) != 1 or extra:
        raise SystemExit(f"racksim: {where}: expected 'at' and one of {', '.join(sorted(EVENT_KINDS))}"
                         f" (got {', '.join(ev)})")
    try:
        float(ev.get("at", 0))
        float(ev.get("over", 0) or 0)
    except (TypeError, ValueError):
        raise SystemExit(f"racksim: {where}: at/over: expected seconds, got {ev.get('at')!r}")
    kind = kinds[0]
    body = ev[kind]
    need = {"job": ((), ("util", "ramp", "swing", "period", "shape", "servers", "racks")),
            "stuck": (("device", "quantity"), ("value",)),
            "drift": (("device", "quantity", "per_min"), ()),
            "clear": (("device", "quantity"), ()),
            "feed": (("pdu",), ("up",)),
            "bmc": (("server",), ("hang",))}
    if kind == "hold":
        if not isinstance(body, bool):
            raise SystemExit(f"racksim: {where}: hold: expected true or false")
        return
    if not isinstance(body, dict):
        raise SystemExit(f"racksim: {where}: {kind}: expected a mapping")
    if kind == "set":
        for k in body:
            if k not in model.DEFAULTS or k in model.FIXED:
                raise SystemExit(f"racksim: {where}: set.{k}: not a parameter that can change while running")
        return
    required, optional = need[kind]
    for k in required:
        if k not in body:
            raise SystemExit(f"racksim: {where}: {kind}.{k}: required")
    for k in body:
        if k not in required and k not in optional:
            raise SystemExit(f"racksim: {where}: {kind}.{k}: unknown (expected {', '.join(required + optional)})")


# ---------------------------------------------------------------- what is served

def fix(x, digits):
    """Rounds half away from zero to `digits` decimals (what a device does)."""
    q = 10.0 ** digits
    return math.floor(abs(x) * q + 0.5) / q * (1 if x >= 0 else -1)


def quant(x, step):
    return math.floor(x / step + 0.5) * step


def f32(x):
    return struct.unpack(">f", struct.pack(">f", x))[0]


class Served:
    """The rack's values per device: true value, served value (after faults
    and each protocol's resolution) and unit, keyed by the agent's metric
    name with labels, e.g. `gpu.temp{gpu=3}`."""

    def __init__(self, sim):
        self.sim = sim
        self.faults = {}           # (device, quantity) -> {"kind", "value" | "per_min", "t0"}
        self.last = {}             # (device, quantity) -> last served value

    def fault(self, device, quantity, true):
        f = self.faults.get((device, quantity))
        if f is None:
            return true
        if f["kind"] == "stuck":
            if "value" not in f:
                f["value"] = self.last.get((device, quantity), true)
            return f["value"]
        return true + f["per_min"] * (self.sim.loop.t - f["t0"]) / 60.0

    def snapshot(self):
        r = self.sim.loop
        out = {}

        # res: (the device's rounding, the largest |served - true| it
        # causes when no fault is injected: the fidelity tolerance).
        def put(dev, q, unit, true, res):
            resolve, tol = res
            served = resolve(self.fault(dev, q, true))
            self.last[(dev, q)] = served
            out.setdefault(dev, {})[q] = {"true": true, "served": served, "unit": unit, "tol": tol}

        c, p = r.cdu, r.p
        d = "cdu1"
        t01 = (lambda x: fix(x, 1), 0.05)          # i16/u16 x 0.1
        t1 = (lambda x: fix(x, 0), 0.5)            # u16 x 1, W, V
        d3 = (lambda x: fix(x, 3), 0.0005)         # PDU2-MIB 3 decimal digits
        d1 = (lambda x: fix(x, 1), 0.05)
        k = c.kw_per_lpm_k()
        put(d, "cdu.supply_temp", "Cel", c.supply, t01)
        put(d, "cdu.return_temp", "Cel", c.ret, t01)
        put(d, "cdu.flow", "L/min", c.flow, t01)
        put(d, "cdu.dp", "kPa", c.dp, t1)
        # The CDU computes its heat load from its own sensors (so a stuck
        # sensor shows there too); the true value is the model's heat flow.
        sv = out[d]
        put(d, "cdu.heat_load", "kW", c.q,
            (lambda _x: f32(c.heat_from(sv["cdu.supply_temp"]["served"], sv["cdu.return_temp"]["served"],
                                        sv["cdu.flow"]["served"])),
             k * (0.1 * c.flow + 0.05 * abs(c.ret - c.supply) + 0.005) + 1e-4))
        put(d, "cdu.level", "%", c.level, t1)
        # Alarms as the CDU raises them: from its own sensors (a stuck supply
        # sensor hides high_supply_temp), the leak detector, the pump drive.
        alarms = {"leak": p["leak_lpm"] > 0, "pump_fault": p["pump_health"] < 0.6,
                  "low_level": sv["cdu.level"]["served"] < 30.0,
                  "high_supply_temp": sv["cdu.supply_temp"]["served"] > p["setpoint"] + 8.0}
        for name, on in alarms.items():
            put(d, f"cdu.alarms{{alarm={name}}}", "", 1.0 if on else 0.0, (lambda x: 1.0 if x else 0.0, 0.0))
        ret_p = p["return_pressure_base"] + 40.0 * c.level / 100.0
        put(d, "cdu.supply_pressure", "kPa", ret_p + c.dp, t1)
        put(d, "cdu.return_pressure", "kPa", ret_p, t1)
        put(d, "cdu.pump1_speed", "%", 100.0 * c.speed, t01)
        put(d, "cdu.pump2_speed", "%", 0.0, t01)          # standby pump
        put(d, "cdu.valve_position", "%", 100.0 * c.valve, t01)
        put(d, "cdu.facility_supply_temp", "Cel", p["facility_supply"], t01)
        put(d, "cdu.facility_return_temp", "Cel", c.fac_return, t01)
        put(d, "cdu.pump_speed", "%", 100.0 * c.speed, t01)
        put(d, "cdu.supply_temp_setpoint", "Cel", p["setpoint"], t01)

        for s in r.servers():
            d = s.name
            put(d, "server.inlet_temp", "Cel", s.inlet, t1)
            put(d, "server.exhaust_temp", "Cel", s.exhaust, t1)
            for g in range(4):
                put(d, f"gpu.temp{{gpu={g + 1}}}", "Cel", s.gpu_temp[g], t1)
            put(d, "cpu.temp{cpu=1}", "Cel", s.cpu_temp, t1)
            put(d, "fan.speed{fan=1}", "rpm", 3000.0 + 12000.0 * s.fan, (lambda x: quant(x, 100), 50.0))
            for k in (0, 1):
                put(d, f"psu.input_power{{psu={k + 1}}}", "W", s.psu[k],
                    (lambda x: min(quant(x, 20), 5100.0), 10.0))
            out[d]["server.power{source=psu_sum}"] = {
                "true": s.ac_w, "unit": "W", "tol": 20.0,
                "served": sum(out[d][f"psu.input_power{{psu={k}}}"]["served"] for k in (1, 2))}

        for pdu in (x for rack in r.racks for x in rack.pdus):
            d = pdu.name
            put(d, "pdu.power{inlet=1}", "W", pdu.power_w, t1)
            put(d, "pdu.energy{inlet=1}", "kWh", pdu.energy_wh / 1000.0, (lambda x: math.floor(x * 1000) / 1000, 0.001))
            for ph in (1, 2, 3):
                put(d, f"pdu.phase.current{{phase={ph}}}", "A", pdu.phase_a[ph], d3)
                put(d, f"pdu.phase.voltage{{phase={ph}}}", "V", pdu.phase_v[ph], t1)
                put(d, f"pdu.phase.power{{phase={ph}}}", "W", pdu.phase_w[ph], t1)
                put(d, f"pdu.breaker.current{{breaker={ph}}}", "A", pdu.phase_a[ph], d1)
            for s in pdu.rack.servers:
                put(d, f"pdu.outlet.current{{outlet={s.index}}}", "A", pdu.outlet_a[s.index], d3)
                put(d, f"pdu.outlet.power{{outlet={s.index}}}", "W", pdu.outlet_w[s.index], t1)

        # Truth no device serves, what the gate derives: for the loop (device
        # `rack`: every rack on it) and, with several racks, per rack
        # (device `rNN-rack`).
        it_kw = r.it_power_w() / 1000.0
        all_pdus = [x for rack in r.racks for x in rack.pdus]
        if len(r.racks) > 1:
            for rack in r.racks:
                out[rack.prefix + "rack"] = {
                    "rack.it_power": {"true": rack.it_power_w() / 1000.0, "served": None, "unit": "kW"},
                    "rack.pdu_power": {"true": sum(x.power_w for x in rack.pdus) / 1000.0,
                                       "served": None, "unit": "kW"}}
        out["rack"] = {
            "rack.it_power": {"true": it_kw, "served": None, "unit": "kW"},
            "rack.pdu_power": {"true": sum(x.power_w for x in all_pdus) / 1000.0, "served": None, "unit": "kW"},
            "cdu.delta_t": {"true": c.ret - c.supply, "served": None, "unit": "K"},
            "cdu.heat_removed": {"true": c.q, "served": None, "unit": "kW"},
            "rack.capture": {"true": c.q / it_kw if it_kw > 0 else 0.0, "served": None, "unit": ""},
            "rack.throttled_servers": {"true": float(sum(s.throttled for s in r.servers())),
                                       "served": None, "unit": ""},
        }
        return out


# ---------------------------------------------------------------- devices

def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class ModbusCdu:
    """The CDU's registers, in this process (Debian's pymodbus 3.0)."""

    def __init__(self, port):
        from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                        ModbusSlaveContext)
        self.port = port
        store = ModbusSlaveContext(di=ModbusSequentialDataBlock(0, [0] * 16),
                                   co=ModbusSequentialDataBlock(0, [0] * 16),
                                   hr=ModbusSequentialDataBlock(0, [0] * 32),
                                   ir=ModbusSequentialDataBlock(0, [0] * 32), zero_mode=True)
        self.context = ModbusServerContext(slaves=store, single=True)

    async def serve(self):
        from pymodbus.server import StartAsyncTcpServer
        await StartAsyncTcpServer(context=self.context, address=("127.0.0.1", self.port))

    def publish(self, v):
        """v: the cdu1 quantities; the layout of generic-cdu.yaml (0-based)."""
        def s(q):
            return v[q]["served"]

        def i16(x):
            return int(round(x * 10)) & 0xFFFF

        def u(x, scale=1):
            return int(round(x * scale)) & 0xFFFF

        hi, lo = struct.unpack(">HH", struct.pack(">f", s("cdu.heat_load")))
        bits = 0
        for n, name in enumerate(("leak", "pump_fault", "pump2_fault", "low_level", "high_supply_temp")):
            if v.get(f"cdu.alarms{{alarm={name}}}", {}).get("served"):
                bits |= 1 << n
        inputs = [i16(s("cdu.supply_temp")), i16(s("cdu.return_temp")), u(s("cdu.flow"), 10),
                  u(s("cdu.dp")), lo, hi, u(s("cdu.level")), 0, bits,
                  u(s("cdu.supply_pressure")), u(s("cdu.return_pressure")),
                  u(s("cdu.pump1_speed"), 10), u(s("cdu.pump2_speed"), 10),
                  u(s("cdu.valve_position"), 10), i16(s("cdu.facility_supply_temp")),
                  i16(s("cdu.facility_return_temp"))]
        holding = [u(s("cdu.pump_speed"), 10), i16(s("cdu.supply_temp_setpoint"))]
        slave = self.context[0]
        slave.setValues(4, 0, inputs)
        slave.setValues(3, 0, holding)


RARITAN = "1.3.6.1.4.1.13742.6"
# Raritan PDU2-MIB sensor types and the decimal digits this PDU reports.
RMS_CURRENT, RMS_VOLTAGE, ACTIVE_POWER, POWER_FACTOR, ACTIVE_ENERGY, FREQUENCY = 1, 4, 5, 7, 8, 23


class SnmpPdu:
    """One PDU feed: Debian's snmpd (own config, 127.0.0.1) with a
    pass_persist helper serving PDU2-MIB from a file rewritten each publish."""

    def __init__(self, name, run):
        self.name, self.port = name, free_port(socket.SOCK_DGRAM)
        self.dir = os.path.join(run, "snmpd-" + name)
        os.makedirs(os.path.join(self.dir, "persist"), exist_ok=True)
        self.oids = os.path.join(self.dir, "oids.txt")
        self.community = "raritan-px"
        self.community_file = os.path.join(self.dir, "community")
        with open(os.open(self.community_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(self.community + "\n")
        self.proc = None

    def start(self):
        conf = os.path.join(self.dir, "snmpd.conf")
        atomic_write(conf, "\n".join([
            f"agentAddress udp:127.0.0.1:{self.port}",
            f"rocommunity {self.community} 127.0.0.1",
            f"sysDescr racksim PDU {self.name} (Raritan PX PDU2-MIB)",
            f"pass_persist .{RARITAN} /usr/bin/python3 {HERE}/pdu_pass.py {self.oids}", ""]))
        env = dict(os.environ, SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"), MIBS="")
        logf = open(os.path.join(self.dir, "snmpd.log"), "w")
        self.proc = subprocess.Popen(["snmpd", "-f", "-C", "-c", conf, "-Lo", "-p",
                                      os.path.join(self.dir, "snmpd.pid")],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                     env=env)

    def publish(self, v, servers):
        """v: this PDU's quantities. Values are raw integers with the MIB's
        decimal digits (inlet/pole/outlet current 3, breaker current 1)."""
        def raw(q, digits):
            return int(round(v[q]["served"] * 10 ** digits))
        rows = []
        inlet = {RMS_CURRENT: (3, sum(v[f"pdu.phase.current{{phase={p}}}"]["served"] for p in (1, 2, 3)) / 3),
                 RMS_VOLTAGE: (0, v["pdu.phase.voltage{phase=1}"]["served"]),
                 ACTIVE_POWER: (0, v["pdu.power{inlet=1}"]["served"]),
                 POWER_FACTOR: (2, 0.98 if v["pdu.power{inlet=1}"]["served"] > 0 else 0.0),
                 ACTIVE_ENERGY: (0, v["pdu.energy{inlet=1}"]["served"] * 1000.0),
                 FREQUENCY: (1, 50.0 if v["pdu.phase.voltage{phase=1}"]["served"] > 0 else 0.0)}
        for st, (dg, val) in inlet.items():
            rows.append((f"{RARITAN}.3.3.4.1.7.1.1.{st}", dg))
            rows.append((f"{RARITAN}.5.2.3.1.4.1.1.{st}", int(round(val * 10 ** dg))))
        for p in (1, 2, 3):
            for st, dg, q in ((RMS_CURRENT, 3, "pdu.phase.current"), (RMS_VOLTAGE, 0, "pdu.phase.voltage"),
                              (ACTIVE_POWER, 0, "pdu.phase.power")):
                rows.append((f"{RARITAN}.3.3.6.1.7.1.1.{p}.{st}", dg))
                rows.append((f"{RARITAN}.5.2.4.1.4.1.1.{p}.{st}", raw(f"{q}{{phase={p}}}", dg)))
            rows.append((f"{RARITAN}.3.4.4.1.7.1.{p}.{RMS_CURRENT}", 1))
            rows.append((f"{RARITAN}.5.3.3.1.4.1.{p}.{RMS_CURRENT}", raw(f"pdu.breaker.current{{breaker={p}}}", 1)))
        for s in servers:
            o = s.index
            for st, dg, q in ((RMS_CURRENT, 3, "pdu.outlet.current"), (ACTIVE_POWER, 0, "pdu.outlet.power")):
                rows.append((f"{RARITAN}.3.5.4.1.7.1.{o}.{st}", dg))
                rows.append((f"{RARITAN}.5.4.3.1.4.1.{o}.{st}", raw(f"{q}{{outlet={o}}}", dg)))
            rows.append((f"{RARITAN}.3.5.4.1.7.1.{o}.{RMS_VOLTAGE}", 0))
            rows.append((f"{RARITAN}.5.4.3.1.4.1.{o}.{RMS_VOLTAGE}",
                         int(round(v[f"pdu.phase.voltage{{phase={s.phase}}}"]["served"]))))
        rows.sort(key=lambda r: tuple(int(x) for x in r[0].split(".")))
        atomic_write(self.oids, "".join(f".{oid} gauge {max(val, 0)}\n" for oid, val in rows))

    def ready(self):
        try:
            out = subprocess.run(["snmpget", "-v2c", "-c", self.community, "-t", "0.5", "-r", "0", "-On",
                                  f"127.0.0.1:{self.port}", f"{RARITAN}.5.2.3.1.4.1.1.5"],
                                 capture_output=True, text=True, timeout=5)
            return out.returncode == 0 and "Gauge32" in out.stdout
        except subprocess.TimeoutExpired:
            return False


class IpmiBmc:
    """One server's BMC: ipmi_sim (tests/fixtures/ipmi_sim/start-bmc.sh)
    polling value files once a second; this process rewrites them."""

    FILES = [("inlet_temp", "server.inlet_temp"), ("exhaust_temp", "server.exhaust_temp"),
             ("gpu1_temp", "gpu.temp{gpu=1}"), ("gpu2_temp", "gpu.temp{gpu=2}"),
             ("gpu3_temp", "gpu.temp{gpu=3}"), ("gpu4_temp", "gpu.temp{gpu=4}"),
             ("cpu1_temp", "cpu.temp{cpu=1}"), ("fan1_rpm", "fan.speed{fan=1}"),
             ("ps1_input_power", "psu.input_power{psu=1}"), ("ps2_input_power", "psu.input_power{psu=2}")]

    def __init__(self, name, run):
        self.name, self.port = name, free_port(socket.SOCK_DGRAM)
        self.dir = os.path.join(run, "bmc-" + name)
        os.makedirs(os.path.join(self.dir, "values"), exist_ok=True)
        self.pid = None
        self.proc = None
        self.hung = False
        self.written = {}

    def publish(self, v, feed_a_up=True):
        for fname, q in self.FILES:
            self.write(fname, str(int(round(v[q]["served"]))))
        # PSU1 status bits: 0 presence detected, 3 input lost (its feed).
        self.write("ps1_status", "1" if feed_a_up else "9")

    def write(self, fname, text):
        if self.written.get(fname) != text:
            atomic_write(os.path.join(self.dir, "values", fname), text + "\n")
            self.written[fname] = text

    def start(self):
        self.proc = subprocess.Popen(["sh", os.path.join(SRC, "tests/fixtures/ipmi_sim/start-bmc.sh"),
                                      self.name, str(self.port), self.dir],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_started(self):
        out, err = self.proc.communicate(timeout=120)
        if self.proc.returncode != 0:
            raise RuntimeError(f"BMC {self.name}: ipmi_sim did not start: {err.strip()}")
        self.pid = int(out.strip())

    def hang(self, on):
        if self.pid and on != self.hung:
            os.kill(self.pid, signal.SIGSTOP if on else signal.SIGCONT)
            self.hung = on


# ---------------------------------------------------------------- the simulator

class Sim:
    def __init__(self, args, scenario):
        self.args = args
        self.scenario = scenario
        self.loop = model.Loop(scenario.get("rack") or {}, args.racks or scenario.get("racks") or 1)
        self.all_pdus = [p for r in self.loop.racks for p in r.pdus]
        self.all_servers = self.loop.servers()
        self.served = Served(self)
        self.run = args.run
        self.pending = list(scenario["events"])   # scenario events, by time
        self.held = False
        self.control_mtime = None
        self.truth = open(os.path.join(self.run, "truth.jsonl"), "a", encoding="utf-8")
        self.devices = not args.no_devices
        self.cdu = ModbusCdu(args.modbus_port or free_port()) if self.devices else None
        self.pdus = [SnmpPdu(p.name, self.run) for p in self.all_pdus] if self.devices else []
        self.bmcs = [IpmiBmc(s.name, self.run) for s in self.all_servers] if self.devices else []
        self.last_publish = None
        self.stopping = False
        self.table_rows = 0
        self.note = ""                # the last event's `note`: where the story is
        self.known = {(d, q) for d, qs in Served(self).snapshot().items() for q in qs}
        for i, ev in enumerate(self.pending):
            problem = self.unknown_target(ev)
            if problem:
                raise ValueError(f"events[{i}]: {problem}")

    def unknown_target(self, ev):
        """Why an event names a device or quantity this rack lacks, or None."""
        for kind in ("stuck", "drift", "clear"):
            if kind in ev and (ev[kind]["device"], ev[kind]["quantity"]) not in self.known:
                return (f"{kind}: no quantity {ev[kind]['quantity']!r} on device {ev[kind]['device']!r}"
                        " (see state.json for the names)")
        if "feed" in ev and ev["feed"]["pdu"] not in [p.name for p in self.all_pdus]:
            return f"feed.pdu: no PDU {ev['feed']['pdu']!r}"
        if "bmc" in ev and ev["bmc"]["server"] not in [s.name for s in self.all_servers]:
            return f"bmc.server: no server {ev['bmc']['server']!r}"
        return None

    # -- events
    def apply(self, ev, source):
        r = self.loop
        try:
            if "job" in ev:
                j = dict(ev["job"] or {})
                servers = j.pop("servers", None)
                racks = j.pop("racks", None)
                for k in j:
                    if k not in ("util", "ramp", "swing", "period", "shape"):
                        raise ValueError(f"job.{k}: unknown (util, ramp, swing, period, shape, servers, racks)")
                for rack in r.racks:
                    if racks is None or rack.index in racks:
                        rack.set_job(servers, **j)
            elif "set" in ev:
                for k, val in (ev["set"] or {}).items():
                    r.set_param(k, val, float(ev.get("over", 0) or 0))
            elif "stuck" in ev or "drift" in ev:
                kind = "stuck" if "stuck" in ev else "drift"
                f = ev[kind]
                entry = {"kind": kind, "t0": r.t}
                if kind == "drift":
                    entry["per_min"] = float(f["per_min"])
                if "value" in f:
                    entry["value"] = float(f["value"])
                self.served.faults[(f["device"], f["quantity"])] = entry
            elif "clear" in ev:
                f = ev["clear"]
                self.served.faults.pop((f["device"], f["quantity"]), None)
            elif "feed" in ev:
                f = ev["feed"]
                pdu = next((p for p in self.all_pdus if p.name == f["pdu"]), None)
                if pdu is None:
                    raise ValueError(f"feed.pdu: '{f['pdu']}' is not one of {', '.join(p.name for p in self.all_pdus)}")
                pdu.rack.feeds_up[pdu.feed] = bool(f.get("up", False))
            elif "bmc" in ev:
                f = ev["bmc"]
                for b in self.bmcs:
                    if b.name == f["server"]:
                        b.hang(bool(f.get("hang", True)))
            elif "hold" in ev:
                self.held = bool(ev["hold"])
        except (KeyError, TypeError, ValueError) as e:
            log.warning("%s: event %s not applied: %s", source, json.dumps(ev), e)
            return
        if ev.get("note"):
            self.note = str(ev["note"])
        log.info("t=%.1f %s: %s", r.t, source, json.dumps(ev))
        self.record_event(ev, source)

    def record_event(self, ev, source):
        self.truth.write(json.dumps({"t": round(self.loop.t, 3), "wall": round(time.time(), 3),
                                     "device": "racksim", "quantity": "event", "source": source,
                                     "event": ev}) + "\n")

    def poll_control(self):
        path = self.args.control
        try:
            st = os.stat(path)
        except OSError:
            return
        mtime = (st.st_ino, st.st_mtime_ns, st.st_size)   # a rename over it is a change
        if mtime == self.control_mtime:
            return
        self.control_mtime = mtime
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            log.warning("control file %s: %s", path, e)
            return
        if isinstance(doc, dict) and "events" not in doc:
            doc = {"events": [doc]}
        if isinstance(doc, list):
            doc = {"events": doc}
        for i, ev in enumerate((doc or {}).get("events") or []):
            try:
                check_event(ev, f"{path}: events[{i}]")
            except SystemExit as e:
                log.warning("%s", e)
                continue
            problem = self.unknown_target(ev)
            if problem:
                log.warning("%s: events[%d]: %s", path, i, problem)
                continue
            if float(ev.get("at", 0) or 0) > 0:
                ev = dict(ev, at=self.loop.t + float(ev["at"]))
                self.pending.append(ev)
                self.pending.sort(key=lambda e: float(e.get("at", 0)))
            else:
                self.apply(ev, "control")

    # -- publishing
    def publish(self):
        snap = self.served.snapshot()
        t, wall = round(self.loop.t, 3), round(time.time(), 3)
        if self.devices:
            self.cdu.publish(snap["cdu1"])
            for pdu, m in zip(self.pdus, self.all_pdus):
                pdu.publish(snap[pdu.name], m.rack.servers)
            for b, m in zip(self.bmcs, self.all_servers):
                b.publish(snap[b.name], m.rack.feed_up(0))
        lines = []
        for dev, qs in snap.items():
            for q, x in qs.items():
                lines.append(json.dumps({"t": t, "wall": wall, "device": dev, "quantity": q, "unit": x["unit"],
                                         "true": round(x["true"], 6),
                                         "served": None if x["served"] is None else round(x["served"], 6),
                                         "tol": x.get("tol")}))
        self.truth.write("\n".join(lines) + "\n")
        self.truth.flush()
        atomic_write(os.path.join(self.run, "state.json"),
                     json.dumps({"t": t, "wall": wall, "held": self.held,
                                 "scenario": self.scenario.get("name"), "note": self.note,
                                 "faults": [{"device": d, "quantity": q, "kind": f["kind"]}
                                            for (d, q), f in self.served.faults.items()],
                                 "racks": {r.id: {"prefix": r.prefix, "feeds_up": r.feeds_up,
                                                  "devices": ["cdu1"] + [x.name for x in r.pdus + r.servers]}
                                           for r in self.loop.racks},
                                 "params": self.loop.p,
                                 "devices": snap}, indent=1))
        if self.args.table:
            self.print_table(snap)

    def print_table(self, snap):
        c, rk = snap["cdu1"], snap["rack"]
        if self.table_rows % 20 == 0:
            print(f"{'t/s':>6} {'IT kW':>6} {'PDU kW':>6} {'GPU max':>7} {'supply':>6} {'return':>6} "
                  f"{'dT':>5} {'flow':>6} {'Q kW':>6} {'pump%':>5} {'level':>5} thr", flush=True)
        gmax = max(v["served"] for d, qs in snap.items() if "gpu" in d
                   for q, v in qs.items() if q.startswith("gpu.temp"))
        s = lambda q: c[q]["served"]   # noqa: E731
        print(f"{self.loop.t:6.1f} {rk['rack.it_power']['true']:6.1f} {rk['rack.pdu_power']['true']:6.1f} "
              f"{gmax:7.0f} {s('cdu.supply_temp'):6.1f} {s('cdu.return_temp'):6.1f} "
              f"{s('cdu.return_temp') - s('cdu.supply_temp'):5.1f} {s('cdu.flow'):6.1f} "
              f"{s('cdu.heat_load'):6.1f} {s('cdu.pump1_speed'):5.1f} {s('cdu.level'):5.0f} "
              f"{int(rk['rack.throttled_servers']['true'])}", flush=True)
        self.table_rows += 1

    # -- the loop
    async def run_loop(self):
        speed = self.args.speed
        start = time.monotonic()
        k = 0
        until = self.args.for_seconds
        publish_every = max(1, int(round(self.args.publish / STEP)))
        steps = 0
        while not self.stopping:
            self.poll_control()
            while self.pending and float(self.pending[0].get("at", 0)) <= self.loop.t + 1e-9:
                self.apply(self.pending.pop(0), "scenario")
            if not self.held:
                self.loop.step(STEP)
                steps += 1
            if k % publish_every == 0:
                self.publish()
            k += 1
            if until and time.monotonic() - start >= until:
                break
            if self.args.until and self.loop.t >= self.args.until - 1e-9:
                self.publish()
                break
            delay = start + k * STEP / speed - time.monotonic()
            if delay < -1.0:        # far behind (a loaded machine): do not try to catch up
                start += -delay
                delay = 0
            await asyncio.sleep(max(delay, 0))

    # -- devices
    def start_devices(self):
        self.publish()      # the value files and OIDs exist before the servers start
        for b in self.bmcs:
            b.start()
        for p in self.pdus:
            p.start()
        errors = []
        for b in self.bmcs:
            try:
                b.wait_started()
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                errors.append(str(e))
        if errors:
            raise RuntimeError("; ".join(errors))

    def stop_devices(self):
        for b in self.bmcs:
            if b.pid:
                try:
                    if b.hung:
                        os.kill(b.pid, signal.SIGCONT)
                    os.kill(b.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            if b.proc and b.proc.poll() is None:
                b.proc.kill()
        for p in self.pdus:
            if p.proc and p.proc.poll() is None:
                p.proc.terminate()
        deadline = time.monotonic() + 5
        for p in self.pdus:
            if p.proc:
                try:
                    p.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.proc.kill()
        for b in self.bmcs:
            if b.pid:
                for _ in range(50):
                    try:
                        os.kill(b.pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.1)
                else:
                    try:
                        os.kill(b.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def agent_configs(self, path):
        """Writes an agent config per rack: PATH for one rack, else
        PATH-with-the-rack-id-before-its-extension (a.yaml -> a-sim-r02.yaml).
        Every rack's agent reads the loop's CDU. Returns the paths."""
        racks = self.loop.racks
        paths = []
        for r in racks:
            if len(racks) == 1:
                out = path
            else:
                stem, ext = os.path.splitext(path)
                out = f"{stem}-{r.id}{ext or '.yaml'}"
            self.agent_config(out, r, suffix="" if len(racks) == 1 else "-" + r.id)
            paths.append(out)
        return paths

    def agent_config(self, path, rack, suffix):
        a = self.args
        p = self.loop.p
        agent_id = (a.agent_id + suffix) if a.agent_id else "agent-" + rack.id
        state_dir = (a.state_dir or os.path.join(self.run, "agent-state")) + suffix
        lines = [
            "# Written by tools/racksim/racksim.py for the devices it started.",
            f"agent: {{id: {agent_id}, rack: {rack.id}, interval: {a.interval},",
            f"        state_dir: {state_dir},",
            f"        profiles_dir: {os.path.join(SRC, 'packaging/profiles')}}}",
            f"kafka: {{brokers: \"{a.brokers}\", linger: 5ms}}",
            "derived:",
            "  - {name: cdu.delta_t, type: delta_t, return: cdu.return_temp, supply: cdu.supply_temp}",
            "  - {name: cdu.heat_removed, type: heat_removed, return: cdu.return_temp,",
            f"     supply: cdu.supply_temp, flow: cdu.flow, coolant: {p['coolant']}}}",
            "modbus:",
            f"  - {{name: cdu1, host: 127.0.0.1, port: {self.cdu.port}, profile: generic-cdu}}",
            "snmp:",
        ]
        names = {x.name for x in rack.pdus + rack.servers}
        for pdu in self.pdus:
            if pdu.name in names:
                lines.append(f"  - {{name: {pdu.name}, host: 127.0.0.1, port: {pdu.port}, version: 2c,"
                             f" community_file: {pdu.community_file}, profile: raritan-px}}")
        lines.append("ipmi:")
        for b in self.bmcs:
            if b.name in names:
                lines.append(f"  - {{name: {b.name}, host: 127.0.0.1, port: {b.port}, user: admin,"
                             f" password_file: {b.dir}/passfile}}")
        atomic_write(path, "\n".join(lines) + "\n")

    def ports(self):
        return {"cdu1": {"modbus_tcp": self.cdu.port},
                **{p.name: {"snmp_udp": p.port, "community_file": p.community_file} for p in self.pdus},
                **{b.name: {"ipmi_udp": b.port, "pid": b.pid} for b in self.bmcs}}


async def amain(sim):
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(sim, "stopping", True))
    tasks = []
    if sim.devices:
        tasks.append(loop.create_task(sim.cdu.serve()))
        deadline = time.monotonic() + 60
        while not all(p.ready() for p in sim.pdus):
            if time.monotonic() > deadline:
                raise RuntimeError("snmpd did not answer within 60 s; see "
                                   + ", ".join(os.path.join(p.dir, "snmpd.log") for p in sim.pdus))
            for p in sim.pdus:
                if p.proc.poll() is not None:
                    raise RuntimeError(f"snmpd for {p.name} exited; see {p.dir}/snmpd.log")
            await asyncio.sleep(0.2)
        while True:
            try:
                socket.create_connection(("127.0.0.1", sim.cdu.port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the Modbus server did not start")
                await asyncio.sleep(0.1)
        configs = sim.agent_configs(sim.args.agent_config) if sim.args.agent_config else []
        ready = {"run": sim.run, "rack": sim.loop.racks[0].id, "racks": [r.id for r in sim.loop.racks],
                 "agent_configs": configs, "scenario": sim.scenario.get("name"),
                 "pid": os.getpid(), "devices": sim.ports()}
        atomic_write(os.path.join(sim.run, "ready.json"), json.dumps(ready, indent=1))
        print(f"racksim: ready: {json.dumps(ready)}", file=sys.stderr, flush=True)
    try:
        await sim.run_loop()
    finally:
        for t in tasks:
            t.cancel()


def main():
    p = argparse.ArgumentParser(description="A simulated rack that obeys physics (see tools/racksim/README.md).")
    p.add_argument("--scenario", default="idle", help="scenario name (scenarios/NAME.yaml) or path")
    p.add_argument("--racks", type=int, default=0,
                   help="racks sharing the CDU's loop (default: the scenario's `racks`, else 1)")
    p.add_argument("--agent-config", help="write an agent config for the started devices here")
    p.add_argument("--run", help="run directory: truth.jsonl, state.json, devices (default: a new /tmp dir)")
    p.add_argument("--control", help="live control file (YAML/JSON events), default RUN/control.yaml")
    p.add_argument("--for", dest="for_seconds", type=float, default=0, help="stop after this many seconds")
    p.add_argument("--until", type=float, default=0, help="stop at this model time (s)")
    p.add_argument("--speed", type=float, default=1.0, help="model seconds per wall second (default 1)")
    p.add_argument("--publish", type=float, default=1.0, help="seconds of model time between publishes (1)")
    p.add_argument("--brokers", default="127.0.0.1:1", help="Kafka brokers for the agent config")
    p.add_argument("--interval", default="1s", help="the agent's interval in the agent config")
    p.add_argument("--state-dir", help="the agent's state_dir in the agent config")
    p.add_argument("--agent-id", help="the agent's id in the agent config")
    p.add_argument("--modbus-port", type=int, help="TCP port of the CDU (default: a free one)")
    p.add_argument("--no-devices", action="store_true", help="run the model only (truth and state)")
    p.add_argument("--table", action="store_true", help="print a compact table at every publish")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="racksim: %(message)s")
    # pymodbus logs a client hanging up, and a refused address, as errors.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if args.speed <= 0 or args.publish < STEP:
        p.error("--speed must be > 0 and --publish >= 0.1")
    scenario = load_scenario(args.scenario)
    args.run = os.path.abspath(args.run or tempfile.mkdtemp(prefix="racksim."))
    os.makedirs(args.run, exist_ok=True)
    args.control = args.control or os.path.join(args.run, "control.yaml")
    try:
        sim = Sim(args, scenario)
    except ValueError as e:
        raise SystemExit(f"racksim: scenario {scenario['path']}: {e}")
    rc = 0
    try:
        if sim.devices:
            sim.start_devices()
        asyncio.run(amain(sim))
    except RuntimeError as e:
        print(f"racksim: {e}", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop_devices()
        sim.truth.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
