"""Runs ioc-finder and iocextract over each report named on the command line and prints, as
JSON, what each extracts per indicator type:

    {"<file name>": {"ioc-finder": {"url": [...], "domain": [...], ...},
                     "iocextract": {"url": [...], "ipv4": [...], ...}}}

Both are called the way their READMEs show: ioc_finder.find_iocs(text) with its defaults, and
iocextract's extract_* functions with refang=True where they take it. Values are as the tools
return them (deduplicated, sorted); crates/ti-core/tests/prose_oracle.rs normalises and compares.
"""

import json
import os
import sys

import iocextract
from ioc_finder import find_iocs


def ioc_finder_types(text):
    r = find_iocs(text)
    return {
        "url": r.get("urls", []),
        "domain": r.get("domains", []),
        "ipv4": r.get("ipv4s", []) + r.get("ipv4_cidrs", []),
        "ipv6": r.get("ipv6s", []),
        "email": r.get("email_addresses", []),
        "md5": r.get("md5s", []),
        "sha1": r.get("sha1s", []),
        "sha256": r.get("sha256s", []),
        "sha512": r.get("sha512s", []),
    }


def iocextract_types(text):
    # iocextract has no domain extractor.
    return {
        "url": list(iocextract.extract_urls(text, refang=True)),
        "ipv4": list(iocextract.extract_ipv4s(text, refang=True)),
        "ipv6": list(iocextract.extract_ipv6s(text)),
        "email": list(iocextract.extract_emails(text, refang=True)),
        "md5": list(iocextract.extract_md5_hashes(text)),
        "sha1": list(iocextract.extract_sha1_hashes(text)),
        "sha256": list(iocextract.extract_sha256_hashes(text)),
        "sha512": list(iocextract.extract_sha512_hashes(text)),
    }


def main(paths):
    out = {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            text = f.read()
        out[os.path.basename(p)] = {
            name: {t: sorted(set(v)) for t, v in fn(text).items()}
            for name, fn in (("ioc-finder", ioc_finder_types), ("iocextract", iocextract_types))
        }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
