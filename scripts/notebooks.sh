#!/usr/bin/env bash
# Regenerate every notebook's stored outputs from one clean run, in order (`make notebooks`).
#
# Starts a fresh DinD engine of its own (scripts/dind.sh, own state directory), runs
# notebooks/*.ipynb in order against it with nbclient (scripts/notebooks.py: ANSI codes
# stripped, volatile metadata dropped, every notebook stamped with the same run id, engine
# version and image store), and removes that engine at the end, also on failure.
# Nothing else changes: the notebooks run in a scratch folder with a state directory of
# their own (the learner's workspace, registry password and port stay as they were), and
# the host engine only runs the DinD container (plus, when missing, the engine stand-in
# image scripts/engines.sh builds).
#
#   ENGINE=SPEC   the engine (default 28.5+containerd+api1.44: the containerd image store
#                 and API floor of Docker 29 / Docker Desktop, what most learners have)
#   OUT=DIR       write the executed notebooks to DIR instead of notebooks/ (a dry run)
#   NOTEBOOKS_DIND_STATE  the DinD engine's state directory (default .cache/dind-notebooks)
#   NOTEBOOKS_USER        the LABKIT_USER the outputs show (default student)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="${VENV:-$ROOT/.venv}/bin"
SPEC="${ENGINE:-28.5+containerd+api1.44}"
OUT="${OUT:-notebooks}"
export LABKIT_ENGINE="$SPEC"
export LABKIT_DIND_STATE="${NOTEBOOKS_DIND_STATE:-$ROOT/.cache/dind-notebooks}"
unset LABKIT_DIND_HOST  # always an engine of our own, fresh
# The course's defaults, whatever this shell sets: the stored outputs are what a learner sees.
export LABKIT_USER="${NOTEBOOKS_USER:-student}"
unset LABKIT_REGISTRY LABKIT_REGISTRY_PASSWORD LABKIT_BIND_IP LABKIT_PUBLISH_HOST \
    LABKIT_HIDE_COMMANDS
T0=$SECONDS
RUN_STATE=$(mktemp -d "${TMPDIR:-/tmp}/labkit-notebooks-state.XXXXXX")

finish() {
    local rc=$?
    trap - EXIT INT TERM
    echo "notebooks: stopping the DinD engine of this run"
    scripts/dind.sh stop || true
    rm -rf "$RUN_STATE"
    echo "notebooks: $((SECONDS - T0)) s in all (exit $rc)"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! docker info >/dev/null 2>&1; then
    echo "notebooks: no Docker engine answers here; run 'make images' first (it starts one and prepares the course images)." >&2
    exit 1
fi
mapfile -t NOTEBOOKS < <(ls notebooks/*.ipynb | sort)
scripts/dind.sh start
(
    unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT
    set -a
    # shellcheck source=/dev/null
    . "$LABKIT_DIND_STATE/env"
    set +a
    export LABKIT_STATE_DIR="$RUN_STATE"
    "$BIN/python" scripts/notebooks.py --spec "$SPEC" --out "$OUT" "${NOTEBOOKS[@]}"
)
