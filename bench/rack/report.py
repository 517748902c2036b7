#!/usr/bin/python3
"""report.py: the table of bench/rack/run.sh.

  report.py WORK SRC NAME...

For each NAME (collectd, rackpulse-ipmitool, rackpulse-freeipmi) it reads WORK/NAME.meas (key=value lines
written by run.sh: CPU, RSS, duration) and WORK/NAME.kcat (every message of
the collector's topic, as kcat -f '%S:%s' wrote them: length-prefixed), and
counts the values delivered to Kafka:
  collectd   JSON format of write_kafka: each message is an array of value
             lists; a value list holds len(values) values.
  rackpulse  protobuf frames (proto/rackpulse.proto): the samples of every
             SampleBlock (series ids), decoded with `protoc --decode` in one
             call (the frames wrapped as a repeated field of a FrameList).
Kinds come from collectd's plugin name, and for rackpulse from the device of
the series (dictionary) and the device's kind (devices).
Bytes after lz4: each rackpulse frame compressed on its own (one frame a
second is one Kafka batch: the agent lingers 5 ms), collectd's messages
compressed together per second of their values' time (the most batching
librdkafka could do for them), with lz4's frame format (python3-lz4).
Prints a Markdown table and the ratios rackpulse-* / collectd.
"""
import json
import os
import re
import statistics
import subprocess
import sys

try:
    import lz4.frame
except ImportError:  # python3-lz4: only the "after lz4" figures need it
    lz4 = None


def messages(path):
    data = open(path, "rb").read()
    out, i = [], 0
    while i < len(data):
        j = data.index(b":", i)
        n = int(data[i:j])
        out.append(data[j + 1:j + 1 + n])
        i = j + 1 + n
    return out


# Series rackpulse sends that collectd's configuration has no counterpart for:
# the server power (DCMI, or the sum of the PSU sensors), the IPMI
# collector's own health, and one series per alarm bit of the CDU's bitfield
# (collectd delivers the register). Left out of the "comparable" values.
RACKPULSE_EXTRA = {"server.power", "ipmi.timeouts", "ipmi.children", "ipmi.sessions"}


def lz4_bytes(groups):
    if lz4 is None:
        return float("nan")
    return sum(len(lz4.frame.compress(b"".join(g))) for g in groups)


def collectd_groups(msgs):
    by_second = {}
    for m in msgs:
        vl = json.loads(m)
        by_second.setdefault(int(vl[0]["time"]) if vl else 0, []).append(m)
    return list(by_second.values())


def count_collectd(msgs):
    kinds, total, first, last, times = {}, 0, None, None, []
    for m in msgs:
        for vl in json.loads(m):
            n = len(vl["values"])
            total += n
            times += [vl["time"]] * n
            kinds[vl["plugin"]] = kinds.get(vl["plugin"], 0) + n
            t = vl["time"]
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
    return dict(messages=len(msgs), bytes=sum(map(len, msgs)), values=total, comparable=total,
                lz4=lz4_bytes(collectd_groups(msgs)),
                kinds=kinds, stats=0,
                ctimes=times,
                span=(last - first) if msgs else 0, failures="see collectd.log")


def varint(n):
    b = bytearray()
    while True:
        x = n & 0x7F
        n >>= 7
        if n:
            b.append(x | 0x80)
        else:
            b.append(x)
            return bytes(b)


def count_rackpulse(msgs, work, src):
    wrapper = os.path.join(work, "framelist.proto")
    with open(wrapper, "w") as f:
        f.write('syntax = "proto3";\nimport "rackpulse.proto";\n'
                "message FrameList { repeated rackpulse.v1.Frame frames = 1; }\n")
    blob = b"".join(b"\x0a" + varint(len(m)) + m for m in msgs)
    txt = subprocess.run(["protoc", "--decode=FrameList", "-I", work, "-I",
                          os.path.join(src, "proto"), wrapper], input=blob,
                         capture_output=True, check=True).stdout.decode()
    stack, series, dev_kind = [], {}, {}
    sample_ids, nstats, ts, last_dev, block_ts = [], 0, [], {}, []
    for line in txt.splitlines():
        s = line.strip()
        if s.endswith("{"):
            stack.append((s[:-1].strip(), {}))
            continue
        if s == "}":
            top, cur = stack.pop()
            if top == "dictionary":
                series[int(cur.get("id", 0))] = (cur.get("device", "").strip('"'),
                                                  cur.get("name", "").strip('"'),
                                                  cur.get("labels", 0))
            elif top == "labels":
                stack[-1][1]["labels"] = stack[-1][1].get("labels", 0) + 1
            elif top == "devices":
                d = cur.get("device", "").strip('"')
                dev_kind[d] = cur.get("kind", "").strip('"')
                last_dev[d] = (int(cur.get("scrapes", 0)), int(cur.get("failures", 0)))
            elif top == "stats":
                nstats += 1
            continue
        k, _, v = s.partition(": ")
        top, cur = stack[-1] if stack else ("", {})
        if top == "samples" and k == "series":
            sample_ids.append(int(v))
            block_ts.append(cur.get("ts_ms", "0"))
        elif top == "frames" and k == "ts_ms":
            ts.append(int(v))
        else:
            cur[k] = v
    kinds, extra, ctimes = {}, 0, []
    for sid, t in zip(sample_ids, block_ts):
        dev, name, nlabels = series.get(sid, ("", "", 0))
        kind = dev_kind.get(dev, "?")
        kinds[kind] = kinds.get(kind, 0) + 1
        if name in RACKPULSE_EXTRA or (name == "cdu.alarms" and nlabels):
            extra += 1
        else:
            ctimes.append(int(t) / 1000)
    fails = sum(f for _, f in last_dev.values())
    return dict(messages=len(msgs), bytes=sum(map(len, msgs)), values=len(sample_ids),
                lz4=lz4_bytes([[m] for m in msgs]),
                comparable=len(sample_ids) - extra,
                ctimes=ctimes,
                kinds=kinds, stats=nstats, span=(max(ts) - min(ts)) / 1000 if ts else 0,
                failures=fails)


def meas(path):
    d = {}
    for line in open(path):
        k, _, v = line.strip().partition("=")
        d[k] = v
    return d


def base(name):
    """A collector's name without its round (run.sh --rounds: NAME.rR)."""
    head, dot, tail = name.rpartition(".r")
    return head if dot and tail.isdigit() else name


def rounds_summary(paths):
    """run.sh --rounds: each round's ratios to collectd, and their median."""
    runs = [json.load(open(p)) for p in paths]
    names = [n for n in runs[0] if n != "collectd"]
    print(f"Ratios to collectd per round ({len(runs)} rounds; CPU ms per 1 000 comparable "
          "values, the collector's over collectd's of the same round):")
    print("| collector | " + " | ".join(f"round {i + 1}" for i in range(len(runs))) +
          " | **median** | min-max |")
    print("|---|" + "---|" * (len(runs) + 2))
    for what, key in (("run", "per1000c"), ("steady", "steady1000")):
        for n in names:
            ratios = [r[n][key] / r["collectd"][key] for r in runs]
            print(f"| {n}, {what} | " + " | ".join(f"{x:.3f}" for x in ratios) +
                  f" | **{statistics.median(ratios):.3f}** | {min(ratios):.3f}-{max(ratios):.3f} |")
    print("| collectd, run (ms) | " + " | ".join(f"{r['collectd']['per1000c']:.1f}" for r in runs) +
          f" | {statistics.median(r['collectd']['per1000c'] for r in runs):.1f} | |")


def main():
    if sys.argv[1] == "--rounds":
        rounds_summary(sys.argv[2:])
        return
    work, src, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = {}
    for name in names:
        m = meas(os.path.join(work, name + ".meas"))
        msgs = messages(os.path.join(work, name + ".kcat"))
        c = (count_collectd(msgs) if base(name) == "collectd"
             else count_rackpulse(msgs, work, src))
        c["values"] = c["values"] or 1
        c.update(m)
        c["cpu"] = float(m["cpu_tree_s"])
        c["per1000"] = c["cpu"] * 1e6 / c["values"] if c["values"] else float("nan")
        c["per1000c"] = c["cpu"] * 1e6 / c["comparable"] if c["comparable"] else float("nan")
        w1, w2 = float(m["steady_w1"]), float(m["steady_w2"])
        c["steady_values"] = sum(1 for t in c["ctimes"] if w1 <= t < w2)
        c["steady_cpu"] = float(m["steady_cpu_s"])
        c["steady_s"] = w2 - w1
        c["steady1000"] = (c["steady_cpu"] * 1e6 / c["steady_values"] if c["steady_values"]
                           else float("nan"))
        rows[name] = c
    # Within a round, collectd's row goes by its plain name.
    rows = {base(n): r for n, r in rows.items()}
    names = [base(n) for n in names]
    if os.environ.get("RP_REPORT_JSON"):
        with open(os.environ["RP_REPORT_JSON"], "w") as out:
            json.dump({n: {"per1000c": r["per1000c"], "steady1000": r["steady1000"]}
                       for n, r in rows.items()}, out)
    mib = lambda kb: int(kb) / 1024
    for r in rows.values():
        r["tree_kb"] = int(r["hwm_kb"]) + int(r["child_rss_kb"])
    print(f"CPU: {rows[names[0]]['cpu_method']}")
    print("| collector | run s | CPU s, process tree (user + sys) | main process only | "
          "peak RSS, main (VmHWM) | children at the end: RSS (PSS) | **RSS, whole tree** | "
          "Kafka messages | values delivered: ipmi / snmp / modbus | comparable values | "
          "window stats | bytes a value (after lz4) | CPU ms per 1 000 values | "
          "**per 1 000 comparable** |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        k = r["kinds"]
        v = max(r["values"], 1)
        print(f"| {name} | {float(r['run_s']):.0f} | {r['cpu']:.2f} ({float(r['cpu_user_s']):.2f} + "
              f"{float(r['cpu_sys_s']):.2f}) | {float(r['cpu_main_s']):.2f} | "
              f"{mib(r['hwm_kb']):.1f} MiB | {r['children']}: {mib(r['child_rss_kb']):.1f} MiB "
              f"({mib(r['child_pss_kb']):.1f} MiB) | **{mib(r['tree_kb']):.1f} MiB** | "
              f"{r['messages']} | {r['values']}: "
              f"{k.get('ipmi', 0)} / {k.get('snmp', 0)} / {k.get('modbus', 0)} | "
              f"{r['comparable']} | {r['stats']} | {r['bytes'] / v:.1f} ({r['lz4'] / v:.1f}) | "
              f"{r['per1000']:.1f} | **{r['per1000c']:.1f}** |")
    c = rows.get("collectd")
    for name, p in rows.items():
        if c is None or name == "collectd":
            continue
        print(f"| {name} ÷ collectd | | {p['cpu'] / c['cpu']:.3f} | | "
              f"{int(p['hwm_kb']) / int(c['hwm_kb']):.2f} | | {p['tree_kb'] / c['tree_kb']:.2f} | | "
              f"{p['values'] / c['values']:.2f} | {p['comparable'] / c['comparable']:.2f} | | "
              f"{(p['bytes'] / p['values']) / (c['bytes'] / c['values']):.3f} | "
              f"{p['per1000'] / c['per1000']:.3f} | **{p['per1000c'] / c['per1000c']:.3f}** |")
    for name, p in rows.items():
        if c is None or name == "collectd":
            continue
        ratio = p["per1000c"] / c["per1000c"]
        tree = p["tree_kb"] * 1024
        bpv = p["bytes"] / max(p["values"], 1)
        print(f"{name}: CPU per comparable value {ratio:.3f}x collectd's (target <= 0.25 with "
              f"the in-process backend: {'met' if ratio <= 0.25 else 'NOT met'}); whole-tree RSS "
              f"{tree / 2**20:.1f} MiB (target <= 24 MiB, no children: "
              f"{'met' if tree <= 24 * 2**20 and int(p['children']) == 0 else 'NOT met'}); "
              f"{bpv:.1f} bytes a value (target <= 12: {'met' if bpv <= 12 else 'NOT met'}), "
              f"{p['lz4'] / max(p['values'], 1):.1f} after lz4")
    print()
    print("Steady state (the middle half of each run: sessions open, no start-up or shutdown; "
          "comparable values timestamped in it):")
    print("| collector | seconds | CPU s, process tree | main process only | comparable values | "
          "**CPU ms per 1 000 comparable values** | main process only |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        main = float(r["steady_main_s"])
        print(f"| {name} | {r['steady_s']:.1f} | {r['steady_cpu']:.2f} | {main:.2f} | "
              f"{r['steady_values']} | **{r['steady1000']:.1f}** | "
              f"{main * 1e6 / max(r['steady_values'], 1):.1f} |")
    for name, p in rows.items():
        if "collectd" in rows and name != "collectd":
            ratio = p["steady1000"] / rows["collectd"]["steady1000"]
            print(f"| {name} ÷ collectd | | | | | **{ratio:.3f}** | |")
    for name, r in rows.items():
        print(f"{name}: {r['bytes']} bytes in {r['messages']} Kafka messages (before Kafka's "
              f"compression), {r['bytes'] / max(r['values'], 1):.1f} bytes a value"
              + (f" (window statistics included)" if r["stats"] else "")
              + f"; after lz4 {r['lz4']} bytes, {r['lz4'] / max(r['values'], 1):.1f} a value")
    for name, r in rows.items():
        missing = [k for k in ("ipmi", "snmp", "modbus") if r["kinds"].get(k, 0) == 0]
        print(f"{name}: values span {r['span']:.0f} s, device scrape failures {r['failures']}, "
              f"exit status {r['exit_status']}" + (f"; WARNING: no {', '.join(missing)} values"
                                                    if missing else ""))


if __name__ == "__main__":
    main()
