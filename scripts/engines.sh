#!/usr/bin/env bash
# Docker Engine stand-ins for the engine matrix, built from Debian's own packages (nothing
# is pulled from a container registry):  list | image SPEC | build SPEC | flags SPEC
#
# A SPEC names an engine and how it is started:  VERSION[+containerd][+api1.44]
#   VERSION      20.10 (Debian bookworm), 26.1 (trixie) or 28.5 (forky): the docker.io
#                package of that Debian release, with its containerd and runc
#   +containerd  the containerd image store (Docker 29's and Docker Desktop's default)
#   +api1.44     refuse clients older than API 1.44, exactly as Engine 29 does
#                (DOCKER_MIN_API_VERSION=1.44 in dockerd's environment)
#
# build  Make labkit-engine:VERSION on the current engine unless it exists: mmdebstrap
#        writes a minimal Debian with docker.io and the docker:dind-like entrypoint of
#        images/dind to a tarball, which `docker import` turns into an image (~30 s).
#        Needs mmdebstrap (installed with apt-get when missing, as root) and root, or a
#        user allowed unprivileged user namespaces (mmdebstrap's unshare mode).
# image  The image name of SPEC.       flags  The `docker run` flags that start SPEC.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${VENV:-$ROOT/.venv}/bin"
PACKAGES=docker.io,iptables,openssl,ca-certificates,procps,iproute2

say() { echo "engines: $*"; }

suite_of() {
    case "$1" in
        20.10) echo bookworm ;;
        26.1) echo trixie ;;
        28.5) echo forky ;;
        *) echo "Unknown engine version '$1': use 20.10, 26.1 or 28.5." >&2; return 2 ;;
    esac
}

parse() {  # SPEC -> "VERSION CONTAINERD(0|1) MINAPI(or -)"
    local spec=$1 version containerd=0 minapi=- opt
    version=${spec%%+*}
    suite_of "$version" >/dev/null
    local rest=${spec#"$version"}
    while [[ -n "$rest" ]]; do
        rest=${rest#+}
        opt=${rest%%+*}
        rest=${rest#"$opt"}
        case "$opt" in
            containerd) containerd=1 ;;
            api1.44) minapi=1.44 ;;
            *) echo "Unknown engine option '+$opt' in '$spec': use +containerd or +api1.44." >&2
               return 2 ;;
        esac
    done
    echo "$version $containerd $minapi"
}

image() { local version; read -r version _ _ < <(parse "$1"); echo "labkit-engine:$version"; }

flags() {  # extra `docker run` flags (environment) for SPEC
    local version containerd minapi
    read -r version containerd minapi < <(parse "$1")
    [[ "$containerd" == 1 ]] && printf -- '-e DOCKERD_CONTAINERD_SNAPSHOTTER=1 '
    [[ "$minapi" != - ]] && printf -- '-e DOCKER_MIN_API_VERSION=%s ' "$minapi"
    echo
}

need_mmdebstrap() {
    command -v mmdebstrap >/dev/null 2>&1 && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing mmdebstrap (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # debian-archive-keyring: Debian has it; Ubuntu needs it to check Debian's archive
        apt-get install -y -qq --no-install-recommends mmdebstrap debian-archive-keyring >/dev/null
        return 0
    fi
    echo "Building an engine stand-in needs mmdebstrap: run 'sudo apt-get install mmdebstrap uidmap debian-archive-keyring' once." >&2
    return 1
}

build() {
    local spec=$1 version name suite mirror mode=root t0=$SECONDS
    read -r version _ _ < <(parse "$spec")
    name=$(image "$spec")
    suite=$(suite_of "$version")
    if docker image inspect "$name" >/dev/null 2>&1; then
        say "$name is present"
        return 0
    fi
    need_mmdebstrap
    [[ $(id -u) -eq 0 ]] || mode=unshare
    mirror=$("$BIN/python" -c 'from labkit.offline.debian_rootfs import debian_mirror; print(debian_mirror())')
    say "building $name from Debian $suite's docker.io ($mirror, mmdebstrap --mode=$mode)"
    local log
    log=$(mktemp)
    # A mirror frozen at a date serves Release files past their Valid-Until: accept them.
    if ! mmdebstrap --mode="$mode" --variant=minbase --include="$PACKAGES" \
            --aptopt='Acquire::Check-Valid-Until "false"' \
            --customize-hook="copy-in $ROOT/images/dind/dockerd-entrypoint.sh /usr/local/bin" \
            --customize-hook='chmod 0755 "$1/usr/local/bin/dockerd-entrypoint.sh"' \
            --customize-hook='mkdir -p "$1/certs/client" && chmod 1777 "$1/certs" "$1/certs/client"' \
            "$suite" - "$mirror" 2>"$log" \
        | docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV DOCKER_TLS_CERTDIR=/certs' \
            --change 'VOLUME ["/var/lib/docker"]' \
            --change 'EXPOSE 2375 2376' \
            --change 'ENTRYPOINT ["dockerd-entrypoint.sh"]' \
            --change 'LABEL org.labkit.managed=true org.labkit.standin=true org.labkit.role=engine-matrix' \
            - "$name" >/dev/null; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        docker image rm "$name" >/dev/null 2>&1 || true
        if [[ "$mode" == unshare ]]; then
            echo "mmdebstrap could not build without root here: run 'sudo $0 build $spec' once." >&2
        else
            echo "mmdebstrap failed (log above): check that $mirror is reachable, or set LABKIT_DEBIAN_MIRROR." >&2
        fi
        return 1
    fi
    rm -f "$log"
    say "built $name ($(docker run --rm --entrypoint dockerd "$name" --version)) in $((SECONDS - t0)) s"
}

case "${1:-}" in
    list) echo "20.10 26.1 28.5   options: +containerd +api1.44" ;;
    image) image "$2" ;;
    parse) parse "$2" ;;
    flags) flags "$2" ;;
    build) build "$2" ;;
    *) echo "usage: $0 list | image SPEC | flags SPEC | build SPEC" >&2; exit 2 ;;
esac
