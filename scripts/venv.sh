#!/usr/bin/env bash
# The course's virtual environment: .venv with labkit installed editable, plus test tools
# (the `test` extra, and `classroom`: KubeSpawner & co. for the Kubernetes pod manifest test).
# Needs Python 3.11 or newer (PYTHON names the interpreter; default python3). On a fresh
# Debian/Ubuntu as root, Python's venv package is installed first when it is missing.
# Runs under macOS's /bin/bash 3.2 too: no bash-4 features (tests/unit/test_scripts_portable.py).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
cd "$ROOT"

GET_PYTHON="get Python 3.11 or newer (python.org; macOS: \`brew install python@3.12\`; Debian 12 / Ubuntu 24.04: \`apt-get install python3 python3-venv\`) and name it if it is not python3: \`PYTHON=python3.12 make lab\`"

py_version() {  # py_version PYTHON: its version as X.Y.Z, or nothing
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true
}

new_enough() {  # new_enough PYTHON: true for Python 3.11 or newer
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 && "$PYTHON" == python3 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "venv: installing python3 (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
    else
        echo "venv: no Python found as '$PYTHON': $GET_PYTHON." >&2
        exit 1
    fi
fi

# The interpreter that matters: the existing venv's, else the one the venv is made from.
if [[ -x "$VENV/bin/python" ]]; then
    if ! new_enough "$VENV/bin/python"; then
        echo "venv: $VENV was made with Python $(py_version "$VENV/bin/python"); the course needs 3.11 or newer: remove $VENV, then $GET_PYTHON." >&2
        exit 1
    fi
elif ! new_enough "$PYTHON"; then
    echo "venv: the course needs Python 3.11 or newer, and $PYTHON ($(command -v "$PYTHON")) is Python $(py_version "$PYTHON"): $GET_PYTHON." >&2
    exit 1
fi

if [[ ! -x "$VENV/bin/python" ]] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    minor=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "venv: installing python$minor-venv (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "python$minor-venv" >/dev/null
    else
        echo "Python's venv module is missing: install python$minor-venv (Debian/Ubuntu, as root), or Python 3.11+ from python.org." >&2
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
"$VENV/bin/python" -m pip install -q -e ".[test,classroom]"
touch "$stamp"
echo "venv: $VENV ready in $((SECONDS - t0)) s"
