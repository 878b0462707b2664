#!/usr/bin/env bash
# Lifecycle benchmark (issue 15): a list feed of N indicators (default 1,000,000), three runs,
# each its own process so its peak RSS is its own: the first run (everything added), a run
# with 1% dropped and 1% new (the dropped retired through the dry-run target), and a 304 run
# (the index read and checked for refreshes). Prints the time per run (from the program) and
# the peak RSS (/usr/bin/time -f %M, KiB).
#
#   bench/lifecycle.sh
#   N=100000 bench/lifecycle.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-1000000}"
BIN=$(cargo bench --bench lifecycle --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "lifecycle" and m.get("executable"):
        print(m["executable"])')
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
for phase in first changed unchanged; do
  /usr/bin/time -f "$phase: peak RSS %M KiB, %e s elapsed, %U s user + %S s system CPU" "$BIN" "$phase" "$DIR" "$N"
done
