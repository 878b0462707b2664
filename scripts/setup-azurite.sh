#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator the tests and the demo start) exactly as pinned in
# package-lock.json. Idempotent: does nothing when node_modules/.bin/azurite exists and the lock
# file has not changed since the last install (its checksum is kept in node_modules/).
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.ti-ingest-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)

if [[ -x node_modules/.bin/azurite && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "setup-azurite: npm is required (Node.js 18 or newer) to install Azurite" >&2
  exit 1
fi

echo "setup-azurite: installing Azurite from package-lock.json" >&2
npm ci --no-audit --no-fund
echo "$want" > "$stamp"
node_modules/.bin/azurite --version >&2
