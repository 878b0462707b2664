"""Parses every object of a STIX bundle with the OASIS stix2 library, as STIX tools read it.

Usage: parse.py BUNDLE.json   -> prints {"objects": N, "refused": [{"index", "id", "error"}]}

`stix2.parse(obj, allow_custom=True)` is how STIX tools (and the OASIS library's own
`stix2.parse` docs) load objects: it checks property types, timestamps and their precision, and
required properties, but lets custom properties through.
"""

import json
import sys

import stix2


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        bundle = json.load(f)
    refused = []
    for i, obj in enumerate(bundle["objects"]):
        try:
            stix2.parse(obj, allow_custom=True)
        except Exception as e:  # every refusal is reported, whatever its class
            refused.append({"index": i, "id": obj.get("id"), "error": f"{type(e).__name__}: {e}"})
    json.dump({"objects": len(bundle["objects"]), "refused": refused}, sys.stdout)


if __name__ == "__main__":
    main()
