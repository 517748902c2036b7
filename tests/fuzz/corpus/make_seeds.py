#!/usr/bin/env python3
"""Writes the generated seeds of the fuzz corpora (tests/fuzz/corpus/):
binary inputs for fuzz_mb_decode and fuzz_mb_plan in the layouts their
harnesses read, and protobuf Frames for fuzz_frame and fuzz_store_apply,
packed by `protoc --encode` from the text-format frames below (the schema is
proto/rackpulse.proto). Run it from anywhere after changing the schema or a
harness's input layout:

    python3 tests/fuzz/corpus/make_seeds.py

Seeds copied from real inputs (ipmitool fixtures, configs, profiles,
policies) and the regression inputs of fixed bugs are plain files next to
these and are not touched."""
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", "..", ".."))


def put(harness, name, data):
    d = os.path.join(HERE, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- fuzz_mb_decode: fn type order addr(2) flags [scale offset] [min max]
#      [sentinel] [nbits (bit active_low)...] [nwords] words(2 each)
FN = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
TYPES = ["u16", "i16", "u32", "i32", "f32", "f64", "bitfield"]
WORDS = {"u16": 1, "i16": 1, "u32": 2, "i32": 2, "f32": 2, "f64": 4, "bitfield": 1}


def mb_register(fn, typ, order, addr, scale=None, offset=None, rng=None, sentinel=None,
                bits=None, words=()):
    flags = (1 if scale is not None or offset is not None else 0) | \
            (2 if offset is not None else 0) | (4 if rng else 0) | \
            (8 if sentinel is not None else 0) | (16 if bits else 0)
    b = bytes([FN[fn], TYPES.index(typ), order]) + struct.pack(">H", addr) + bytes([flags])
    if flags & 1:
        b += struct.pack(">d", 1.0 if scale is None else scale)
    if flags & 2:
        b += struct.pack(">d", offset)
    if rng:
        b += struct.pack(">dd", *rng)
    if sentinel is not None:
        b += struct.pack(">Q", sentinel)
    if bits:
        b += bytes([len(bits)]) + b"".join(bytes([bit, low]) for bit, low in bits)
    return b + b"".join(struct.pack(">H", w) for w in words)


for t in TYPES:
    for order in range(4):
        n = WORDS[t]
        put("mb_decode", f"{t}-{'ABCD CDAB BADC DCBA'.split()[order]}",
            mb_register("input", t, order, 100 + order, scale=0.1, rng=(-40.0, 150.0),
                        words=[0x4148, 0x0000, 0x1234, 0xFFFF][:n]))
put("mb_decode", "sentinel-absent", mb_register("input", "u16", 0, 7, scale=0.1,
                                                sentinel=0xFFFF, words=[0xFFFF]))
put("mb_decode", "f32-nan", mb_register("holding", "f32", 0, 40, words=[0x7FC0, 0x0000]))
put("mb_decode", "f64-offset", mb_register("holding", "f64", 1, 60, scale=1.0, offset=-273.15,
                                           words=[0x0000, 0x0000, 0x0000, 0x4070]))
put("mb_decode", "bitfield-alarms", mb_register("input", "bitfield", 0, 8,
                                                bits=[(0, 0), (1, 0), (15, 1)], words=[0x0003]))
put("mb_decode", "coil", mb_register("coil", "u16", 0, 3, words=[1]))
put("mb_decode", "discrete-leak", mb_register("discrete", "bitfield", 0, 0, bits=[(0, 0)],
                                              words=[1]))

# ---- fuzz_mb_plan: max_regs max_bits max_gap (2 each) mode, then per
#      register fn type addr(2)
def mb_plan(limits, regs):
    b = struct.pack(">HHHB", *limits)
    return b + b"".join(bytes([FN[fn], TYPES.index(t)]) + struct.pack(">H", a)
                        for fn, t, a in regs)


cdu = [("input", "i16", 0), ("input", "i16", 1), ("input", "u16", 2), ("input", "u16", 3),
       ("input", "f32", 4), ("input", "u16", 6), ("input", "bitfield", 8),
       ("holding", "u16", 0), ("holding", "f64", 100), ("coil", "u16", 5),
       ("discrete", "bitfield", 0)]
put("mb_plan", "cdu-coalesce", mb_plan((0, 0, 0, 0), cdu))
put("mb_plan", "cdu-gap2-max8", mb_plan((8, 16, 2, 0), cdu))
put("mb_plan", "cdu-one-per-register", mb_plan((0, 0, 0, 1), cdu))
put("mb_plan", "end-of-space", mb_plan((125, 2000, 124, 0),
                                       [("holding", "f64", 65532), ("holding", "u16", 65535),
                                        ("holding", "u32", 65530)]))
put("mb_plan", "overlap", mb_plan((4, 0, 0, 0), [("input", "f64", 10), ("input", "u16", 11),
                                                 ("input", "u32", 12), ("input", "u16", 10)]))

# ---- frames (fuzz_frame) and batches of frames (fuzz_store_apply)
FULL = """
schema_version: 1 agent_id: "agent-a01" rack_id: "a01" seq: 1 ts_ms: 1790000000000
interval_ms: 1000 dictionary_version: 3
dictionary { id: 1 name: "cdu.supply_temp" unit: "Cel" device: "cdu1" decimals: 1 }
dictionary { id: 2 name: "cdu.flow" unit: "L/min" device: "cdu1" decimals: 1 }
dictionary { id: 3 name: "pdu.outlet.power" unit: "W" device: "pdu1" decimals: 0
             labels { key: "outlet" value: "A1" } labels { key: "phase" value: "L1" } }
dictionary { id: 4 name: "cdu.alarms" unit: "" device: "cdu1" decimals: 0 }
samples { ts_ms: 1790000000000 series: [1, 2, 3, 4] scaled: [215, 852, 4200, 0] }
statuses { series: 2 status: READING_ERROR detail: "exception 2 (illegal data address)" }
stats { series: 1 window_s: 60 count: 60 min: 20.5 max: 22.1 mean: 21.4 stddev: 0.3
        p50: 21.4 p95: 22.0 p99: 22.1 has_slope: true slope_per_min: 0.05 }
stats { series: 1 window_s: 300 count: 300 min: 20 max: 23 mean: 21 stddev: 0.5
        p50: 21 p95: 22.5 p99: 22.9 }
devices { device: "cdu1" kind: "modbus" up: true scrape_ms: 12 scrapes: 100 last_ok_ms: 1790000000000 }
devices { device: "pdu1" kind: "snmp" up: false last_error: "timeout" scrapes: 100 failures: 3 }
health { version: "0.1.0" frames_produced: 10 frames_delivered: 9 spool_depth: 1
         delivery_latency_ms: 40 }
"""
NO_DICT = """
schema_version: 1 agent_id: "agent-a01" rack_id: "a01" seq: 2 ts_ms: 1790000001000
interval_ms: 1000 dictionary_version: 3
samples { ts_ms: 1790000001000 series: [1, 2, 3, 99] scaled: [216, 850, -4, 7] }
statuses { series: 4 status: READING_ABSENT detail: "sentinel 0xFFFF" }
statuses { series: 77 status: READING_STALE }
"""
OTHER_AGENT = """
schema_version: 1 agent_id: "agent-b" rack_id: "a01" seq: 9 ts_ms: 1789999999000
dictionary_version: 1
dictionary { id: 1 name: "server.power" unit: "W" device: "node7" decimals: 0 }
samples { ts_ms: 1789999999000 series: [1, 1] scaled: [350, 360] }
"""
MINIMAL = 'schema_version: 1 agent_id: "a" rack_id: "r"'
BAD_VERSION = 'schema_version: 2 agent_id: "a" rack_id: "r"'
UNEQUAL = """schema_version: 1 agent_id: "a" rack_id: "r"
samples { series: [1, 2] scaled: [1] }"""


def encode(text):
    return subprocess.run(["protoc", "--encode=rackpulse.v1.Frame", "-I",
                           os.path.join(SRC, "proto"), "rackpulse.proto"],
                          input=text.encode(), capture_output=True, check=True).stdout


# Regressions: times near INT64_MIN overflowed "now - ts_ms" in the
# aggregator (consume.c, gate.c); they are refused by validation now.
NEGATIVE_TIME = """schema_version: 1 agent_id: "a" rack_id: "r" ts_ms: -9223372036854775808
samples { ts_ms: -9223372036854775807 series: [1] scaled: [1] }"""

frames = {"regress-negative-ts": NEGATIVE_TIME, "full": FULL, "no-dictionary": NO_DICT, "other-agent": OTHER_AGENT,
          "minimal": MINIMAL, "bad-version": BAD_VERSION, "unequal-block": UNEQUAL}
packed = {k: encode(v) for k, v in frames.items()}
for k, v in packed.items():
    put("frame", k + ".pb", v)


def batch(*msgs):
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


f = packed
put("store_apply", "dictionary-then-samples", batch(f["full"], f["no-dictionary"]))
put("store_apply", "duplicate-and-gap",
    batch(f["full"], f["full"], f["no-dictionary"],
          encode(NO_DICT.replace("seq: 2", "seq: 7")), b"\x08\x01garbage"))
put("store_apply", "two-agents-one-rack", batch(f["other-agent"], f["full"], f["other-agent"]))
put("store_apply", "dictionary-version-mismatch",
    batch(f["full"], encode(NO_DICT.replace("dictionary_version: 3", "dictionary_version: 4"))))
put("store_apply", "invalid-only", batch(f["bad-version"], f["unequal-block"], b""))


# Identity (issue 17): incarnations and dictionaries named by content hash.
# dict_hash() is the canonical form of lib/frame.c (rp_dict_hash_*): series
# in id order; id, decimals (4 bytes LE), name, unit, device (4-byte length
# + bytes), label count, labels; FNV-1a 64, then fmix64; never 0.
def dict_hash(series):
    mask = (1 << 64) - 1

    def fnv(h, data):
        for c in data:
            h = ((h ^ c) * 1099511628211) & mask
        return h

    def u32(h, v):
        return fnv(h, struct.pack("<I", v & 0xffffffff))

    def text(h, s):
        return fnv(u32(h, len(s.encode())), s.encode())

    h = 0xcbf29ce484222325
    for sid, name, unit, device, decimals, labels in sorted(series):
        h = u32(u32(h, sid), decimals)
        h = u32(text(text(text(h, name), unit), device), len(labels))
        for k, v in labels:
            h = text(text(h, k), v)
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & mask
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & mask
    h ^= h >> 33
    return h or 1


FULL_HASH = dict_hash([(1, "cdu.supply_temp", "Cel", "cdu1", 1, []),
                       (2, "cdu.flow", "L/min", "cdu1", 1, []),
                       (3, "pdu.outlet.power", "W", "pdu1", 0, [("outlet", "A1"), ("phase", "L1")]),
                       (4, "cdu.alarms", "", "cdu1", 0, [])])


def identity(text, incarnation, dictionary_hash):
    return encode(text + " incarnation: %d dictionary_hash: %d" % (incarnation, dictionary_hash))


# A re-imaged agent: incarnation A to seq 2, then B from seq 1 (its first
# frame's dictionary lost, then sent), then a late frame of A.
A, B = 0x1111111111111111, 0xfedcba9876543210
put("store_apply", "reimaged-agent",
    batch(identity(FULL, A, FULL_HASH), identity(NO_DICT, A, FULL_HASH),
          identity(NO_DICT.replace("seq: 2", "seq: 1"), B, FULL_HASH ^ 1),
          identity(FULL.replace("seq: 1", "seq: 2"), B, FULL_HASH),
          identity(NO_DICT.replace("seq: 2", "seq: 3"), A, FULL_HASH)))
# A dictionary whose content does not match its hash.
put("store_apply", "dictionary-hash-mismatch",
    batch(identity(FULL, A, FULL_HASH ^ 2), identity(NO_DICT, A, FULL_HASH ^ 2)))
