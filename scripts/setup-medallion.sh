#!/usr/bin/env bash
# The real TAXII 2.1 server for the feed-pull tests (issue 6): OASIS medallion from PyPI.
#
# Creates .venv-taxii/ (once; re-created when the pins below change) with medallion and its
# dependencies pinned, so tests/pull.rs talks to the same server on every machine. The tests
# start it themselves (`.venv-taxii/bin/medallion --host 127.0.0.1 --port N config.json`, memory
# backend, a generated collection); this script only installs it. Idempotent and quiet when
# nothing changed.
#
# Usage: scripts/setup-medallion.sh        (prints the medallion executable's path)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-taxii"

# The pins (and why those versions) are in scripts/medallion/requirements.txt.
# shellcheck source=lib/venv.sh
source "$root/scripts/lib/venv.sh"
ensure_venv .venv-taxii scripts/medallion/requirements.txt
echo "$venv/bin/medallion"
