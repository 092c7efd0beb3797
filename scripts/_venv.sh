# Sourced by scripts/*.sh: create or reuse the virtual environment and install
# tensorpar (editable) with the extras named in $1. Re-installs only when
# setup.cfg or pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TENSORPAR_VENV:-$ROOT/.venv}"
ensure_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "[tensorpar] creating virtual environment in $VENV"
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.tensorpar-$extras"
    local want
    want="$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "[tensorpar] installing tensorpar[$extras] into $VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[$extras]"
        echo "$want" > "$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}
