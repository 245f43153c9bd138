#!/bin/sh
# Loads the course images into this container's engine, once (the pod's postStart hook);
# a second run in the same container does nothing;
# with --check, succeeds only when that is done and the engine answers (the startupProbe,
# which holds the notebook container back until then). Talks to the engine over its unix
# socket inside this container: the TLS port is for the notebook. A rootless engine's
# socket is in its user's runtime folder, a root engine's in /var/run.
# Run as the container's root (what Kubernetes' exec hooks do) in a rootless engine's
# image, it becomes that engine's user first.
set -eu
if [ "$(id -u)" = 0 ] && [ "${CLASSROOM_ENGINE_ROOTFUL:-0}" != 1 ] && id rootless >/dev/null 2>&1; then
    exec setpriv --reuid=rootless --regid=rootless --init-groups "$0" "$@"
fi
unset DOCKER_TLS_VERIFY DOCKER_CERT_PATH
socket="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/docker.sock"
[ "$(id -u)" != 0 ] || socket=/var/run/docker.sock
export DOCKER_HOST="unix://$socket"
bundle=/opt/labkit/course-images.tar
done_file="$(dirname "$socket")/labkit-course-images-loaded"

if [ "${1:-}" = --check ]; then
    [ -e "$done_file" ] && docker version >/dev/null 2>&1
    exit
fi
[ ! -e "$done_file" ] || exit 0
tries=0
until docker version >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 240 ]; then
        echo "load-course-images: the engine did not answer within 240 s" >&2
        exit 1
    fi
    sleep 1
done
(cd "$(dirname "$bundle")" && sha256sum -c "$(basename "$bundle").sha256" >/dev/null)
docker load -q -i "$bundle"
touch "$done_file"
