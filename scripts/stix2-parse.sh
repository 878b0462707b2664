#!/usr/bin/env bash
# The outside oracle for what ti-ingest writes: parses every object of a STIX bundle with the
# pinned OASIS stix2 (scripts/oracle/requirements.txt), as STIX tools read it.
#
# Usage: scripts/stix2-parse.sh BUNDLE.json...
#   -> {"<path>": {"objects": N, "refused": [{"index", "id", "error"}]}, ...} on stdout
# Shares .venv-oracle with scripts/oracle.sh (created once; re-created when the pins change).
# Run by tests/cli.rs (converted_stix_is_read_by_oasis_stix2) and tests/realworld.rs (every
# genuine file and every fixture).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-oracle"

# shellcheck source=lib/venv.sh
source "$root/scripts/lib/venv.sh"
ensure_venv .venv-oracle scripts/oracle/requirements.txt

"$venv/bin/python" "$root/scripts/oracle/parse.py" "$@"
