#!/usr/bin/env bash
# The real TAXII 2.1 server for the feed-pull tests (issue 6): OASIS medallion from PyPI.
#
# Creates .venv-taxii/ (once; re-created when the pins below change) with medallion and its
# dependencies pinned, so tests/pull.rs talks to the same server on every machine. The tests
# start it themselves (`.venv-taxii/bin/medallion --host 127.0.0.1 --port N config.json`, memory
# backend, a generated collection); this script only installs it. Idempotent and quiet when
# nothing changed.
#
# Usage: scripts/setup-medallion.sh        (prints the medallion executable's path)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-taxii"
python="${PYTHON:-python3}"

# medallion 3.0.0 is the current TAXII 2.1 release; its dependencies are pinned to versions
# checked to work with it (Flask 3.x still provides flask.json.dumps, which it uses).
pins="medallion==3.0.0
Flask==3.1.3
Flask-HTTPAuth==4.8.1
Werkzeug==3.1.9
Jinja2==3.1.6
MarkupSafe==3.0.4
itsdangerous==2.2.0
click==8.5.1
blinker==1.9.0
pytz==2026.6
six==1.17.0"

if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$pins" ] || [ ! -x "$venv/bin/medallion" ]; then
    echo "setup-medallion: creating $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    printf '%s\n' "$pins" > "$venv/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$venv/requirements.txt" >&2
    printf '%s' "$pins" > "$venv/.requirements"
fi
echo "$venv/bin/medallion"
