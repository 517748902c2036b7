#!/usr/bin/python3
"""frames_state.py KCAT_DUMP PROTO_DIR: what a consumer knows after every
frame of a topic (kcat -o beginning -e -f '%S:%s'), in protoc's text format.

Agents since issue 25 send a device's status only when it changed (and
with the dictionary), and a series' status detail only when it changed
(detail_kept in between): one frame no longer holds every device or every
detail. This prints, at the top level, the newest `devices { ... }` block
of every device and the newest `statuses { ... }` block of every series
(its detail taken from the last frame that carried it), for tests that
read the devices and details as they stand."""
import os
import subprocess
import sys
import tempfile


def messages(path):
    data, out, i = open(path, "rb").read(), [], 0
    while i < len(data):
        j = data.index(b":", i)
        n = int(data[i:j])
        out.append(data[j + 1:j + 1 + n])
        i = j + 1 + n
    return out


def varint(n):
    b = bytearray()
    while True:
        x, n = n & 0x7F, n >> 7
        b.append(x | (0x80 if n else 0))
        if not n:
            return bytes(b)


def decode_each(msgs, proto_dir):
    """protoc's text of each frame, in order (one protoc call)."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "framelist.proto"), "w") as f:
            f.write('syntax = "proto3";\nimport "rackpulse.proto";\n'
                    "message FrameList { repeated rackpulse.v1.Frame frames = 1; }\n")
        blob = b"".join(b"\x0a" + varint(len(m)) + m for m in msgs)
        txt = subprocess.run(["protoc", "--decode=FrameList", "-I", d, "-I", proto_dir,
                              os.path.join(d, "framelist.proto")], input=blob,
                             capture_output=True, check=True).stdout.decode()
    frames, cur = [], None
    for line in txt.splitlines():
        if line == "frames {":
            cur = []
        elif line == "}":
            frames.append(cur)
        else:
            cur.append(line[2:])  # one level of FrameList indentation less
    return frames


def blocks(lines, name):
    """The top-level `name { ... }` blocks of one frame, as lists of lines."""
    out, cur = [], None
    for line in lines:
        if cur is None and line == name + " {":
            cur = [line]
        elif cur is not None:
            cur.append(line)
            if line == "}":
                out.append(cur)
                cur = None
    return out


def field(block, key):
    for line in block:
        if line.strip().startswith(key + ": "):
            return line.strip()[len(key) + 2:]
    return None


def main():
    frames = decode_each(messages(sys.argv[1]), sys.argv[2])
    devices, statuses, details = {}, {}, {}
    for lines in frames:
        for b in blocks(lines, "devices"):
            devices[field(b, "device")] = b
        for b in blocks(lines, "statuses"):
            series = field(b, "series") or "0"
            if field(b, "detail") is not None:
                details[series] = field(b, "detail")
            statuses[series] = b
    for b in devices.values():
        print("\n".join(b))
    for series, b in statuses.items():
        b = [line for line in b if not line.strip().startswith(("detail:", "detail_kept:"))]
        if series in details:
            b.insert(len(b) - 1, "  detail: " + details[series])
        print("\n".join(b))


if __name__ == "__main__":
    main()
