#!/usr/bin/python3
"""Compares what the agent read (a `rackpulse-agent --once` frame as JSON)
with racksim's ground truth at that time (RUN/state.json, taken while the
model is held, so both describe the same instant).

  fidelity.py FRAME.json STATE.json [--protocols modbus,snmp,ipmi,derived]

Per served quantity of the chosen protocols (cdu1: Modbus, pdu-*: SNMP,
gpu*: IPMI), keyed by device, metric name and labels:
  - present in the frame, with the same unit;
  - agent == served within the frame's own encoding (0.5 x 10^-decimals of
    the series): scales, word orders, signs and decimal digits decoded right;
  - served == true within the device's resolution (the `tol` racksim
    records: 0.05 for x0.1 registers, 0.5 degC / 10 W / 50 rpm for the BMC's
    8-bit readings, the PDU's decimal digits), unless a fault is injected.
`derived` checks the values the gate uses against the model:
  - cdu.delta_t (return - supply) against the true dT, within 0.1 K
    (two sensors at 0.05 K resolution);
  - cdu.heat_removed against the model's heat flow Q, within the CDU
    heat_load tolerance (flow and temperature resolution);
  - rack IT power: the sum of the servers' PSU power against the model's,
    within 20 W per server (two PSU readings at 20 W resolution);
  - power balance: sum of PDU inlet power = sum of server PSU power x (1 +
    PDU loss) + the PDUs' own draw, within 10 W per PSU reading + 1 W;
  - capture: heat_removed / IT power against the model's, within 0.02
    (one rack on the loop only: a shared loop's heat is every rack's).
With several racks on one loop (racksim --racks N), only the frame's rack's
devices (state.json "racks") and the shared CDU are compared.
Prints one line per protocol; exit status 0 when every check passes.
"""
import argparse
import json
import re
import sys


def load_frame(path):
    f = json.load(open(path, encoding="utf-8"))
    dic = {s["id"]: s for s in f["dictionary"]}
    values = {}
    for s in f["samples"]:
        d = dic[s["series"]]
        labels = ",".join(f"{k}={v}" for k, v in sorted(d.get("labels", {}).items()))
        q = d["name"] + (f"{{{labels}}}" if labels else "")
        values[(d["device"], q)] = (s["value"], d.get("unit", ""), d.get("decimals", 0))
    return f, values


def protocol_of(device):
    device = re.sub(r"^r[0-9]{2}-", "", device)    # a rack's prefix on a shared loop
    if device == "cdu1":
        return "modbus"
    if device.startswith("pdu"):
        return "snmp"
    if device.startswith("gpu"):
        return "ipmi"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frame")
    ap.add_argument("state")
    ap.add_argument("--protocols", default="modbus,snmp,ipmi,derived")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every comparison")
    a = ap.parse_args()
    want = set(a.protocols.split(","))
    frame, values = load_frame(a.frame)
    state = json.load(open(a.state, encoding="utf-8"))
    faults = {(x["device"], x["quantity"]) for x in state.get("faults", [])}
    errors = {p: [] for p in want}
    counts = {p: 0 for p in want}
    worst = {p: 0.0 for p in want}
    up = {d["device"]: d["up"] for d in frame["devices"]}
    # The frame's rack: its devices (with several racks on a loop, each
    # agent reads its own rack and the shared CDU).
    rack = state.get("racks", {}).get(frame.get("rack_id"))
    if rack is None:
        print(f"fidelity: the frame's rack {frame.get('rack_id')!r} is not in {a.state}", file=sys.stderr)
        return 1
    mine = set(rack["devices"])
    prefix = rack["prefix"]

    for dev, qs in state["devices"].items():
        proto = protocol_of(dev)
        if proto not in want or dev not in mine:
            continue
        if not up.get(dev):
            errors[proto].append(f"{dev}: not up in the frame")
            continue
        for q, x in qs.items():
            if x.get("served") is None:
                continue
            got = values.get((dev, q))
            if got is None:
                errors[proto].append(f"{dev} {q}: not in the frame")
                continue
            v, unit, decimals = got
            counts[proto] += 1
            if x["unit"] and unit != x["unit"]:
                errors[proto].append(f"{dev} {q}: unit {unit!r}, served {x['unit']!r}")
            enc = 0.5 * 10 ** -decimals + 1e-9
            if abs(v - x["served"]) > enc:
                errors[proto].append(f"{dev} {q}: agent {v}, served {x['served']} (encoding tolerance {enc:g})")
            if (dev, q) not in faults and abs(x["served"] - x["true"]) > x["tol"] + 1e-9:
                errors[proto].append(f"{dev} {q}: served {x['served']}, true {x['true']:.4f} (tolerance {x['tol']:g})")
            worst[proto] = max(worst[proto], abs(v - x["true"]) / (x["tol"] + enc) if x["tol"] + enc else 0)
            if a.verbose:
                print(f"  {proto:6} {dev:6} {q:34} agent {v:<12g} served {x['served']:<12g} true {x['true']:.4f}")

    if "derived" in want:
        p = "derived"
        rk = state["devices"]["rack"]
        par = state["params"]

        def agent(dev, q):
            got = values.get((dev, q))
            if got is None:
                errors[p].append(f"{dev} {q}: not in the frame")
                return None
            return got[0]

        def close(name, got, true, tol):
            counts[p] += 1
            if got is None:
                return
            if a.verbose:
                print(f"  {p:6} {name:41} agent {got:<12g} true {true:.4f} tolerance {tol:g}")
            worst[p] = max(worst[p], abs(got - true) / tol)
            if abs(got - true) > tol:
                errors[p].append(f"{name}: agent {got:.4f}, true {true:.4f} (tolerance {tol:g})")

        close("cdu.delta_t (return - supply)", agent("derived", "cdu.delta_t"), rk["cdu.delta_t"]["true"], 0.1 + 1e-6)
        close("cdu.heat_removed", agent("derived", "cdu.heat_removed"), rk["cdu.heat_removed"]["true"],
              state["devices"]["cdu1"]["cdu.heat_load"]["tol"] + 1e-3)
        servers = sorted(d for d in mine if protocol_of(d) == "ipmi")
        pdus = sorted(d for d in mine if protocol_of(d) == "snmp")
        srv = [agent(d, "server.power{source=psu_sum}") for d in servers]
        pdu = [agent(d, "pdu.power{inlet=1}") for d in pdus]
        if None not in srv and None not in pdu:
            own = state["devices"].get(prefix + "rack", rk)       # this rack's truth
            close("rack IT power: sum server.power (kW)", sum(srv) / 1000.0, own["rack.it_power"]["true"],
                  0.02 * len(servers) + 1e-6)
            up_pdus = sum(1 for f in rack["feeds_up"][:len(pdus)] if f)
            expect = sum(srv) * (1.0 + par["pdu_loss"]) + par["pdu_own_w"] * up_pdus
            close("power balance: sum pdu.power (W)", sum(pdu), expect, 10.0 * 2 * len(servers) + 1.0 * len(pdus))
            q = agent("derived", "cdu.heat_removed")
            # On a shared loop the CDU's heat is every rack's, not this one's.
            if q is not None and sum(srv) > 0 and len(state["racks"]) == 1:
                close("capture: heat_removed / IT power", q / (sum(srv) / 1000.0), rk["rack.capture"]["true"], 0.02)

    rc = 0
    for proto in sorted(want):
        status = "ok" if not errors[proto] else "FAIL"
        print(f"{proto:8} {status:4} {counts[proto]:3} values compared, worst error {worst[proto]:.2f} of its tolerance")
        for e in errors[proto][:20]:
            print(f"         {e}")
        if errors[proto] or counts[proto] == 0:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
