#!/usr/bin/env bash
# `make bench`: the benchmarks on the oldest and the newest engine of the engine matrix.
#
# For each engine SPEC (see scripts/engines.sh; default: 20.10 and 28.5+containerd+api1.44)
# start that engine stand-in as a Docker-in-Docker engine of its own (scripts/dind.sh, with
# a state directory of its own under .cache/), run bench/run.py (the lab's steps, labkit vs
# the docker CLI, and the cached rebuild against its goal), bench/layers.py (layer analysis
# vs `docker image save`) and bench/notebooks.py (every notebook run twice, the warm run's
# cell times against the course's goals) against it, each under a header naming the engine,
# then remove that engine. Whatever this script
# started is removed on exit, also on failure or Ctrl-C; the exit status is the first
# failure's.
#
#   scripts/bench.sh [--rounds N] [--engines "SPEC ..."] [--only run|layers|notebooks]
#
# --rounds N is passed to bench/run.py and bench/layers.py (the notebooks run twice). BENCH_ENGINES sets the engines too.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="${VENV:-$ROOT/.venv}/bin"
ENGINES="${BENCH_ENGINES:-20.10 28.5+containerd+api1.44}"
ONLY=""
BENCH_ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) BENCH_ARGS+=(--rounds "$2"); shift 2 ;;
        --engines) ENGINES=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "usage: $0 [--rounds N] [--engines \"SPEC ...\"] [--only run|layers|notebooks]" >&2
           exit 2 ;;
    esac
done

T0=$SECONDS
RC=0
TIMES=()
CURRENT=""            # the state directory of the DinD engine running now, if any
HOST_ENGINE_OURS=0    # 1 when this script started the host engine
# labkit's per-user state (the bench's registry password) lives and dies with this run.
LABKIT_STATE_DIR=$(mktemp -d)
export LABKIT_STATE_DIR

state_dir() { echo "$ROOT/.cache/dind-bench-${1//+/-}"; }

stop_engine() {  # stop_engine STATE: remove the DinD engine started with that state only
    local state=$1 id src
    LABKIT_DIND_STATE="$state" scripts/dind.sh stop || true
    # Interrupted between `docker run` and dind.sh writing down the name: find it by the
    # certificate directory it mounts, which is inside our own state directory.
    for id in $(docker ps -aq --filter label=org.labkit.role=dind-engine 2>/dev/null); do
        src=$(docker inspect -f '{{range .Mounts}}{{.Source}} {{end}}' "$id" 2>/dev/null) || continue
        if [[ " $src" == *" $state/"* ]]; then
            docker rm -f -v "$id" >/dev/null && echo "bench: removed $id (left by an interrupted start)"
        fi
    done
    rm -rf "${state:?}/labkit-dind-"* && rmdir "$state" 2>/dev/null || true
}

finish() {
    local rc=$?
    trap - EXIT INT TERM
    [[ $rc -eq 0 ]] && rc=$RC
    if [[ -n "$CURRENT" ]]; then
        echo "==> stopping the bench's engine"
        stop_engine "$CURRENT"
    fi
    [[ $HOST_ENGINE_OURS -eq 1 ]] && scripts/engine.sh stop || true
    rm -rf "$LABKIT_STATE_DIR"
    echo
    printf '%s\n' "${TIMES[@]}"
    printf '%5d s  whole bench (exit %d)\n' $((SECONDS - T0)) "$rc"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

header() {  # header WHAT SPEC: name the benchmark and the engine it runs against
    "$BIN/python" - "$1" "$2" <<'EOF'
import sys
from labkit import engine
i = engine.info()
print(f"\n=== {sys.argv[1]} on {sys.argv[2]}: Docker {i.version}, {i.store_label}, "
      f"API {i.api_version} (minimum {i.min_api_version}) at {i.host} ===", flush=True)
EOF
}

bench() {  # bench SPEC: start it, run both benchmarks against it, stop it
    local spec=$1 t=$SECONDS state rc=0
    state=$(state_dir "$spec")
    echo
    echo "==> engine $spec"
    CURRENT=$state
    if ! LABKIT_ENGINE="$spec" LABKIT_DIND_STATE="$state" scripts/dind.sh start; then
        TIMES+=("$(printf '%5d s  %s: the engine did not start' $((SECONDS - t)) "$spec")")
        stop_engine "$state"; CURRENT=""
        return 1
    fi
    TIMES+=("$(printf '%5d s  %s: start' $((SECONDS - t)) "$spec")")
    local which
    for which in run layers notebooks; do
        [[ -z "$ONLY" || "$ONLY" == "$which" ]] || continue
        local tb=$SECONDS brc=0
        (
            set -a; . "$state/env"; set +a
            header "bench/$which.py" "$spec"
            if [[ $which == notebooks ]]; then
                "$BIN/python" "bench/$which.py"
            else
                "$BIN/python" "bench/$which.py" "${BENCH_ARGS[@]}"
            fi
        ) || brc=$?
        TIMES+=("$(printf '%5d s  %s: bench/%s.py%s' $((SECONDS - tb)) "$spec" "$which" \
            "$([[ $brc -eq 0 ]] || echo " FAILED (exit $brc)")")")
        [[ $brc -eq 130 || $brc -eq 143 ]] && exit "$brc"
        [[ $brc -eq 0 || $rc -ne 0 ]] || rc=$brc
    done
    stop_engine "$state"
    CURRENT=""
    return "$rc"
}

if ! docker info >/dev/null 2>&1; then
    scripts/engine.sh start
    HOST_ENGINE_OURS=1
fi
prepare_args=()
[[ "${LABKIT_OFFLINE:-}" == 1 ]] && prepare_args+=(--offline)
[[ "${LABKIT_TRUST_HOST_CA:-}" == 1 ]] && prepare_args+=(--trust-host-ca)
"$BIN/labkit" prepare "${prepare_args[@]}" >/dev/null  # the images each engine is given

for spec in $ENGINES; do
    rc=0
    bench "$spec" || rc=$?
    [[ $rc -eq 0 || $RC -ne 0 ]] || RC=$rc
done
exit "$RC"
