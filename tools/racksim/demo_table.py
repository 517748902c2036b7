#!/usr/bin/python3
"""The demo's live table (tools/demo.sh): every few seconds, one row a person
can read at a glance, from the aggregator's HTTP API (what the gate sees)
and racksim's state (where the story is):

  time      story               power headroom supply return    dT  flow  gate  why                        flags
  12:00:01  0:12 idle             7.4     34.6   30.0   31.5   1.5  55.3  ALLOW -                          -

power = the sum of the PDUs' pdu.power the agent read (kW); headroom = the
gate's power headroom for the request; supply/return/flow from the CDU, dT
the agent's derived cdu.delta_t; gate = the decision for --kw; why = the
failing checks with observed value and limit; flags = flags in force on
the rack (automatic ones marked *).

  demo_table.py --url http://127.0.0.1:8470 --rack demo-r01 --kw 10 --state RUN/state.json [--for S]
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request

HEADER = (f"{'time':8}  {'story':18} {'power':>6} {'headroom':>8} {'supply':>6} {'return':>6} "
          f"{'dT':>5} {'flow':>5}  {'gate':5} {'why':26} flags")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        try:
            return json.load(e)
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


def latest(rack, name):
    """Values of the rack's latest series named `name` (any device, labels);
    the API's keys are NAME{labels}@device."""
    out = []
    for key, s in (rack or {}).get("series", {}).items():
        if key.split("@")[0].split("{")[0] == name and s.get("value") is not None:
            out.append(s["value"])
    return out


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else format("-", spec.split(".")[0].lstrip(".") or "")


def row(args):
    rack = get(f"{args.url}/v1/racks/{args.rack}")
    gate = get(f"{args.url}/v1/racks/{args.rack}/gate?kw={args.kw}")
    flags = get(f"{args.url}/v1/flags?rack={args.rack}")
    try:
        with open(args.state, encoding="utf-8") as f:
            st = json.load(f)
        t = int(st["t"])
        story = f"{t // 60}:{t % 60:02d} {st.get('note') or ''}"[:18]
    except (OSError, ValueError, KeyError):
        story = "-"
    power = latest(rack, "pdu.power")
    power = sum(power) / 1000.0 if power else None

    def one(name):
        v = latest(rack, name)
        return v[0] if v else None
    checks = {c["name"]: c for c in (gate or {}).get("checks", [])}
    head = checks.get("power_headroom", {}).get("observed")
    why = []
    for c in (gate or {}).get("checks", []):
        if not c.get("pass"):
            obs, lim = c.get("observed"), c.get("limit")
            if c["name"] == "flags":
                why.append("flags")
            elif "hysteresis" in c.get("reason", ""):
                why.append(f"{c['name']} {obs:.1f} (hysteresis)")
            elif isinstance(obs, (int, float)) and isinstance(lim, (int, float)):
                op = "<" if c["name"].endswith("headroom") or ("min" in c and lim == c["min"]) else ">"
                why.append(f"{c['name']} {obs:.1f}{op}{lim:g}")
            else:
                why.append(c["name"])
    decision = (gate or {}).get("decision", "?").upper() if gate else "?"
    fl = []
    for f in (flags or {}).get("flags", []):
        fl.append(f.get("flag", "?") + ("*" if f.get("source") == "auto" else ""))
    return (f"{time.strftime('%H:%M:%S')}  {story:18} {fmt(power, '6.1f')} {fmt(head, '8.1f')} "
            f"{fmt(one('cdu.supply_temp'), '6.1f')} {fmt(one('cdu.return_temp'), '6.1f')} "
            f"{fmt(one('cdu.delta_t'), '5.1f')} {fmt(one('cdu.flow'), '5.1f')}  {decision:5} "
            f"{(', '.join(why) or '-'):26} {', '.join(fl) or '-'}")


def main():
    ap = argparse.ArgumentParser(description="The demo's live table.")
    ap.add_argument("--url", required=True)
    ap.add_argument("--rack", required=True)
    ap.add_argument("--kw", type=float, default=10)
    ap.add_argument("--state", required=True, help="racksim's RUN/state.json")
    ap.add_argument("--every", type=float, default=2.0)
    ap.add_argument("--for", dest="for_s", type=float, default=0, help="stop after S seconds (0: never)")
    a = ap.parse_args()
    start = time.monotonic()
    n = 0
    try:
        while not a.for_s or time.monotonic() - start < a.for_s:
            if n % 20 == 0:
                print(HEADER, flush=True)
            print(row(a), flush=True)
            n += 1
            time.sleep(max(0.0, start + n * a.every - time.monotonic()))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
