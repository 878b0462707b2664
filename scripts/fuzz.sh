#!/usr/bin/env bash
# Fuzzes ti-core for a bounded time: each target (decoder, pattern, framer) runs SECONDS seconds
# (default 60) with a seed corpus generated from ti-core's test fixtures. See FUZZING.md.
#
#   scripts/fuzz.sh [SECONDS]
#   FUZZ_TARGETS="pattern" scripts/fuzz.sh 300     # only some targets
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Builds into
# fuzz/target (its own workspace, so the main build is never touched). Exits non-zero when a
# target found a crash; the input is in fuzz/artifacts/<target>/ — minimise it with
# `cargo +nightly fuzz tmin -O <target> <file>` (from fuzz/) and add it to
# crates/ti-core/tests/fixtures/fuzz-regressions/.
set -euo pipefail

secs="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
read -r -a targets <<< "${FUZZ_TARGETS:-decoder pattern framer}"

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
rustup run nightly rustc --version >/dev/null 2>&1 || { echo "the nightly toolchain is missing: rustup toolchain install nightly" >&2; exit 2; }

# Seeds are regenerated every run (cheap, and picks up new fixtures); libFuzzer adds what it
# finds to the same directories, so later runs start from a grown corpus.
python3 seeds.py "$root" corpus
# Regression inputs are seeds too: a fix must keep them passing.
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  for f in "$root"/crates/ti-core/tests/fixtures/fuzz-regressions/"$t"-*; do
    [ -e "$f" ] && cp "$f" "corpus/$t/"
  done
done

cargo +nightly fuzz build -O
mkdir -p logs
status=0
summary=()
for t in "${targets[@]}"; do
  case "$t" in
    pattern) dict=dicts/pattern.dict; max_len=4096 ;;
    *) dict=dicts/json.dict; max_len=32768 ;;
  esac
  echo "== $t: ${secs}s"
  mkdir -p "artifacts/$t"
  stamp="$(mktemp)"
  : >"logs/$t.log"
  # libFuzzer stops at the first crash; the run is restarted for the time left (at most 20
  # times) so one bounded run reports every kind of finding, not just the first. Each finding
  # is saved in artifacts/<target>/. -timeout: an input taking 10 s is a hang; -rss_limit_mb:
  # memory that grows with the input (against the design) is a finding.
  execs=0
  started=$(date +%s)
  for _ in $(seq 20); do
    left=$(( secs - ($(date +%s) - started) ))
    [ "$left" -gt 0 ] || break
    rc=0
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
      -max_total_time="$left" -dict="$dict" -max_len="$max_len" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >>"logs/$t.log" 2>&1 || rc=$?
    n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*$' || true)
    # A crashed run prints no final stats: count its executions from its last status line.
    [ "$rc" -eq 0 ] || n=$(grep -oE '^#[0-9]+' "logs/$t.log" | tail -1 | tr -d '#' || true)
    execs=$(( execs + ${n:-0} ))
    [ "$rc" -ne 0 ] || break
    echo "   finding after ${n:-?} execs; restarting"
  done
  last=$(grep -E '^#[0-9]+' "logs/$t.log" | grep ' cov: ' | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<< "$last")
  found=$(find "artifacts/$t" -type f -newer "$stamp" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  rm -f "$stamp"
  if [ -z "$last" ]; then
    result="DID NOT RUN (see fuzz/logs/$t.log)"
    status=1
  elif [ -n "$found" ]; then
    result="FINDINGS: $(tr '\n' ' ' <<< "$found")(log: fuzz/logs/$t.log)"
    status=1
  else
    result="no findings"
  fi
  summary+=("$t: ${secs}s, ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}: $result")
  echo "${summary[-1]}"
done
echo
printf '%s\n' "${summary[@]}"
exit "$status"
