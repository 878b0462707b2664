#!/usr/bin/env bash
# Builds the deployment package dist/ti-ingest.zip for a Linux Function App (x86-64):
#
#   host.json                      the host configuration (starts the custom handler)
#   <Function>/function.json       one folder per function, from functions/<Function>/
#   ti-ingest                      the handler, named as host.json's defaultExecutablePath says,
#                                  mode 0755 in the zip
#
# The binary is linked statically (glibc's static libraries, +crt-static), so it runs on every
# Functions Linux image whatever its glibc version. Deploy with
#   az functionapp deployment source config-zip -g <rg> -n <app> --src dist/ti-ingest.zip
# (docs/DEPLOY.md). Cargo rebuilds only what changed; a second run takes seconds.
#
# Options (environment): OUT=path/to/zip (default dist/ti-ingest.zip), CARGO_TARGET_DIR.
# For the test suite only (tests/package.rs), which must not spend a second, release build:
#   TI_PACKAGE_BIN=path        pack this already built handler instead of building one
#   TI_PACKAGE_DYNAMIC_OK=1    let a dynamically linked handler through the static-link guard
#                              (the suite packs its own debug build; never deploy such a zip)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
OUT=${OUT:-dist/ti-ingest.zip}

if [[ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]]; then
  echo "package: build on Linux x86-64 (this is $(uname -s)/$(uname -m)); the Function App runs Linux x86-64" >&2
  exit 2
fi

# The executable host.json starts, relative to the app root.
exe=$(sed -n 's/.*"defaultExecutablePath"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' host.json)
if [[ -z "$exe" || "$exe" == */* ]]; then
  echo "package: host.json must name the handler binary at the app root (defaultExecutablePath), found '$exe'" >&2
  exit 2
fi

if [[ -n "${TI_PACKAGE_BIN:-}" ]]; then
  bin=$TI_PACKAGE_BIN
  echo "package: packing the prebuilt $bin"
else
  # With --target, RUSTFLAGS apply to the binary only, not to build scripts and proc macros.
  echo "package: cargo build --release --target $TARGET --bin ti-ingest (static)"
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$TARGET" --bin ti-ingest
  bin="${CARGO_TARGET_DIR:-target}/$TARGET/release/ti-ingest"
fi
if [[ ! -x "$bin" ]]; then
  echo "package: $bin was not built" >&2
  exit 1
fi
# A dynamically linked binary has an ELF interpreter (PT_INTERP); a static one has none.
# readelf comes with binutils, which every C toolchain (and so every Rust one on Linux) has.
if ! command -v readelf >/dev/null 2>&1; then
  echo "package: readelf (binutils) is needed to check that the handler is statically linked" >&2
  exit 2
fi
if readelf -lW "$bin" | grep -q 'Requesting program interpreter'; then
  if [[ "${TI_PACKAGE_DYNAMIC_OK:-}" == 1 ]]; then
    echo "package: warning: $bin is dynamically linked (TI_PACKAGE_DYNAMIC_OK=1: a test package, never deploy it)" >&2
  else
    echo "package: $bin is dynamically linked; it would depend on the image's glibc" >&2
    exit 1
  fi
fi
"$bin" --version >/dev/null

mkdir -p "$(dirname "$OUT")"
python3 - "$OUT" "$bin" "$exe" <<'EOF'
import os, sys, zipfile
from pathlib import Path

out, binary, exe = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
# Fixed timestamps and order: the same inputs give the same zip.
stamp = (1980, 1, 1, 0, 0, 0)

def add(zf, name, data, mode):
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.create_system = 3  # Unix, so the mode bits below are honoured on extraction
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)

tmp = out.with_suffix(out.suffix + ".tmp")
with zipfile.ZipFile(tmp, "w", compresslevel=9) as zf:
    add(zf, "host.json", Path("host.json").read_bytes(), 0o644)
    functions = sorted(p for p in Path("functions").iterdir() if (p / "function.json").is_file())
    if not functions:
        sys.exit("package: no functions/*/function.json")
    for folder in functions:
        add(zf, f"{folder.name}/function.json", (folder / "function.json").read_bytes(), 0o644)
    add(zf, exe, binary.read_bytes(), 0o755)
os.replace(tmp, out)
with zipfile.ZipFile(out) as zf:
    for info in zf.infolist():
        print(f"  {(info.external_attr >> 16) & 0o777:o} {info.file_size:>10} {info.filename}")
EOF
echo "package: wrote $OUT ($(du -h "$OUT" | cut -f1))"
