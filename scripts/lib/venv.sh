# Sourced by the scripts that run Python tools: `ensure_venv DIR REQUIREMENTS_FILE` creates the
# virtual environment DIR (relative to the repository root) with exactly the pinned packages of
# REQUIREMENTS_FILE, once; it is re-created when the pins change. Safe when several tests (or
# scripts/setup-tools.sh) ask for the same one at the same time: one installs, the others wait.
ensure_venv() {
    local root venv req python lock
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    venv="$root/$1"
    req="$root/$2"
    python="${PYTHON:-python3}"
    if ! command -v "$python" >/dev/null 2>&1; then
        echo "ensure_venv: $python not found (Python 3.9 or later is needed for $1)" >&2
        return 2
    fi
    mkdir -p "$root/target"
    lock="$root/target/$(basename "$venv").lock"
    (
        flock 9
        if ! cmp -s "$req" "$venv/.requirements" 2>/dev/null || [ ! -x "$venv/bin/python" ]; then
            echo "ensure_venv: installing $2 into $1/" >&2
            rm -rf "$venv"
            "$python" -m venv "$venv"
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
            cp "$req" "$venv/.requirements"
        fi
    ) 9>"$lock"
}
