"""Python baseline of bench/validate.sh: OASIS stix2.parse over every object of a bundle file.

Usage: python stix2_parse.py BUNDLE.json
Loads the file with json.load (the JSON parsing is part of the measurement, as it is for the
other tools), then stix2.parse(...) each object of its `objects` array as STIX 2.1, which
validates properties, timestamps and (for indicators) the pattern with the STIX pattern
validator. Prints `records=N seconds=S` (in-process time, without interpreter start-up).
"""

import json
import sys
import time

import stix2


def main() -> int:
    started = time.perf_counter()
    with open(sys.argv[1], "rb") as f:
        bundle = json.load(f)
    n = 0
    for obj in bundle["objects"]:
        # Each parsed object is dropped at once: memory stays that of the loaded JSON.
        stix2.parse(obj, allow_custom=False, version="2.1")
        n += 1
    print(f"records={n} seconds={time.perf_counter() - started:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
