#!/usr/bin/env bash
# The one command CI services run (`make ci`): make this job's environment what `make test`
# expects, then run it (or COMMAND, e.g. `scripts/ci.sh env` to see that environment).
#   scripts/ci.sh [COMMAND...]          default: scripts/test.sh
# Tested with each service's real environment in tests/unit/test_launch_ci.py.
#
# Everywhere   A DinD engine given to the job is named by LABKIT_DIND_HOST, and its client
#              certificates by LABKIT_DIND_CERT_PATH (waited for: a service writes them as
#              it starts). python -m testbed.dind turns them into DOCKER_HOST & co. for the steps
#              that talk to that engine only. DOCKER_TLS_VERIFY / DOCKER_CERT_PATH without
#              DOCKER_HOST are refused: the docker CLI and docker-py would then look for the
#              engine of every step at tcp://localhost:2376.
# GitHub       (GITHUB_ACTIONS=true) The runner is a non-root user with password-less sudo
#              and docker-ce running. The run goes on as root through sudo (apt installs
#              Chromium and mmdebstrap; engine stand-ins need root), with this PATH (the
#              Python of actions/setup-python) and pip's cache where setup-python saves it;
#              that cache and artifacts/ are handed back to the runner's user at the end.
# GitLab       (GITLAB_CI=true; gitlab-ci-local says false, and its jobs get the same
#              handling) The job container is root and has no engine of its own: the
#              dind service (LABKIT_DIND_HOST, e.g. tcp://docker:2376) is the engine of every
#              step, over verified TLS only (LABKIT_DIND_CERT_PATH), its published ports on
#              the service network (LABKIT_BIND_IP=0.0.0.0, the explicit opt-in). Its docker CLI must speak API 1.44 (Engine 29's floor): when the image
#              has no CLI, Debian's docker-cli is installed (trixie and later: 26.1, API 1.45);
#              bookworm's docker.io (20.10, API 1.41) is refused by Engine 29, so never used.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CERT_WAIT=${LABKIT_CI_CERT_WAIT:-60}   # seconds to wait for the DinD client certificates

say() { echo "ci: $*"; }
fail() { echo "ci: $*" >&2; exit 1; }

service() {
    if [[ "${GITHUB_ACTIONS:-}" == true ]]; then echo github
    elif [[ -n "${GITLAB_CI:-}" ]]; then echo gitlab
    elif [[ -n "${CI:-}" ]]; then echo ci
    else echo local
    fi
}

refuse_tls_without_host() {
    [[ -z "${DOCKER_HOST:-}" ]] || return 0
    local set=() var
    for var in DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_TLS; do
        [[ -z "${!var:-}" ]] || set+=("$var")
    done
    [[ ${#set[@]} -eq 0 ]] && return 0
    fail "${set[*]} set without DOCKER_HOST makes every docker client look for the engine at tcp://localhost:2376: give a DinD engine's certificates as LABKIT_DIND_CERT_PATH (with LABKIT_DIND_HOST) instead, or set DOCKER_HOST too."
}

as_root_on_github() {  # re-run this script as root through sudo, keeping PATH and pip's cache
    [[ $(id -u) -eq 0 ]] && return 0
    if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
        say "not root and no password-less sudo: running as $(id -un 2>/dev/null || id -u)."
        return 0
    fi
    export PIP_CACHE_DIR="${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}"
    LABKIT_CI_OWNER="$(id -u):$(id -g)"
    export LABKIT_CI_OWNER
    say "the runner's user is not root: going on as root through sudo."
    exec sudo -E -H env "PATH=$PATH" "$ROOT/scripts/ci.sh" "$@"
}

give_back() {  # what root wrote that the runner's user reads after us (cache save, upload)
    local rc=$? path
    if [[ -n "${LABKIT_CI_OWNER:-}" && $(id -u) -eq 0 ]]; then
        for path in "${PIP_CACHE_DIR:-}" artifacts; do
            if [[ -n "$path" && -e "$path" ]]; then chown -R "$LABKIT_CI_OWNER" "$path" || true; fi
        done
    fi
    exit "$rc"
}

docker_cli_for_gitlab() {
    command -v docker >/dev/null 2>&1 && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        fail "No docker CLI in this job image: use a Debian trixie (or later) image, as root, or one that has a docker CLI of API 1.44 or newer."
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if ! apt-cache show docker-cli >/dev/null 2>&1; then
        fail "This job image's Debian has no docker-cli package (bookworm's docker.io is 20.10, API 1.41, which Engine 29 refuses): use a trixie-based image such as python:3.11-trixie."
    fi
    say "installing Debian's docker-cli (apt-get)"
    apt-get install -y -qq --no-install-recommends docker-cli >/dev/null
}

wait_for_certs() {
    local dir=${LABKIT_DIND_CERT_PATH:-} t0=$SECONDS f missing
    [[ -n "$dir" ]] || return 0
    while :; do
        missing=()
        for f in ca.pem cert.pem key.pem; do [[ -s "$dir/$f" ]] || missing+=("$f"); done
        [[ ${#missing[@]} -eq 0 ]] && return 0
        if (( SECONDS - t0 >= CERT_WAIT )); then
            fail "The DinD engine's client certificates (${missing[*]}) did not appear in LABKIT_DIND_CERT_PATH=$dir within $CERT_WAIT s: share that directory between the dind service and the job."
        fi
        sleep 1
    done
}

engine_is_the_service() {  # GitLab: the dind service is the only engine there is
    [[ -n "${LABKIT_DIND_HOST:-}" ]] \
        || fail "GitLab: LABKIT_DIND_HOST is not set: name the dind service, e.g. tcp://docker:2376 for a service with alias docker."
    [[ -n "${LABKIT_DIND_CERT_PATH:-}" ]] \
        || fail "GitLab: LABKIT_DIND_CERT_PATH is not set: the dind service must speak verified TLS (DOCKER_TLS_CERTDIR=/certs on the service, LABKIT_DIND_HOST=tcp://docker:2376, LABKIT_DIND_CERT_PATH=/certs/client); plain TCP would carry registry passwords in clear."
    export DOCKER_HOST="$LABKIT_DIND_HOST"
    export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$LABKIT_DIND_CERT_PATH"
    # The opt-in: the service's published ports (apps, the registry's HTTPS API) must be
    # reached from the job over the service network; labkit binds 127.0.0.1 without it.
    export LABKIT_BIND_IP=0.0.0.0
    say "the job has no engine of its own: the dind service $DOCKER_HOST is the engine of every step (verified TLS; published ports on its network: LABKIT_BIND_IP=0.0.0.0)."
}

SERVICE=$(service)
say "service: $SERVICE, user $(id -u)"
refuse_tls_without_host
[[ "$SERVICE" == github ]] && as_root_on_github "$@"
trap give_back EXIT
wait_for_certs
if [[ "$SERVICE" == gitlab ]]; then
    engine_is_the_service
    docker_cli_for_gitlab
fi
[[ $# -gt 0 ]] || set -- scripts/test.sh
"$@"
