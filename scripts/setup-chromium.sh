#!/usr/bin/env bash
# Installs Chromium from the Debian packages (package `chromium`) for the report-page browser tests
# (tests/html_report.rs render each page headless and assert on the DOM the browser built).
# Idempotent: does nothing when `chromium` is already on PATH. Needs apt-get, as root or through
# sudo; about 25 s on a fresh Debian 12 machine.
#
# Usage: scripts/setup-chromium.sh        (prints the browser's version)
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-chromium: apt-get is required (Debian/Ubuntu) to install the chromium package;" \
    "elsewhere install Chromium yourself and put \`chromium\` on PATH" >&2
  exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi

echo "setup-chromium: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent (fresh container) or stale (a candidate that 404s): update once,
# then install without recommends (fonts and drivers a headless browser does not need).
if ! $sudo apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium
fi
chromium --version >&2
