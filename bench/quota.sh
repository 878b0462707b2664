#!/usr/bin/env bash
# Quota benchmark (issue 4): how much of one identity's upload quota `ti-ingest upload` uses.
#
# The simulator admits 100 requests per window with 300 ms latency; the window is scaled down
# from the real 60 s to WINDOW_SECS (default 6) so the run takes seconds, and the client is told
# the same window (TI_RATE_WINDOW_SECS). Figures are reported as a share of the quota
# (100 requests x 100 objects per window), which is what scaling preserves.
#
#   bench/quota.sh                  # 50,000 objects: one process, then two sharing the identity
#   OBJECTS=20000 WINDOW_SECS=12 bench/quota.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OBJECTS="${OBJECTS:-50000}"
WINDOW_SECS="${WINDOW_SECS:-6}"
LATENCY_MS="${LATENCY_MS:-300}"
# With a 6 s window, 100 requests of 300 ms need 5 in flight; 8 leaves headroom.
CONCURRENCY="${CONCURRENCY:-8}"

cargo build --release -p ti-ingest --bin ti-ingest -p devkit --bin quota-bench
BIN=target/release

common=(--ti-ingest "$BIN/ti-ingest" --objects "$OBJECTS" --window-secs "$WINDOW_SECS"
        --latency-ms "$LATENCY_MS" --concurrency "$CONCURRENCY")

echo "== one process"
"$BIN/quota-bench" "${common[@]}" --processes 1
echo
echo "== two processes sharing one identity"
"$BIN/quota-bench" "${common[@]}" --processes 2
