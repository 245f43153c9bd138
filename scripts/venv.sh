#!/usr/bin/env bash
# The course's virtual environment: .venv with labkit installed editable, plus test tools.
# On a fresh Debian/Ubuntu as root, python3-venv is installed first when it is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
cd "$ROOT"

if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "venv: installing python3-venv (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
    else
        echo "Python's venv module is missing: install python3-venv (Debian/Ubuntu) or Python 3.11+ from python.org." >&2
        exit 1
    fi
fi

# Re-install only when pyproject.toml changed since the last install.
stamp="$VENV/.labkit-installed"
if [[ -x "$VENV/bin/labkit" && -f "$stamp" && "$stamp" -nt pyproject.toml ]]; then
    echo "venv: $VENV is up to date"
    exit 0
fi
t0=$SECONDS
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[test]"
touch "$stamp"
echo "venv: $VENV ready in $((SECONDS - t0)) s"
