"""Parses every object of STIX bundles with the OASIS stix2 library, as STIX tools read them.

Usage: parse.py BUNDLE.json...
  -> prints {"<path>": {"objects": N, "refused": [{"index", "id", "error"}]}, ...}

`stix2.parse(obj, allow_custom=True)` is how STIX tools (and the OASIS library's own
`stix2.parse` docs) load objects: it checks property types, timestamps and their precision, and
required properties, but lets custom properties through (ATT&CK's x_mitre_* properties). The
version is taken from each object's spec_version. One interpreter start for all files.
"""

import json
import sys

import stix2


def verdict(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        bundle = json.load(f)
    refused = []
    for i, obj in enumerate(bundle["objects"]):
        try:
            stix2.parse(obj, allow_custom=True)
        except Exception as e:  # every refusal is reported, whatever its class
            refused.append({"index": i, "id": obj.get("id"), "error": f"{type(e).__name__}: {e}"})
    return {"objects": len(bundle["objects"]), "refused": refused}


def main() -> None:
    json.dump({path: verdict(path) for path in sys.argv[1:]}, sys.stdout)


if __name__ == "__main__":
    main()
