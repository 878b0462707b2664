#!/usr/bin/env bash
# Runs ti-ingest locally end to end: Azurite (HTTPS + OAuth), a managed-identity endpoint and the
# Sentinel simulator start on free ports, the handler runs as the Functions host would start it,
# every file under examples/ is dropped into the inbox and announced by an Event Grid BlobCreated
# event, and the reports and what the simulator received are printed. Extra arguments go to the
# demo (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-azurite.sh
cargo build --bin ti-ingest
exec cargo run --quiet -p devkit --bin demo -- --handler "${CARGO_TARGET_DIR:-target}/debug/ti-ingest" "$@"
