#!/usr/bin/env bash
# The outside oracle for ti-core's STIX validation (issue 3).
#
# Creates .venv-oracle/ (once; re-created when scripts/oracle/requirements.txt changes), installs
# the pinned OASIS stix2 and stix2-validator packages and faker-cti, generates a deterministic
# corpus of STIX objects with them, mutates part of it, runs stix2-validator on every object and
# writes [{index, id, source, mutation, object, validator_valid, validator_errors}] as JSON.
#
# Usage: scripts/oracle.sh [OUT.json]   (default: target/oracle/verdicts.json)
# Run by crates/ti-core/tests/oracle.rs, which compares ti-core's verdicts with these.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/target/oracle/verdicts.json}"
venv="$root/.venv-oracle"

# shellcheck source=lib/venv.sh
source "$root/scripts/lib/venv.sh"
ensure_venv .venv-oracle scripts/oracle/requirements.txt

mkdir -p "$(dirname "$out")"
"$venv/bin/python" "$root/scripts/oracle/generate.py" "$out"
