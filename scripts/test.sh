#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs Azurite from the npm registry (pinned in
# package-lock.json) and Chromium from the Debian packages (the report-page tests render pages in
# it), then runs every crate's unit and integration tests. Integration tests start
# their own Azurite (HTTPS + OAuth), identity endpoint, Sentinel simulator and handler on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-azurite.sh
bash scripts/setup-chromium.sh
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
