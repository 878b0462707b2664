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

if [ "$#" -eq 0 ]; then
    echo "usage: $0 REPORT..." >&2
    exit 2
fi

# shellcheck source=lib/venv.sh
source "$root/scripts/lib/venv.sh"
ensure_venv .venv-prose scripts/prose-oracle/requirements.txt

"$venv/bin/python" "$root/scripts/prose-oracle/extract.py" "$@"
