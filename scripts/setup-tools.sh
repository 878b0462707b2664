#!/usr/bin/env bash
# Installs every outside tool the test suite uses, all at once (they download in parallel):
# Azurite from the npm registry (pinned in package-lock.json), Chromium from the Debian packages
# (the report-page tests render pages in it) and the pinned Python tools, each in
# its own virtual environment (scripts/lib/venv.sh): OASIS stix2/stix2-validator (.venv-oracle),
# ioc-finder/iocextract (.venv-prose), medallion (.venv-taxii), checkov (.venv-infra). Idempotent:
# what is already installed with the same pins is left alone. scripts/test.sh runs this beside the
# build; each tool's own script also installs it on first use, so running a single test works too.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/venv.sh
source scripts/lib/venv.sh

pids=()
bash scripts/setup-azurite.sh & pids+=($!)
bash scripts/setup-chromium.sh & pids+=($!)
ensure_venv .venv-oracle scripts/oracle/requirements.txt & pids+=($!)
ensure_venv .venv-prose scripts/prose-oracle/requirements.txt & pids+=($!)
ensure_venv .venv-taxii scripts/medallion/requirements.txt & pids+=($!)
ensure_venv .venv-infra scripts/infra-tools/requirements.txt & pids+=($!)
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit $status
