#!/usr/bin/env bash
# A throwaway Docker-in-Docker engine for the tests: start | stop | status.
#
# start  Run a container from docker:dind on the current engine (TLS on :2376, client
#        certificates bind-mounted from .cache/dind/<name>/certs), wait until it answers,
#        load the course images into it, and write .cache/dind/env:
#            DOCKER_HOST=tcp://<container IP>:2376
#            DOCKER_TLS_VERIFY=1
#            DOCKER_CERT_PATH=<repo>/.cache/dind/<name>/certs/client
#            LABKIT_BIND_IP=0.0.0.0
#        (KEY=VALUE lines: `set -a; . .cache/dind/env; set +a`, or `docker --env-file`).
#        The container's own IP is used, not a published port: ports that containers
#        publish inside DinD open on that address, and labkit builds URLs from DOCKER_HOST.
#        LABKIT_BIND_IP=0.0.0.0 is the explicit opt-in labkit needs for that: without it a
#        remote engine's ports listen on its 127.0.0.1 only, out of reach from here (the
#        DinD engine is a remote one; its network is this machine's engine's bridge).
#        Given LABKIT_DIND_HOST, e.g. a CI service, that engine is used: nothing is started,
#        the images are still loaded. LABKIT_DIND_CERT_PATH names its client certificates
#        (ca.pem cert.pem key.pem); the env file then says DOCKER_TLS_VERIFY=1 and
#        DOCKER_CERT_PATH: TLS is always verified. Without them only a loopback address
#        (tcp://127.0.0.1:2375) is accepted: plain TCP over a network is refused (registry
#        passwords go to the engine with `docker login`).
#        They are the DinD engine's own variables, so that the job's DOCKER_* ones stay
#        those of the engine the job itself uses (TLS settings never reach the whole job).
# stop   Remove the container we started (and its volumes); nothing else.
#
# LABKIT_ENGINE=SPEC (e.g. 28.5+containerd+api1.44, see scripts/engines.sh) starts that
# engine stand-in instead of docker:dind, building it first when missing; start then
# checks that the engine is the one asked for (version, image store, minimum API).
#
# LABKIT_DIND_FLAGS replaces the run flags below (e.g. --privileged where the host allows
# every capability; this default works where CAP_SYS_RESOURCE is not grantable).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="${LABKIT_DIND_STATE:-$ROOT/.cache/dind}"  # one DinD engine per state directory
ENVFILE="$STATE/env"
NAMEFILE="$STATE/container"
ENGINE="${LABKIT_ENGINE:-}"
ENGINE_FLAGS=""
if [[ -n "$ENGINE" ]]; then
    IMAGE=$("$ROOT/scripts/engines.sh" image "$ENGINE")
    ENGINE_FLAGS=$("$ROOT/scripts/engines.sh" flags "$ENGINE")
else
    IMAGE="${LABKIT_DIND_IMAGE:-docker:dind}"
fi
COURSE_IMAGES=(python:3.11-slim-bookworm registry:2 docker:dind)
# systempaths=unconfined: Docker 28+ inside a container must write /proc/sys to start its
# containers ("failed to disable IPv6 on container's interface" otherwise).
DEFAULT_FLAGS="--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
--security-opt apparmor=unconfined --security-opt systempaths=unconfined \
-v /sys/fs/cgroup:/sys/fs/cgroup:rw"

say() { echo "dind: $*"; }

loopback() {  # loopback URL: true for tcp://localhost, 127.x.x.x or [::1] (and sockets)
    local host=${1#*://}
    [[ "$1" != tcp://* ]] && return 0
    host=${host%%/*}
    host=${host%:*}
    [[ "$host" == localhost || "$host" == 127.* || "$host" == "[::1]" ]]
}

inner() {  # run the docker CLI against the DinD engine named in the env file
    (
        unset DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_TLS  # only the env file's settings
        set -a
        # shellcheck source=/dev/null
        . "$ENVFILE"
        set +a
        docker "$@"
    )
}

wait_answers() {
    local name=${1:-}
    for _ in $(seq 1 120); do
        inner version >/dev/null 2>&1 && return 0
        if [[ -n "$name" && "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]]; then
            docker logs --tail 30 "$name" >&2 || true
            echo "The DinD container $name stopped at start; its log is above." >&2
            return 1
        fi
        sleep 0.5
    done
    [[ -n "$name" ]] && docker logs --tail 30 "$name" >&2
    echo "The DinD engine did not answer within 60 s." >&2
    return 1
}

load_images() {
    local t0=$SECONDS missing=()
    for img in "${COURSE_IMAGES[@]}"; do
        inner image inspect "$img" >/dev/null 2>&1 || missing+=("$img")
    done
    [[ ${#missing[@]} -eq 0 ]] && { say "course images already present"; return 0; }
    for img in "${missing[@]}"; do
        if ! docker image inspect "$img" >/dev/null 2>&1; then
            echo "$img is not on the host engine: run 'make images' (labkit prepare) first." >&2
            return 1
        fi
    done
    docker save "${missing[@]}" | inner load -q >/dev/null
    say "loaded ${missing[*]} in $((SECONDS - t0)) s"
}

check_engine() {  # the engine that answers is the one LABKIT_ENGINE asked for
    local version containerd minapi got store
    read -r version containerd minapi < <("$ROOT/scripts/engines.sh" parse "$ENGINE")
    got=$(inner version --format '{{.Server.Version}} {{.Server.MinAPIVersion}}')
    store=$(inner info --format '{{range .DriverStatus}}{{index . 1}} {{end}}')
    say "engine $ENGINE: Docker ${got% *}, minimum API ${got#* }, driver status: $store"
    if [[ "${got%% *}" != "$version".* ]]; then
        echo "Asked for Docker $version, the stand-in runs ${got%% *}." >&2; return 1
    fi
    if [[ "$containerd" == 1 && "$store" != *io.containerd.snapshotter.v1* ]] \
        || [[ "$containerd" == 0 && "$store" == *io.containerd.snapshotter.v1* ]]; then
        echo "The engine's image store is not the one asked for ($ENGINE)." >&2; return 1
    fi
    if [[ "$minapi" != - && "${got#* }" != "$minapi" ]]; then
        echo "The engine's minimum API is ${got#* }, not $minapi." >&2; return 1
    fi
}

start() {
    mkdir -p "$STATE"
    if [[ -s "$NAMEFILE" ]] && docker inspect "$(cat "$NAMEFILE")" >/dev/null 2>&1; then
        say "a DinD container we started ($(cat "$NAMEFILE")) exists; stopping it first."
        stop
    fi
    local t0=$SECONDS
    if [[ -n "${LABKIT_DIND_HOST:-}" ]]; then
        if [[ -z "${LABKIT_DIND_CERT_PATH:-}" ]] && ! loopback "$LABKIT_DIND_HOST"; then
            echo "LABKIT_DIND_HOST=$LABKIT_DIND_HOST is reached over the network without TLS: give its client certificates as LABKIT_DIND_CERT_PATH and use its TLS port (docker:dind with DOCKER_TLS_CERTDIR=/certs: tcp://HOST:2376, certificates in /certs/client)." >&2
            exit 1
        fi
        {
            echo "DOCKER_HOST=$LABKIT_DIND_HOST"
            if [[ -n "${LABKIT_DIND_CERT_PATH:-}" ]]; then
                echo "DOCKER_TLS_VERIFY=1"
                echo "DOCKER_CERT_PATH=$LABKIT_DIND_CERT_PATH"
            fi
            loopback "$LABKIT_DIND_HOST" || echo "LABKIT_BIND_IP=0.0.0.0"
        } >"$ENVFILE"
        say "using the given DinD engine $LABKIT_DIND_HOST${LABKIT_DIND_CERT_PATH:+ (TLS, certificates in $LABKIT_DIND_CERT_PATH)}"
        wait_answers
        load_images
        return 0
    fi
    if [[ -n "$ENGINE" ]]; then
        "$ROOT/scripts/engines.sh" build "$ENGINE"
    elif ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
        echo "$IMAGE is not on the engine: run 'make images' (labkit prepare) first." >&2
        exit 1
    fi
    local name
    name="labkit-dind-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
    local certs="$STATE/$name/certs"
    mkdir -p "$certs"
    # shellcheck disable=SC2086  # the flags are a list
    docker run -d --name "$name" \
        --label org.labkit.managed=true --label org.labkit.role=dind-engine \
        ${LABKIT_DIND_FLAGS:-$DEFAULT_FLAGS} $ENGINE_FLAGS \
        -e DOCKER_TLS_CERTDIR=/certs -v "$certs:/certs" \
        "$IMAGE" >/dev/null
    echo "$name" >"$NAMEFILE"
    local ip=""
    for _ in $(seq 1 20); do
        ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$name")
        ip=${ip%% *}
        [[ -n "$ip" ]] && break
        sleep 0.25
    done
    if [[ -z "$ip" ]]; then
        echo "The DinD container $name got no IP address on the engine's network." >&2
        exit 1
    fi
    {
        echo "DOCKER_HOST=tcp://$ip:2376"
        echo "DOCKER_TLS_VERIFY=1"
        echo "DOCKER_CERT_PATH=$certs/client"
        echo "LABKIT_BIND_IP=0.0.0.0"  # the opt-in: its ports must be reached from here
        [[ -z "$ENGINE" ]] || echo "LABKIT_ENGINE=$ENGINE"
    } >"$ENVFILE"
    for _ in $(seq 1 120); do  # the certificates appear before dockerd listens
        [[ -s "$certs/client/key.pem" ]] && break
        sleep 0.25
    done
    wait_answers "$name"
    say "started $name at tcp://$ip:2376 (TLS) in $((SECONDS - t0)) s; env: $ENVFILE"
    [[ -z "$ENGINE" ]] || check_engine
    load_images
}

stop() {
    if [[ ! -s "$NAMEFILE" ]]; then
        say "no DinD container started by us; nothing to stop."
        rm -f "$ENVFILE"
        return 0
    fi
    local name
    name=$(cat "$NAMEFILE")
    if docker inspect "$name" >/dev/null 2>&1; then
        docker rm -f -v "$name" >/dev/null
        say "removed $name"
    fi
    rm -rf "${STATE:?}/$name"
    rm -f "$NAMEFILE" "$ENVFILE"
}

status() {
    if [[ ! -s "$ENVFILE" ]]; then say "not started."; return 1; fi
    cat "$ENVFILE"
    inner version --format 'dind: answers: {{.Server.Version}} (API {{.Server.APIVersion}})'
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
