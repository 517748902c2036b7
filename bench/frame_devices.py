#!/usr/bin/python3
"""Device figures from an agent's frames on a Kafka topic, for benchmarks.

  frame_devices.py KCAT_FILE PROTO_DIR

KCAT_FILE holds the topic's messages as kcat writes them with -f '%S:%s'
(length, colon, bytes). Each frame is decoded with protoc --decode; the
devices' counters of the last frame and the scrape_ms of every completed
scrape seen are summed up. Prints JSON: frames, scrapes, failures, and the
mean, p95 and max of scrape_ms."""
import json
import re
import subprocess
import sys

data = open(sys.argv[1], "rb").read()
proto = sys.argv[2]
frames, i = [], 0
while i < len(data):
    j = data.index(b":", i)
    n = int(data[i:j])
    frames.append(data[j + 1:j + 1 + n])
    i = j + 1 + n
ms, last = [], {}
for f in frames:
    txt = subprocess.run(["protoc", "--decode=rackpulse.v1.Frame", "-I", proto,
                          proto + "/rackpulse.proto"], input=f, capture_output=True,
                         check=True).stdout.decode()
    for dev in re.findall(r"devices \{(.*?)\n\}", txt, re.S):
        name = re.search(r'device: "([^"]+)"', dev).group(1)
        scrapes = int((re.search(r"scrapes: (\d+)", dev) or [0, 0])[1])
        failures = int((re.search(r"failures: (\d+)", dev) or [0, 0])[1])
        sm = re.search(r"scrape_ms: (\d+)", dev)
        if scrapes > last.get(name, (0, 0))[0] and sm:
            ms.append(int(sm.group(1)))
        last[name] = (scrapes, failures)
ms.sort()
print(json.dumps({
    "frames": len(frames),
    "scrapes": sum(s for s, _ in last.values()),
    "failures": sum(f for _, f in last.values()),
    "wall_mean": sum(ms) / len(ms) if ms else 0,
    "wall_p95": ms[int(0.95 * (len(ms) - 1))] if ms else 0,
    "wall_max": ms[-1] if ms else 0}))
