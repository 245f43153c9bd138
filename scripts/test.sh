#!/usr/bin/env bash
# Everything `make test` does, in order; whatever it started is stopped on exit, also on
# failure, and the first failing step's exit status is the script's.
#   lint (ruff, mypy) and unit tests (no engine) → engine → course images → for each engine of the
#   matrix: a DinD engine with the course images → integration tests and notebooks (nbval)
#   against it; on one of them also the notebooks in reverse order and the browser test →
#   three learners at once on one engine → a classroom of three on JupyterHub.
#
# The engine matrix (LABKIT_ENGINES, `make test ENGINES="..."`; one: `make test ENGINE=...`),
# each built from Debian's packages by testbed/engines.py, never pulled:
#   20.10                    the oldest engine we support (Debian bookworm), overlay2
#   28.5+api1.44             a current engine (forky) refusing APIs below 1.44, as Engine 29
#   28.5+containerd+api1.44  the same on the containerd image store: Docker 29's default
#                            for new installs and Docker Desktop's. It gets the full run
#                            (LABKIT_FULL_ENGINE): reversed notebooks and the browser test.
# Everything engine-specific (API negotiation, image store, history sizes, push records,
# OCI save layout, classic builder on a BuildKit-era engine) runs on all three; what does
# not depend on the engine (notebook order, the browser) runs once, where users are.
# With LABKIT_DIND_HOST (a CI service such as docker:dind) that engine alone is tested.
set -euo pipefail
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404 )); then
    echo "scripts/test.sh needs bash 4.4 or newer, and this is bash $BASH_VERSION: install a newer bash (macOS: \`brew install bash\`, which then comes first on PATH) or run the tests on Linux." >&2
    exit 1
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="${VENV:-$ROOT/.venv}/bin"
# Images are pulled where a registry answers, else built from Debian packages; with
# LABKIT_OFFLINE=1 (`make test OFFLINE=1`) nothing is ever pulled.
export LABKIT_OFFLINE="${LABKIT_OFFLINE:-0}"
export LABKIT_TRUST_HOST_CA="${LABKIT_TRUST_HOST_CA:-1}"
T0=$SECONDS
TIMES=()
NOT_RUN=""  # a step that could not run here: said at once, and the run fails at the end

step() {  # step NAME COMMAND...: run it, and remember how long it took
    local name=$1 t=$SECONDS
    shift
    echo "==> $name"
    local rc=0
    "$@" || rc=$?
    TIMES+=("$(printf "%5d s  %s" $((SECONDS - t)) "$name")")
    [[ $rc -eq 0 ]] || { TIMES[-1]+=" FAILED (exit $rc)"; return "$rc"; }
}

finish() {
    local rc=$?
    trap - EXIT INT TERM
    echo "==> stopping what this run started"
    "$BIN/python" -m testbed.dind stop || true
    scripts/engine.sh stop || true
    printf '%s\n' "${TIMES[@]}"
    if [[ $rc -eq 0 && -n "$NOT_RUN" ]]; then
        echo "NOT RUN: $NOT_RUN."
        rc=1
    fi
    printf '%5d s  total (exit %d)\n' $((SECONDS - T0)) "$rc"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

browser_deps() {  # Debian's chromium for the browser test (Playwright's own download fails)
    [[ -n "${LABKIT_CHROMIUM:-}" && -x "${LABKIT_CHROMIUM:-}" ]] && return 0
    command -v chromium >/dev/null 2>&1 || [[ -x /usr/lib/chromium/chromium ]] && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        NOT_RUN="the browser test needs Chromium, and installing it needs root: run 'sudo apt-get install chromium' once (or set LABKIT_CHROMIUM)"
        echo "test: $NOT_RUN; everything else runs." >&2
    fi
}

in_dind() {  # run a command with DOCKER_HOST & co. pointing at the DinD engine
    (unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT
     set -a; . "${LABKIT_DIND_STATE:-.cache/dind}/env"; set +a; "$@")
}

have_notebooks() { compgen -G "notebooks/*.ipynb" >/dev/null; }

DEFAULT_ENGINES="20.10 28.5+api1.44 28.5+containerd+api1.44"
read -r -a ENGINES <<<"${LABKIT_ENGINES:-$DEFAULT_ENGINES}"
FULL="${LABKIT_FULL_ENGINE:-${ENGINES[${#ENGINES[@]}-1]}}"
[[ -n "${LABKIT_DIND_HOST:-}" ]] && ENGINES=(service) && FULL=service

prepare_args=(--trust-host-ca)
[[ "$LABKIT_TRUST_HOST_CA" == 1 ]] || prepare_args=()
[[ "$LABKIT_OFFLINE" == 1 ]] && prepare_args+=(--offline)

step "venv" scripts/venv.sh
step "lint (ruff)" "$BIN/ruff" check .
step "lint (mypy)" "$BIN/mypy"
step "unit tests" "$BIN/pytest" -q tests/unit
step "engine" scripts/engine.sh start
step "course images" "$BIN/labkit" prepare ${prepare_args[@]+"${prepare_args[@]}"}
[[ -d tests/browser ]] && step "chromium" browser_deps
if have_notebooks; then
    # In order, as a learner goes; then in reverse order, which runs every notebook a
    # second time and each one right after a later step's state (06 after 07's clean-up:
    # as if opened alone).
    mapfile -t NOTEBOOKS < <(ls notebooks/*.ipynb | sort)
    mapfile -t REVERSED < <(ls notebooks/*.ipynb | sort -r)
    NBVAL=(-q --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg
           --nbval-cell-timeout 600)
fi

for spec in "${ENGINES[@]}"; do
    if [[ "$spec" == service ]]; then
        unset LABKIT_ENGINE
    else
        export LABKIT_ENGINE=$spec
    fi
    step "DinD engine $spec" "$BIN/python" -m testbed.dind start
    step "integration tests ($spec)" in_dind "$BIN/pytest" -q -m integration tests/integration
    if have_notebooks; then
        step "notebooks in order (nbval, $spec)" in_dind "$BIN/pytest" "${NBVAL[@]}" \
            "${NOTEBOOKS[@]}"
        if [[ "$spec" == "$FULL" ]]; then
            step "notebooks again, reversed (nbval, $spec)" in_dind "$BIN/pytest" \
                "${NBVAL[@]}" "${REVERSED[@]}"
        fi
    fi
    if [[ -d tests/browser && "$spec" == "$FULL" && -z "$NOT_RUN" ]]; then
        step "browser test ($spec)" in_dind "$BIN/pytest" -q tests/browser
    fi
    step "stop DinD engine $spec" "$BIN/python" -m testbed.dind stop
done

# Many learners at once on one engine: the short form of `make test-concurrency` (three
# learners, the steps that write the workspace and clean up; the eight-learner run is in the
# README). Then a classroom: JupyterHub with one engine per learner, three learners through
# the hub's REST API, and the Kubernetes engine pod's two containers (tests/classroom).
# Both start and stop what they need on the engine above; not with a CI service's engine.
if [[ -z "${LABKIT_DIND_HOST:-}" ]]; then
    step "three learners at once on one engine" \
        "$BIN/python" -m testbed.concurrency --learners 3 --notebooks "00 01 02 07"
    if [[ $(id -u) -eq 0 ]]; then
        step "classroom (JupyterHub, three learners; Kubernetes engine pod)" \
            "$BIN/pytest" -q -p no:cacheprovider tests/classroom
    else
        NOT_RUN="${NOT_RUN:+$NOT_RUN; }the classroom test needs root (each learner's engine disk is a loop mount): run make test as root, or make test-classroom with sudo"
        echo "test: the classroom test needs root; everything else runs." >&2
    fi
fi
