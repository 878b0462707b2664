#!/usr/bin/env python3
"""Writes the seed corpora for the ti-core fuzz targets from ti-core's test fixtures.

Usage: seeds.py REPO_ROOT OUT_DIR   (writes OUT_DIR/{decoder,framer,pattern}/seed-*)

Decoder and framer seeds start with the 3-byte header the targets read (fuzz/src/lib.rs):
selector (0 = auto-detect, 1..8 = forced format in InputFormat::ALL order, taken modulo 9), limits (19 = the
default 1 MiB / depth 64, 7 = 256 bytes / depth 3) and the chunk-split seed. Every fixture input
is written as is, gzip-compressed and as UTF-16LE, so each decoding layer starts covered.
"""
import glob
import gzip
import hashlib
import json
import os
import re
import sys

FORMATS = ["stix-bundle", "stix-json", "ndjson", "sentinel-request", "graph", "csv", "text", "prose"]
DEFAULT_LIMITS = 19  # RECORD[4] = 1 MiB, DEPTH[3] = 64
SMALL_LIMITS = 7     # RECORD[2] = 256 bytes, DEPTH[1] = 3


def write(out_dir, target, data):
    os.makedirs(os.path.join(out_dir, target), exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(out_dir, target, name), "wb") as f:
        f.write(data)


def fixture_inputs(root):
    """(bytes, forced format or None) of every case input in the per-format fixture tables."""
    base = os.path.join(root, "crates/ti-core/tests/fixtures")
    for table in sorted(glob.glob(os.path.join(base, "*/cases.json"))):
        for case in json.load(open(table, encoding="utf-8"))["cases"]:
            if "input" in case:
                data = case["input"].encode("utf-8")
            elif "file" in case:
                with open(os.path.join(os.path.dirname(table), case["file"]), "rb") as f:
                    data = f.read()
            else:
                continue
            yield data, case.get("format")
    # The prose fixtures (a report as text, Markdown and HTML): prose is only ever forced.
    for path in sorted(glob.glob(os.path.join(base, "prose/*"))):
        if path.endswith((".txt", ".md", ".html")) and os.path.basename(path) != "ORACLE.md":
            with open(path, "rb") as f:
                yield f.read(), "prose"
    # The validation table's objects, as one bundle (one decoder seed covers all of them).
    v = json.load(open(os.path.join(base, "validate.json"), encoding="utf-8"))
    objects = list(v["bases"].values()) + [c["object"] for c in v["cases"] if "object" in c]
    bundle = {"type": "bundle", "id": "bundle--6f1b5b7e-0000-4000-8000-000000000000", "objects": objects}
    yield json.dumps(bundle, indent=1).encode("utf-8"), None
    yield "\n".join(json.dumps(o) for o in objects).encode("utf-8"), None


def patterns(root):
    """Every `pattern` value in the fixtures and every pattern-like literal in pattern.rs."""
    found = set()

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "pattern" and isinstance(x, str):
                    found.add(x)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and v.startswith("["):
            found.add(v)

    for path in glob.glob(os.path.join(root, "crates/ti-core/tests/fixtures/**/*.json"), recursive=True):
        try:
            walk(json.load(open(path, encoding="utf-8")))
        except ValueError:
            pass  # e.g. the Graph seed example, which has trailing commas on purpose
    src = open(os.path.join(root, "crates/ti-core/src/stix/pattern.rs"), encoding="utf-8").read()
    escapes = {"\\\\": "\\", "\\'": "'", '\\"': '"', "\\n": "\n", "\\t": "\t", "\\r": "\r", "\\0": "\0"}
    for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', src):
        text = re.sub(r"\\.", lambda m: escapes.get(m.group(0), m.group(0)), lit)
        if text.lstrip().startswith(("[", "(")):
            found.add(text)
    return sorted(found)


def main():
    root, out_dir = sys.argv[1], sys.argv[2]
    n = 0
    for data, forced in fixture_inputs(root):
        variants = [data, gzip.compress(data, mtime=0)]
        try:
            variants.append(data.decode("utf-8").encode("utf-16-le"))
        except UnicodeDecodeError:
            pass
        selectors = [0] + ([FORMATS.index(forced) + 1] if forced in FORMATS else [])
        for v in variants:
            for sel in selectors:
                write(out_dir, "decoder", bytes([sel, DEFAULT_LIMITS, 7]) + v)
                n += 1
            write(out_dir, "decoder", bytes([0, SMALL_LIMITS, 2]) + v)
            n += 1
        if data.lstrip()[:1] in (b"[", b"{"):
            write(out_dir, "framer", bytes([0, DEFAULT_LIMITS, 7]) + data)
            write(out_dir, "framer", bytes([0, SMALL_LIMITS, 1]) + data)
            n += 2
    for p in patterns(root):
        write(out_dir, "pattern", p.encode("utf-8"))
        n += 1
    print(f"{n} seeds written to {out_dir}")


if __name__ == "__main__":
    main()
