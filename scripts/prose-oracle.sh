#!/usr/bin/env bash
# The outside oracles for ti-ingest's prose extraction (issue 11): ioc-finder and iocextract,
# the Python extractors analysts use on threat reports.
#
# Creates .venv-prose/ (once; re-created when scripts/prose-oracle/requirements.txt changes),
# installs the pinned packages, runs both tools over each report given and prints JSON of what
# they extract per indicator type (see scripts/prose-oracle/extract.py).
#
# Usage: scripts/prose-oracle.sh REPORT...
# Run by crates/ti-core/tests/prose_oracle.rs, which compares ti-ingest's extraction with theirs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-prose"
req="$root/scripts/prose-oracle/requirements.txt"
python="${PYTHON:-python3}"

if [ "$#" -eq 0 ]; then
    echo "usage: $0 REPORT..." >&2
    exit 2
fi

if ! cmp -s "$req" "$venv/.requirements" 2>/dev/null; then
    echo "prose-oracle: creating $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    cp "$req" "$venv/.requirements"
fi

"$venv/bin/python" "$root/scripts/prose-oracle/extract.py" "$@"
