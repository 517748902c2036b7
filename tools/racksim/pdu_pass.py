#!/usr/bin/python3
"""snmpd pass_persist helper for racksim's PDUs (see net-snmp's snmpd.conf(5),
"pass_persist"): answers get/getnext for the OIDs listed in a file that
racksim rewrites (atomically) at every publish, one `.OID TYPE VALUE` line
each, sorted. The file is re-read only when it changes.

  pass_persist .1.3.6.1.4.1.13742.6 /usr/bin/python3 pdu_pass.py OIDS_FILE
"""
import bisect
import os
import sys


def key(oid):
    return tuple(int(x) for x in oid.strip(".").split(".") if x)


class Table:
    def __init__(self, path):
        self.path, self.mtime, self.keys, self.rows = path, None, [], []

    def refresh(self):
        try:
            m = os.stat(self.path).st_mtime_ns
        except OSError:
            return
        if m == self.mtime:
            return
        rows = []
        with open(self.path, encoding="ascii") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    rows.append((key(parts[0]), parts[0], parts[1], parts[2]))
        rows.sort()
        self.mtime, self.rows, self.keys = m, rows, [r[0] for r in rows]

    def get(self, oid):
        k = key(oid)
        i = bisect.bisect_left(self.keys, k)
        return self.rows[i] if i < len(self.keys) and self.keys[i] == k else None

    def getnext(self, oid):
        i = bisect.bisect_right(self.keys, key(oid))
        return self.rows[i] if i < len(self.keys) else None


def main():
    table = Table(sys.argv[1])
    out = sys.stdout
    for line in sys.stdin:
        cmd = line.strip().lower()
        if cmd == "ping":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            oid = sys.stdin.readline().strip()
            table.refresh()
            row = table.get(oid) if cmd == "get" else table.getnext(oid)
            out.write(f"{row[1]}\n{row[2]}\n{row[3]}\n" if row else "NONE\n")
        elif cmd == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out.write("not-writable\n")
        elif cmd == "":
            break
        else:
            out.write("NONE\n")
        out.flush()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
