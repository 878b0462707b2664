#!/usr/bin/env bash
# The handler benchmark of issue 5 (not a test): wall time, records/s and the handler process's
# peak RSS for STIX bundles of 256 MiB, 512 MiB and 1 GiB (about 1 KB per indicator) going
# through the real Functions path: Azurite over HTTPS + OAuth, the BlobCreated event on the
# blob-events queue, the input split into work items on the work queue, each item uploaded to
# the Sentinel simulator, the final report assembled from the checkpoints. Memory must stay
# flat as the input grows.
#
# Usage: bench/handler.sh
# Environment:
#   BENCH_SIZES_MIB    input sizes in MiB (default "256 512 1024")
#   BENCH_ITEM_RECORDS TI_WORK_ITEM_RECORDS (default 100000)
#   BENCH_KEEP=1       keep the temporary directory with the bundles
#   BENCH_VERBOSE=1    print every invocation as it finishes
#   BENCH_REJECTED_LINES lines of the all-rejected input (default 1000000; 0 skips it): a gzip
#                      (~2 KB) of that many lines that are no observable, every record
#                      rejected (issue 12), run after the bundles with the same settings
#   TMPDIR             where the bundles go (needs the sum of the sizes, ~1.8 GiB by default)
#
# Before the first run, --probe-download reads the first 24 chunks of the blob in the bench
# process with the same SDK call the handler makes, slowly, and prints how much memory the SDK's
# parallel ranged download buffers ahead of a slow reader (see BENCHMARKS.md).
#
# Settings: the simulator admits 10,000 requests per 1 s window with no added latency, and the
# handler runs with TI_MAX_REQUESTS_PER_MINUTE=100000, TI_MAX_CONCURRENCY=8,
# TI_WORK_ITEM_RECORDS=100000, so the run is never quota-bound: it measures the handler's own
# cost. (The real service admits 100 requests of 100 objects per minute per identity, so a real
# 1 GiB feed of ~1.08 M indicators takes ~108 minutes whatever the handler does.)
# TI_MAX_INPUT_BYTES is raised to 2 GiB: its default is exactly 1 GiB, and a generated "1 GiB"
# bundle rounds to a few hundred bytes over it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sizes="${BENCH_SIZES_MIB:-256 512 1024}"
item_records="${BENCH_ITEM_RECORDS:-100000}"

log() { echo "bench: $*" >&2; }

# --- build -------------------------------------------------------------------------------------
log "building (release)"
cargo build --release --bin ti-ingest -p ti-ingest >&2
cargo build --release -p devkit --bin bench-handler >&2
cargo build --release -p serde-baseline --bin gen-bundle >&2
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
ti="$target_dir/release/ti-ingest"
bench="$target_dir/release/bench-handler"
gen="$target_dir/release/gen-bundle"

scripts/setup-azurite.sh >&2

# --- data --------------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/ti-bench-handler.XXXXXX")"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

# Bytes per indicator from a 20,000-object sample of the same sequence, then each size's count.
"$gen" "$work/sample.json:20000"
sample_bytes=$(stat -c %s "$work/sample.json")
rm -f "$work/sample.json"
gen_args=()
inputs=()
for mib in $sizes; do
    n=$(python3 -c "import math; print(math.ceil($mib * 1048576 * 20000 / $sample_bytes))")
    gen_args+=("$work/bundle-${mib}MiB.json:$n")
    inputs+=(--input "$work/bundle-${mib}MiB.json:$n")
done
log "generating bundles (each a slice of the largest) in $work"
gen_start=$(date +%s.%N)
"$gen" "${gen_args[@]}"
log "$(printf 'generated in %.1f s:' "$(echo "$(date +%s.%N) - $gen_start" | bc)") $(
    for a in "${gen_args[@]}"; do f="${a%:*}"; printf '%s=%s bytes ' "$(basename "$f")" "$(stat -c %s "$f")"; done
)"

rejected_lines="${BENCH_REJECTED_LINES:-1000000}"
if [ "$rejected_lines" -gt 0 ]; then
    python3 -c 'import gzip, sys; sys.stdout.buffer.write(gzip.compress(b"x\n" * int(sys.argv[1]), 9))' \
        "$rejected_lines" >"$work/bad-lines-${rejected_lines}.txt.gz"
    inputs+=(--rejected-input "$work/bad-lines-${rejected_lines}.txt.gz:$rejected_lines")
    log "all-rejected input: $rejected_lines lines in $(stat -c %s "$work/bad-lines-${rejected_lines}.txt.gz") bytes of gzip"
fi

# --- run ---------------------------------------------------------------------------------------
extra=()
[ "${BENCH_VERBOSE:-0}" = 1 ] && extra+=(--verbose)
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run_start=$(date +%s)
"$bench" --handler "$ti" "${inputs[@]}" \
    --work-item-records "$item_records" --concurrency 8 --max-requests-per-minute 100000 \
    --sim-requests-per-second 10000 --env TI_MAX_INPUT_BYTES=2147483648 --probe-download \
    "${extra[@]}"
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg); benchmark ran $(($(date +%s) - run_start)) s"
