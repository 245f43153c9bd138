#!/usr/bin/env bash
# The Docker Engine the course talks to: start | stop | status.
#
# start  An engine that already answers (Docker Desktop, DOCKER_HOST, a running dockerd) is
#        used as is. Otherwise, as root on Debian/Ubuntu, install what is missing (Debian's
#        docker.io, debootstrap, openssl) and start dockerd in the background, recording
#        that we started it (.cache/engine/dockerd.pid). Anywhere else: one sentence on
#        what to install, exit 1. Never installed, one sentence instead:
#        - docker.io where another engine is installed (docker-ce, containerd.io, moby-*,
#          or a dockerd binary not from docker.io: the packages conflict);
#        - anything when DOCKER_TLS_VERIFY / DOCKER_CERT_PATH are set without DOCKER_HOST
#          (the docker CLI then looks at tcp://localhost:2376, not at the local engine);
#        - anything when the engine answers but refuses this docker CLI as too old.
# stop   Stop the engine only if we started it (by its pid), waiting for it to exit.
#
# A unix:// DOCKER_HOST that does not answer names the socket the new dockerd listens on;
# LABKIT_DOCKERD_ARGS adds dockerd flags (e.g. its own --data-root); LABKIT_ENGINE_STATE
# replaces .cache/engine (the tests use their own).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="${LABKIT_ENGINE_STATE:-$ROOT/.cache/engine}"  # where we record the dockerd we start
PIDFILE="$STATE/dockerd.pid"   # written by dockerd itself
STARTED="$STATE/started"       # "PID START-TIME": the dockerd that WE started
LOG="$STATE/dockerd.log"
PACKAGES=(docker.io debootstrap openssl ca-certificates)
# Engines that Debian's docker.io conflicts with: Docker's own packages and Microsoft's moby.
OTHER_ENGINES=(docker-ce docker-ce-cli containerd.io moby-engine moby-cli moby-containerd)
ANSWER_ERR=""  # what `docker info` said when it did not answer

say() { echo "engine: $*"; }

answers() {  # the docker CLI 20.10 prints a server's refusal on stdout, newer ones on stderr
    ANSWER_ERR=""
    command -v docker >/dev/null 2>&1 || return 1
    ANSWER_ERR=$(docker info 2>&1) && { ANSWER_ERR=""; return 0; }
    return 1
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

other_engine() {  # the engine installed here that is not Debian's docker.io, if any
    local pkg dockerd
    command -v dpkg-query >/dev/null 2>&1 && for pkg in "${OTHER_ENGINES[@]}"; do
        installed "$pkg" && { echo "$pkg"; return 0; }
    done
    if dockerd=$(command -v dockerd 2>/dev/null) && ! installed docker.io; then
        echo "$dockerd"
        return 0
    fi
    return 1
}

refuse_tls_without_host() {
    [[ -z "${DOCKER_HOST:-}" ]] || return 0
    [[ -n "${DOCKER_TLS_VERIFY:-}${DOCKER_CERT_PATH:-}${DOCKER_TLS:-}" ]] || return 0
    echo "No Docker Engine answers: DOCKER_TLS_VERIFY/DOCKER_CERT_PATH are set without DOCKER_HOST, so the docker CLI looks at tcp://localhost:2376; set DOCKER_HOST to the engine they belong to, or unset them to use the local engine." >&2
    exit 1
}

refuse_old_cli() {
    [[ "$ANSWER_ERR" == *"too old"* || "$ANSWER_ERR" == *"inimum supported API"* ]] || return 0
    local where=${DOCKER_HOST:-unix:///var/run/docker.sock} cli
    cli=$(docker version --format '{{.Client.Version}}, API {{.Client.APIVersion}}' 2>/dev/null \
        | head -n 1) || true
    echo "The engine at $where answers but refuses this docker CLI (${cli:-$(command -v docker)}): install a docker CLI of API 1.44 or newer (Debian trixie's docker-cli, or Docker's docker-ce-cli)." >&2
    exit 1
}

start_time() {  # field 22 of /proc/PID/stat: when the process started (after the "(comm)")
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    awk '{print $20}' <<<"$stat"
}

our_pid() {
    # The pid of the dockerd we started, if that very process still runs (a reused pid,
    # e.g. of another engine, does not match the recorded start time).
    [[ -s "$STARTED" ]] || return 1
    local pid started
    read -r pid started <"$STARTED"
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
    [[ "$(start_time "$pid")" == "$started" ]] || return 1
    echo "$pid"
}

socket_path() {
    case "${DOCKER_HOST:-}" in
        "") echo /var/run/docker.sock ;;
        unix://*) echo "${DOCKER_HOST#unix://}" ;;
        *) return 1 ;;
    esac
}

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        installed "$pkg" || echo "$pkg"
    done
}

install_packages() {
    local missing=() pkg
    while IFS= read -r pkg; do missing+=("$pkg"); done < <(missing_packages)  # bash 3.2 too
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "installing ${missing[*]+"${missing[*]}"} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ${missing[@]+"${missing[@]}"} >/dev/null
}

start() {
    if answers; then
        say "an engine already answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}; using it."
        return 0
    fi
    refuse_tls_without_host
    refuse_old_cli
    local sock
    if ! sock=$(socket_path); then
        echo "No Docker Engine answers at DOCKER_HOST=$DOCKER_HOST: start that engine, or unset DOCKER_HOST to use a local one." >&2
        exit 1
    fi
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "No Docker Engine answers: install and start Docker (Docker Desktop, or Docker Engine / your distribution's docker.io), or run this as root on Debian/Ubuntu to have it installed." >&2
        exit 1
    fi
    local other
    if [[ " $(missing_packages | tr '\n' ' ')" == *" docker.io "* ]] && other=$(other_engine); then
        echo "No Docker Engine answers at unix://$sock, and another engine is installed ($other): start it (e.g. 'sudo systemctl start docker') instead; Debian's docker.io is not installed over it." >&2
        exit 1
    fi
    install_packages
    if answers; then  # the package's own service may have started it
        say "the installed engine answers; using it."
        return 0
    fi
    if our_pid >/dev/null; then
        echo "A dockerd we started (pid $(our_pid)) runs but does not answer; see $LOG or run '$0 stop'." >&2
        exit 1
    fi
    mkdir -p "$STATE" "$(dirname "$sock")"
    local t0=$SECONDS
    # shellcheck disable=SC2086  # LABKIT_DOCKERD_ARGS is a list of flags
    setsid nohup dockerd --host="unix://$sock" --pidfile="$PIDFILE" ${LABKIT_DOCKERD_ARGS:-} \
        >"$LOG" 2>&1 </dev/null &
    local pid=$!
    for _ in $(seq 1 120); do
        if DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1; then
            echo "$pid $(start_time "$pid")" >"$STARTED"
            say "started dockerd (pid $pid) at unix://$sock in $((SECONDS - t0)) s; log: $LOG"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$LOG" >&2 || true
            echo "dockerd exited at start; see $LOG." >&2
            exit 1
        fi
        sleep 0.5
    done
    tail -n 20 "$LOG" >&2 || true
    echo "dockerd did not answer within 60 s; see $LOG." >&2
    exit 1
}

stop() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "$STARTED"
        say "no engine started by us runs; nothing to stop."
        return 0
    fi
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        [[ -d "/proc/$pid" ]] || { rm -f "$STARTED"; say "stopped."; return 0; }
        sleep 0.5
    done
    say "dockerd (pid $pid) did not stop in 30 s; killing it."
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$STARTED" "$PIDFILE"
}

status() {
    if answers; then
        local version
        version=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
        say "answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}: $version"
    else
        say "no engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}."
    fi
    if our_pid >/dev/null; then say "started by us: pid $(our_pid)"; else say "not started by us."; fi
    answers
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
