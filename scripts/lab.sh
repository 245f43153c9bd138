#!/usr/bin/env bash
# `make lab`: set everything up, then JupyterLab on notebooks/ until you stop it (Ctrl-C);
# an engine this script started is stopped when JupyterLab exits.
# Runs under macOS's /bin/bash 3.2 too: no bash-4 features, and an array that may be empty
# is expanded as ${a[@]+"${a[@]}"} (bash < 4.4 calls a plain "${a[@]}" unbound under set -u).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="${VENV:-$ROOT/.venv}/bin"
PORT="${LAB_PORT:-8888}"

scripts/venv.sh
scripts/engine.sh start
trap 'scripts/engine.sh stop' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
prepare_args=()
[[ "${LABKIT_TRUST_HOST_CA:-0}" == 1 ]] && prepare_args+=(--trust-host-ca)
"$BIN/labkit" prepare ${prepare_args[@]+"${prepare_args[@]}"}
"$BIN/labkit" registry start
"$BIN/labkit" doctor || echo "lab: labkit doctor reports a problem (above); JupyterLab starts anyway."
# A terminal opened in JupyterLab gets what the notebooks' terminal cells have: $LABKIT_USER,
# $REGISTRY and labkit on PATH (elsewhere: eval "$(labkit env)"). It is the server's own
# shell, not a login shell, whose /etc/profile would reset PATH.
eval "$("$BIN/labkit" env)"
mkdir -p notebooks
lab_args=(--ServerApp.terminado_settings=shell_command="$(command -v bash)")
[[ $(id -u) -eq 0 ]] && lab_args+=(--allow-root)  # e.g. a container or a throwaway VM
echo "lab: JupyterLab on notebooks/ (the URL with its token follows; Ctrl-C stops it)"
"$BIN/jupyter" lab --no-browser --port "$PORT" --notebook-dir notebooks \
    --ServerApp.ip="${LAB_IP:-127.0.0.1}" ${lab_args[@]+"${lab_args[@]}"}
