#!/usr/bin/env python3
"""Runs every test binary of the workspace, several at a time.

`cargo test` runs its test binaries one after the other; most of ours spend their time waiting on
Azurite, the simulator and the handler they start, so two cores can run two or three of them at
once. This script asks cargo to build the test binaries (`cargo test --no-run`), then runs them
`TEST_JOBS` at a time (default 3), the slowest first, each with `--test-threads=$TEST_THREADS`
(default 4), as cargo would run them: from the package's folder, with cargo's run-time variables.
Each binary's output is printed whole when it ends (never interleaved); a failing binary does not
stop the others (like `--no-fail-fast`); the exit code is 1 when anything failed. Doc tests run
last, through cargo. A table of wall times per binary closes the run.

Extra arguments are passed to every test binary (a filter, `--nocapture`, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Started first: the binaries that take longest (the CI log's table says which), so the short
# ones fill the other slots around them.
SLOW_FIRST = ["bounds", "infra", "work", "text_oracle", "e2e", "cli", "html_report", "demo", "pull", "targets"]


def build() -> list[dict]:
    """Builds every test binary; returns one entry per binary to run."""
    command = ["cargo", "test", "--workspace", "--locked", "--no-run", "--message-format=json-render-diagnostics"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    binaries = []
    for line in process.stdout:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("reason") != "compiler-artifact" or not message.get("executable"):
            continue
        if not message.get("profile", {}).get("test"):
            continue
        target = message["target"]
        package = message["package_id"]
        binaries.append(
            {
                "name": target["name"],
                "kind": target["kind"][0],
                "executable": message["executable"],
                "manifest_dir": str(Path(message["manifest_path"]).parent),
                "package": package,
            }
        )
    if process.wait() != 0:
        sys.exit(f"run_tests: `{' '.join(command)}` failed ({process.returncode})")
    return binaries


def package_name(manifest_dir: str) -> str:
    for line in (Path(manifest_dir) / "Cargo.toml").read_text().splitlines():
        if line.startswith("name"):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def run(binary: dict, extra: list[str]) -> tuple[dict, int, str, float]:
    env = dict(os.environ)
    # What `cargo test` sets when it runs a test binary (The Cargo Book, "Environment variables
    # Cargo sets for crates"): tests read these at run time as well as at compile time.
    env["CARGO_MANIFEST_DIR"] = binary["manifest_dir"]
    env["CARGO_PKG_NAME"] = package_name(binary["manifest_dir"])
    threads = os.environ.get("TEST_THREADS", "4")
    started = time.monotonic()
    result = subprocess.run(
        [binary["executable"], f"--test-threads={threads}", *extra],
        cwd=binary["manifest_dir"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    return binary, result.returncode, result.stdout, time.monotonic() - started


def label(binary: dict) -> str:
    crate = Path(binary["manifest_dir"]).name if binary["manifest_dir"] != str(ROOT) else "ti-ingest"
    return f"{crate}: {binary['kind']} {binary['name']}"


def main() -> int:
    extra = sys.argv[1:]
    binaries = build()
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    binaries.sort(key=lambda b: (rank.get(b["name"], len(SLOW_FIRST)), b["name"]))
    jobs = int(os.environ.get("TEST_JOBS", "3"))
    print(f"run_tests: {len(binaries)} test binaries, {jobs} at a time", flush=True)

    started = time.monotonic()
    failed: list[str] = []
    times: list[tuple[float, str, int]] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run, b, extra) for b in binaries]
        for future in as_completed(futures):
            binary, code, output, seconds = future.result()
            name = label(binary)
            print(f"\n===== {name} ({seconds:.1f} s, exit {code}) =====", flush=True)
            print(output, end="", flush=True)
            times.append((seconds, name, code))
            if code != 0:
                failed.append(name)

    doc_started = time.monotonic()
    doc = subprocess.run(["cargo", "test", "--workspace", "--locked", "--doc"], cwd=ROOT)
    times.append((time.monotonic() - doc_started, "doc tests", doc.returncode))
    if doc.returncode != 0:
        failed.append("doc tests")

    print("\n===== wall time per test binary =====")
    for seconds, name, code in sorted(times, reverse=True):
        print(f"{seconds:8.1f} s  {'ok    ' if code == 0 else 'FAILED'}  {name}")
    print(f"run_tests: {time.monotonic() - started:.1f} s for the tests")
    if failed:
        print("run_tests: failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
