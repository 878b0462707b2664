#!/usr/bin/env bash
# Quota benchmark (issues 4 and 13): how much of one identity's upload quota ti-ingest uses,
# from one process and from many sharing the identity, with and without the quota ledger.
#
# Every run starts Azurite (the app's storage account, where the ledger lives), the identity
# endpoint and the Sentinel simulator, which admits 100 requests per sliding window with
# LATENCY_MS latency; the window is scaled down from the real 60 s to WINDOW_SECS (default 6) so
# a run takes seconds, and the processes are told the same window (TI_RATE_WINDOW_SECS).
# Figures are reported as a share of the quota (100 requests x 100 objects per window), which
# is what scaling preserves.
#
# Runs (RUNS overrides, "processes:mode:ledger" each):
#   1:cli:off        one `ti-ingest upload`, pacing alone (issue 4's figure)
#   1:handlers:on    one handler process (`serve`) fed from the queues, with the ledger
#   4:cli:off        four uploads sharing the identity, each pacing alone (issue 13's "before")
#   4:handlers:on    four handler processes sharing the identity through the ledger
#   16:handlers:off  sixteen handler processes, each pacing alone
#   16:handlers:on   sixteen handler processes sharing the identity through the ledger
# Handler processes are fed like Function App instances: every input is a blob whose
# BlobCreated event waits on the queue, and each process's queue listener follows host.json's
# batchSize and newBatchThreshold.
#
#   bench/quota.sh
#   OBJECTS=20000 WINDOW_SECS=12 RUNS="16:handlers:on" bench/quota.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OBJECTS="${OBJECTS:-50000}"
WINDOW_SECS="${WINDOW_SECS:-6}"
LATENCY_MS="${LATENCY_MS:-300}"
# With a 6 s window, 100 requests of 300 ms need 5 in flight; 8 leaves headroom.
CONCURRENCY="${CONCURRENCY:-8}"
RUNS="${RUNS:-1:cli:off 1:handlers:on 4:cli:off 4:handlers:on 16:handlers:off 16:handlers:on}"

cargo build --release -p ti-ingest --bin ti-ingest -p devkit --bin quota-bench
scripts/setup-azurite.sh >&2
BIN=target/release

common=(--ti-ingest "$BIN/ti-ingest" --objects "$OBJECTS" --window-secs "$WINDOW_SECS"
        --latency-ms "$LATENCY_MS" --concurrency "$CONCURRENCY" --host-json host.json)

for run in $RUNS; do
    IFS=: read -r processes mode ledger <<<"$run"
    echo "== $processes $mode process(es), ledger $ledger (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    "$BIN/quota-bench" "${common[@]}" --processes "$processes" --mode "$mode" --ledger "$ledger"
    echo
done
