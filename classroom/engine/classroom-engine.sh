#!/bin/sh
# Entrypoint of a learner's engine: the docker:dind stand-in's entrypoint (TLS certificates
# in /certs, dockerd on :2376), with a rootless dockerd (see ./dockerd).
# - Started as root with no capability but SETUID and SETGID: it makes /dev/net/tun usable
#   by uid 1000 (the container's own copy of the device node: the owner changes its mode
#   without any capability), then becomes uid 1000 for good.
# - CLASSROOM_ENGINE_ROOTFUL=1 (a runtime that isolates by itself, e.g. Sysbox): the
#   stand-in's own entrypoint, dockerd as the container's root.
set -eu
if [ "${CLASSROOM_ENGINE_ROOTFUL:-0}" = 1 ]; then
    export DOCKER_HOST=unix:///var/run/docker.sock HOME=/root
    exec dockerd-entrypoint.sh "$@"
fi
if [ "$(id -u)" = 0 ]; then
    if [ -c /dev/net/tun ]; then chmod 0666 /dev/net/tun; fi
    exec setpriv --reuid=rootless --regid=rootless --init-groups --inh-caps=-all "$0" "$@"
fi
PATH="/usr/local/lib/classroom-engine:$PATH" exec dockerd-entrypoint.sh "$@"
