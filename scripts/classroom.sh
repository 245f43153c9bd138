#!/usr/bin/env bash
# A classroom on this machine: JupyterHub + configurable-http-proxy + DockerSpawner, one
# Docker engine per learner (see classroom/ and docs/INSTRUCTORS.md).
#   start   build what is missing (the hub's venv, the proxy, the learner and engine images,
#           offline from the course's stand-ins), then start the hub in the background
#   stop    stop the hub (which stops every server and engine), then remove every container,
#           volume, network, mount and process this classroom made; CLEAN=1 also removes
#           its images and its folder (the progress records)
#   status  what runs
#   tls     only decide HTTP or HTTPS for CLASSROOM_IP (and make the certificate), as start does
#   forget NAME   a learner forgot their password: their next login claims NAME again
# Settings (environment): LEARNERS (3: servers at once), CLASSROOM_NAME (classroom: the
# prefix and label of everything made), CLASSROOM_PORT (8000, on CLASSROOM_IP=127.0.0.1),
# CLASSROOM_SERVER_MEMORY/CPUS (1g/1), CLASSROOM_ENGINE_MEMORY/CPUS/PIDS (2g/1/2048),
# CLASSROOM_DISK (10g per engine), CLASSROOM_PROGRESS_DISK (16m per learner's records),
# CLASSROOM_CULL_TIMEOUT/EVERY (3600/300 s),
# CLASSROOM_SSL_CERT/KEY.
# Off loopback (CLASSROOM_IP other than 127.0.0.1, ::1, localhost) the hub serves HTTPS only:
# with CLASSROOM_SSL_CERT/KEY, else with a self-signed certificate made here for that address
# (its fingerprint is printed: read it to the room); CLASSROOM_ALLOW_HTTP=1 serves plain HTTP.
# Needs root (each engine's disk is a loop-mounted file system) and a running engine with
# the course's images (`make images`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CLASSROOM_NAME="${CLASSROOM_NAME:-classroom}"
TOOLS="$ROOT/.cache/classroom"                 # the hub's venv and the proxy, shared
export CLASSROOM_STATE="$TOOLS/$CLASSROOM_NAME"  # this classroom's own files
export CLASSROOM_REPO="$ROOT"
export CLASSROOM_LEARNERS="${LEARNERS:-${CLASSROOM_LEARNERS:-3}}"
LABEL="org.labkit.classroom=$CLASSROOM_NAME"
NET="$CLASSROOM_NAME-net"
LEARNER_IMAGE="$CLASSROOM_NAME-learner:latest"
ENGINE_IMAGE="$CLASSROOM_NAME-engine:latest"
CHP_VERSION=5.3.0
HUB_VENV="$TOOLS/hub-venv"
PIDFILE="$CLASSROOM_STATE/hub.pgid"  # the hub leads its own process group (setsid)
PORT="${CLASSROOM_PORT:-8000}"

say() { echo "classroom: $*"; }
die() { echo "classroom: $*" >&2; exit 1; }

alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

hub_venv() {
    local stamp="$HUB_VENV/.installed"
    if [[ -f "$stamp" && "$stamp" -nt "$ROOT/classroom/requirements-hub.txt" ]]; then return 0; fi
    say "installing JupyterHub, DockerSpawner and the idle culler into $HUB_VENV (PyPI)"
    [[ -x "$HUB_VENV/bin/python" ]] || python3 -m venv "$HUB_VENV"
    "$HUB_VENV/bin/pip" install -q -r "$ROOT/classroom/requirements-hub.txt"
    touch "$stamp"
}

proxy() {
    local bin="$TOOLS/chp/node_modules/.bin/configurable-http-proxy"
    if [[ ! -x "$bin" ]]; then
        command -v npm >/dev/null || die "configurable-http-proxy needs Node.js and npm: apt-get install nodejs npm"
        say "installing configurable-http-proxy $CHP_VERSION (npm)"
        npm install --no-audit --no-fund --silent --prefix "$TOOLS/chp" \
            "configurable-http-proxy@$CHP_VERSION" >/dev/null
    fi
    export CLASSROOM_CHP="$bin"
}

build() {  # docker build, quiet unless it fails (its log then)
    local out
    out=$(docker build -q "$@" 2>&1) || { echo "$out" >&2; return 1; }
}

images() {
    local img
    for img in python:3.11-slim-bookworm registry:2 docker:dind; do
        docker image inspect "$img" >/dev/null 2>&1 \
            || die "$img is not on this engine: run 'make images' (labkit prepare) first."
    done
    local t0=$SECONDS
    build --label "$LABEL" -t "$ENGINE_IMAGE" "$ROOT/classroom/engine"
    # The learner image's context: the course (package + notebooks) and its requirements.
    local ctx="$CLASSROOM_STATE/learner-context"
    rm -rf "$ctx"
    mkdir -p "$ctx/course/notebooks"
    cp "$ROOT/classroom/Dockerfile.learner" "$ctx/Dockerfile"
    cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/labkit" "$ctx/course/"
    find "$ctx/course/labkit" -name __pycache__ -prune -exec rm -rf {} +
    cp "$ROOT"/notebooks/*.ipynb "$ctx/course/notebooks/"
    {
        python3 -c 'import tomllib; print("\n".join(tomllib.load(open("'"$ROOT"'/pyproject.toml", "rb"))["project"]["dependencies"]))'
        grep -E '^jupyterhub==' "$ROOT/classroom/requirements-hub.txt"
    } >"$ctx/requirements-learner.txt"
    say "building $LEARNER_IMAGE (course image; pip installs only on the first build)"
    build --label "$LABEL" -t "$LEARNER_IMAGE" "$ctx"
    say "images ready in $((SECONDS - t0)) s"
}

secrets() {  # made once per classroom; 0600; never printed
    local file="$CLASSROOM_STATE/secrets.env"
    if [[ ! -s "$file" ]]; then
        (
            umask 077
            {
                echo "CLASSROOM_WORKSHOP_CODE=$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
                echo "CLASSROOM_INSTRUCTOR_PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
                echo "CLASSROOM_ADMIN_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
                echo "CONFIGPROXY_AUTH_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
            } >"$file"
        )
    fi
    echo "$file"
}

loopback() { case "$1" in 127.0.0.1 | ::1 | localhost) return 0 ;; *) return 1 ;; esac; }

self_signed() {  # self_signed ADDRESS: a certificate for it in the state folder (key 0600)
    local ip=$1 dir="$CLASSROOM_STATE/tls" san
    local cert="$dir/hub.crt" key="$dir/hub.key"
    if [[ -s "$cert" && -s "$key" ]] && openssl x509 -noout -checkend 86400 -in "$cert" >/dev/null \
        && { [[ $ip == 0.0.0.0 || $ip == :: ]] || openssl x509 -noout -checkip "$ip" -in "$cert" | grep -q 'does match'; }; then
        :  # still good for this address: keep it (learners may have accepted it already)
    else
        case "$ip" in
            0.0.0.0 | ::)  # every address of this machine
                san="DNS:$(hostname)"
                for a in $(hostname -I 2>/dev/null); do san="$san,IP:$a"; done ;;
            *[!0-9.:a-fA-F]*) san="DNS:$ip" ;;
            *) san="IP:$ip" ;;
        esac
        mkdir -p "$dir"
        chmod 700 "$dir"
        (
            umask 077
            openssl req -x509 -newkey rsa:2048 -nodes -days 30 -sha256 -keyout "$key.new" \
                -out "$cert.new" -subj "/CN=labkit classroom $CLASSROOM_NAME" \
                -addext "subjectAltName=$san" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
        ) || die "openssl could not make a certificate for $ip."
        chmod 600 "$key.new"
        mv "$key.new" "$key"
        mv "$cert.new" "$cert"
        say "made a self-signed certificate for $ip ($san), valid 30 days: $cert"
    fi
    export CLASSROOM_SSL_CERT="$cert" CLASSROOM_SSL_KEY="$key"
}

tls() {  # HTTP or HTTPS for CLASSROOM_IP: sets SCHEME; exports CLASSROOM_SSL_CERT/KEY for HTTPS
    local ip="${CLASSROOM_IP:-127.0.0.1}"
    if [[ -n "${CLASSROOM_SSL_CERT:-}" || -n "${CLASSROOM_SSL_KEY:-}" ]]; then
        [[ -n "${CLASSROOM_SSL_CERT:-}" && -n "${CLASSROOM_SSL_KEY:-}" ]] \
            || die "give both CLASSROOM_SSL_CERT and CLASSROOM_SSL_KEY (the certificate and its key), or neither."
        [[ -r "$CLASSROOM_SSL_CERT" && -r "$CLASSROOM_SSL_KEY" ]] \
            || die "CLASSROOM_SSL_CERT or CLASSROOM_SSL_KEY names no readable file."
        SCHEME=https
    elif loopback "$ip"; then
        SCHEME=http  # this machine only: nothing crosses a network
    elif [[ "${CLASSROOM_ALLOW_HTTP:-0}" == 1 ]]; then
        say "WARNING: plain HTTP on $ip (CLASSROOM_ALLOW_HTTP=1): names, codes and passwords cross the network in clear."
        SCHEME=http
    else
        command -v openssl >/dev/null \
            || die "refusing plain HTTP on $ip: install openssl (a self-signed certificate is made with it), give CLASSROOM_SSL_CERT and CLASSROOM_SSL_KEY, or set CLASSROOM_ALLOW_HTTP=1 to send passwords in clear."
        self_signed "$ip"
        SCHEME=https
    fi
    if [[ $SCHEME == https ]]; then
        say "HTTPS with $CLASSROOM_SSL_CERT; $(openssl x509 -noout -fingerprint -sha256 -in "$CLASSROOM_SSL_CERT" 2>/dev/null || echo 'fingerprint: openssl missing')"
    fi
}

forget() {  # forget NAME: the learner's claim goes; their next login claims NAME anew
    local name=${1:-}
    [[ -n "$name" ]] || die "usage: $0 forget NAME"
    [[ -x "$HUB_VENV/bin/python" ]] || die "no hub here yet ($HUB_VENV): nothing to forget."
    "$HUB_VENV/bin/python" "$ROOT/classroom/workshop_auth.py" forget "$CLASSROOM_STATE/claims" "$name"
}

start() {
    [[ $(id -u) -eq 0 ]] || die "run as root: each learner's engine gets a disk of its own (a loop mount)."
    docker info >/dev/null 2>&1 || die "no Docker Engine answers: run 'make engine' first."
    if alive "$PIDFILE"; then say "already running (pid $(cat "$PIDFILE")): make classroom-stop first."; return 0; fi
    mkdir -p "$CLASSROOM_STATE/progress" "$CLASSROOM_STATE/disks"
    tls  # before anything is built: a refusal comes at once
    hub_venv
    proxy
    images
    # The hub's network: no container joins it (each learner has a network of their own,
    # made with their engine); it gives this machine an address that a server on any
    # learner's network reaches, where the hub listens for its servers.
    docker network inspect "$NET" >/dev/null 2>&1 \
        || docker network create --label "$LABEL" "$NET" >/dev/null
    CLASSROOM_HUB_IP=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$NET")
    export CLASSROOM_HUB_IP CLASSROOM_LEARNER_IMAGE="$LEARNER_IMAGE" CLASSROOM_ENGINE_IMAGE="$ENGINE_IMAGE"
    local file
    file=$(secrets)
    (
        cd "$CLASSROOM_STATE"
        set -a
        # shellcheck source=/dev/null
        . "$file"
        set +a
        export CLASSROOM_HUB_TAG="$CLASSROOM_STATE"  # inherited by all it starts (see stop)
        exec setsid "$HUB_VENV/bin/jupyterhub" -f "$ROOT/classroom/jupyterhub_config.py" \
            >>"$CLASSROOM_STATE/hub.log" 2>&1 </dev/null
    ) &
    echo $! >"$PIDFILE"
    local url="$SCHEME://${CLASSROOM_IP:-127.0.0.1}:$PORT"
    for _ in $(seq 1 120); do
        curl -fsk -o /dev/null "$url/hub/health" 2>/dev/null && break
        kill -0 $! 2>/dev/null || { tail -20 "$CLASSROOM_STATE/hub.log" >&2; die "the hub stopped at start; its log is above."; }
        sleep 0.5
    done
    curl -fsk -o /dev/null "$url/hub/health" || die "the hub did not answer within 60 s: $CLASSROOM_STATE/hub.log"
    say "hub up at $url/ for $CLASSROOM_LEARNERS learners (log: $CLASSROOM_STATE/hub.log)"
    say "learners: a name of their own + the workshop code (CLASSROOM_WORKSHOP_CODE in $file) + a password they choose at their first login (forgotten: $0 forget NAME)"
    say "instructor: '${CLASSROOM_INSTRUCTOR:-instructor}' + CLASSROOM_INSTRUCTOR_PASSWORD (same file); progress: $url/services/progress/"
}

stop() {
    if alive "$PIDFILE"; then
        local pid
        pid=$(cat "$PIDFILE")
        say "stopping the hub (pid $pid): it stops every server, and their engines"
        kill -TERM "$pid"
        for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; }
    fi
    # What the hub started (proxy, services: some in sessions of their own) carries its tag
    # in its environment: end whatever of it is left, by pid, SIGKILL after 10 s.
    python3 "$ROOT/classroom/reaper.py" "$CLASSROOM_STATE"
    rm -f "$CLASSROOM_STATE/jupyterhub.pid" "$PIDFILE" "$CLASSROOM_STATE/jupyterhub-proxy.pid"
    local ids
    ids=$(docker ps -aq --filter "label=$LABEL")
    [[ -z "$ids" ]] || { docker rm -f -v $ids >/dev/null; say "removed $(wc -w <<<"$ids") containers"; }
    local mount
    for mount in "$CLASSROOM_STATE"/disks/*/; do
        [[ -d "$mount" ]] || continue
        if mountpoint -q "$mount"; then umount "$mount"; fi
        rmdir "$mount"
    done
    rm -f "$CLASSROOM_STATE"/disks/*.ext4
    # the progress folders are file systems of their own too; their files keep the records
    for mount in "$CLASSROOM_STATE"/progress/*/; do
        if [[ -d "$mount" ]] && mountpoint -q "$mount"; then umount "$mount"; fi
    done
    ids=$(docker volume ls -q --filter "label=$LABEL")
    [[ -z "$ids" ]] || { docker volume rm $ids >/dev/null; say "removed $(wc -w <<<"$ids") volumes"; }
    ids=$(docker network ls -q --filter "label=$LABEL")  # the hub's and each learner's
    [[ -z "$ids" ]] || { docker network rm $ids >/dev/null; say "removed $(wc -w <<<"$ids") networks"; }
    if [[ "${CLEAN:-0}" == 1 ]]; then
        docker image rm "$LEARNER_IMAGE" "$ENGINE_IMAGE" >/dev/null 2>&1 || true
        rm -rf "$CLASSROOM_STATE"
        say "removed its images and $CLASSROOM_STATE"
    fi
    say "stopped; nothing of classroom '$CLASSROOM_NAME' runs"
}

status() {
    if alive "$PIDFILE"; then say "hub running (pid $(cat "$PIDFILE")) at port $PORT"; else say "hub not running"; fi
    docker ps -a --filter "label=$LABEL" --format 'table {{.Names}}\t{{.Status}}\t{{.Label "org.labkit.classroom.role"}}'
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    tls) tls ;;
    forget) forget "${2:-}" ;;
    *) echo "usage: $0 start|stop|status|tls|forget NAME" >&2; exit 2 ;;
esac
