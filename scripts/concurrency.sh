#!/usr/bin/env bash
# Many learners at once on ONE engine (`make test-concurrency LEARNERS=N`).
#
# Starts a DinD engine of its own (scripts/dind.sh, own state directory), then N learners
# at the same moment, each with its own LABKIT_USER (learner-1 .. learner-N) and state
# directory, each running the course's notebooks in order under nbval as scripts/test.sh
# does. The learners share one copy of the notebooks, as learners sharing a checkout do
# (the first one owns workspace/, the others get learners/<user>/). At the end: pass or
# fail, wall time and slowest notebook per learner, the machine's load; the engine is
# removed, also on failure. Exit status 1 when any learner failed.
#
#   LEARNERS=N        how many (default 8)
#   ENGINE=SPEC       the engine (default 28.5+containerd+api1.44; scripts/engines.sh list)
#   NOTEBOOKS="02 03" only the notebooks whose names start so (default: all, in order)
#   CONCURRENCY_LOGS=DIR  keep each learner's log and JUnit report there (default: a
#                     scratch folder, removed at the end)
set -euo pipefail
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404 )); then
    echo "scripts/concurrency.sh needs bash 4.4 or newer (this is bash $BASH_VERSION)." >&2
    exit 1
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$(cd "${VENV:-$ROOT/.venv}" && pwd)/bin"  # absolute: each learner runs in a scratch folder
N="${LEARNERS:-8}"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "LEARNERS must be a positive number, not '$N'." >&2; exit 2; }
export LABKIT_ENGINE="${ENGINE:-28.5+containerd+api1.44}"
export LABKIT_DIND_STATE="${CONCURRENCY_DIND_STATE:-$ROOT/.cache/dind-concurrency}"
unset LABKIT_DIND_HOST LABKIT_REGISTRY LABKIT_REGISTRY_PASSWORD LABKIT_BIND_IP \
    LABKIT_PUBLISH_HOST
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/labkit-concurrency.XXXXXX")
LOGS="${CONCURRENCY_LOGS:-$SCRATCH/logs}"
mkdir -p "$LOGS" "$SCRATCH/notebooks"
T0=$SECONDS

finish() {
    local rc=$?
    trap - EXIT INT TERM
    jobs -p | xargs -r kill 2>/dev/null || true
    echo "concurrency: stopping the DinD engine of this run"
    scripts/dind.sh stop || true
    rm -rf "$SCRATCH"
    echo "concurrency: $((SECONDS - T0)) s in all (exit $rc)"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mapfile -t ALL < <(ls notebooks/*.ipynb | sort)
CHOSEN=()
for nb in "${ALL[@]}"; do
    if [[ -z "${NOTEBOOKS:-}" ]]; then
        CHOSEN+=("$nb")
    else
        for prefix in $NOTEBOOKS; do
            [[ "$(basename "$nb")" == "$prefix"* ]] && CHOSEN+=("$nb") && break
        done
    fi
done
(( ${#CHOSEN[@]} )) || { echo "No notebook starts with: $NOTEBOOKS" >&2; exit 2; }
cp "${CHOSEN[@]}" "$SCRATCH/notebooks/"
mapfile -t RUN < <(cd "$SCRATCH/notebooks" && ls -- *.ipynb | sort)

scripts/dind.sh start
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "concurrency: $N learners, ${#RUN[@]} notebooks each, on $LABKIT_ENGINE;" \
    "$(nproc) CPUs, load $(load)"

learner() {  # learner I: the notebooks in order, as one learner, against the DinD engine
    local i=$1
    (unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT
     set -a; . "$LABKIT_DIND_STATE/env"; set +a
     export LABKIT_USER="learner-$i" LABKIT_STATE_DIR="$SCRATCH/state-$i"
     cd "$SCRATCH/notebooks"
     # a kernel starting under load may take over nbval's default minute
     "$BIN/pytest" -q -p no:cacheprovider --rootdir "$SCRATCH/notebooks" --nbval-lax \
         --nbval-sanitize-with "$ROOT/tests/nbval_sanitize.cfg" --nbval-cell-timeout 900 \
         --nbval-kernel-startup-timeout 300 \
         --junitxml "$LOGS/learner-$i.xml" "${RUN[@]}") >"$LOGS/learner-$i.log" 2>&1
}

declare -A PIDS START
for i in $(seq 1 "$N"); do
    START[$i]=$SECONDS
    learner "$i" & PIDS[$i]=$!
done
FAILED=0
for i in $(seq 1 "$N"); do
    rc=0
    wait "${PIDS[$i]}" || rc=$?
    echo "$i $rc $((SECONDS - START[$i]))" >>"$SCRATCH/results"
    (( rc == 0 )) || FAILED=$((FAILED + 1))
done
echo "concurrency: all $N done after $((SECONDS - T0)) s; load $(load)"
"$BIN/python" - "$SCRATCH/results" "$LOGS" <<'EOF'
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

results, logs = Path(sys.argv[1]), Path(sys.argv[2])
print(f"{'learner':<12} {'result':<6} {'wall':>7}  slowest notebook")
walls = []
for line in sorted(results.read_text().split("\n")[:-1], key=lambda s: int(s.split()[0])):
    i, rc, wall = line.split()
    per_nb: dict[str, float] = defaultdict(float)
    report = logs / f"learner-{i}.xml"
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            per_nb[case.get("classname") or case.get("file") or "?"] += float(case.get("time", 0))
    slow = max(per_nb.items(), key=lambda kv: kv[1], default=("?", 0.0))
    name = slow[0].rsplit(".", 1)[0].split("/")[-1]
    print(f"learner-{i:<4} {'pass' if rc == '0' else 'FAIL':<6} {wall:>5} s  {name} {slow[1]:.0f} s")
    walls.append(int(wall))
    if rc != "0":
        tail = (logs / f"learner-{i}.log").read_text(errors="replace").splitlines()
        print("    " + "\n    ".join(line for line in tail if "FAILED" in line or "Error" in line)
              [:2000])
print(f"wall time per learner: min {min(walls)} s, median {sorted(walls)[len(walls) // 2]} s, "
      f"max {max(walls)} s")
EOF
(( FAILED == 0 )) || { echo "concurrency: $FAILED of $N learners FAILED (logs: $LOGS)"; exit 1; }
echo "concurrency: all $N learners passed"
