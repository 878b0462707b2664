#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs Azurite from the npm registry (pinned in
# package-lock.json), Chromium from the Debian packages and the Python tools (scripts/setup-tools.sh,
# in the background while cargo builds), checks formatting, builds every target with clippy's lints as errors, then
# runs every crate's unit and integration tests. Integration tests start their own Azurite
# (HTTPS + OAuth), identity endpoint, Sentinel simulator and handler on free ports.
#
# Clippy lints while the build compiles (clippy-driver as cargo's RUSTC_WORKSPACE_WRAPPER, which is
# what `cargo clippy` does for a check build), so the lints cost no second pass over the workspace;
# `cargo clippy --workspace --all-targets -- -D warnings` reports the same findings.
#
# Options (environment): TEST_JOBS test binaries at a time (default 3), TEST_THREADS tests at a time
# inside each (default 4); extra arguments go to every test binary (a name filter, --nocapture).
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { printf '\n[test.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# The tools download while cargo compiles; the tests wait for them.
phase "setup (in the background): Azurite, Python tools"
mkdir -p target
bash scripts/setup-tools.sh >target/setup-tools.log 2>&1 &
setup_pid=$!

phase "cargo fmt --check"
cargo fmt --all -- --check

phase "build every target, clippy lints as errors"
clippy_driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)
if [[ -z "$clippy_driver" ]]; then
  echo "test.sh: clippy-driver not found (rustup component add clippy)" >&2
  exit 2
fi
export RUSTC_WORKSPACE_WRAPPER=$clippy_driver
# A fresh clone builds everything once: incremental compilation would only add work.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# No line tables in a fresh build (panics still name their file and line; backtraces name the
# functions only): 11 s less of the workspace's build. `cargo test` keeps them.
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-false}
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo build --workspace --all-targets --locked

phase "waiting for the tools"
if ! wait "$setup_pid"; then
  cat target/setup-tools.log >&2
  echo "test.sh: installing the tools failed (log above)" >&2
  exit 1
fi

phase "tests"
python3 scripts/run_tests.py "$@"
phase "done"
