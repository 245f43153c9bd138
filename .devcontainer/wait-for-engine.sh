#!/usr/bin/env bash
# Wait until the dev container's Docker Engine answers `docker info`, at most
# LABKIT_ENGINE_WAIT seconds (default 120), asking every LABKIT_ENGINE_POLL seconds (1).
#
# The docker-in-docker feature starts dockerd in the background when the container starts
# (its entrypoint, /usr/local/share/docker-init.sh, logs to /tmp/dockerd.log), so a command
# run right after the start can find no engine yet; `make lab` would then stop with "No
# Docker Engine answers". Exit 0 once it answers; exit 1 with what to do when it does not.
set -euo pipefail

wait_s="${LABKIT_ENGINE_WAIT:-120}"
poll_s="${LABKIT_ENGINE_POLL:-1}"
log="${LABKIT_DOCKERD_LOG:-/tmp/dockerd.log}"

say() { echo "wait-for-engine: $*"; }

if ! command -v docker >/dev/null 2>&1; then
    say "there is no docker command: this container was built without the docker-in-docker feature of .devcontainer/devcontainer.json. Rebuild it (Codespaces: Rebuild Container)." >&2
    exit 1
fi

start=$SECONDS
waiting=0
until docker info >/dev/null 2>&1; do
    if (( SECONDS - start >= wait_s )); then
        say "no Docker Engine answered within ${wait_s} s." >&2
        if [[ -s "$log" ]]; then
            say "the last lines of $log (the engine's log):" >&2
            tail -n 15 "$log" >&2 || true
        fi
        say "start it again with /usr/local/share/docker-init.sh, or rebuild the container (Codespaces: Rebuild Container); LABKIT_ENGINE_WAIT=300 waits longer." >&2
        exit 1
    fi
    if (( ! waiting )); then
        say "waiting for the Docker Engine (the docker-in-docker feature starts it in the background; at most ${wait_s} s)"
        waiting=1
    fi
    sleep "$poll_s"
done
version=$(docker version --format '{{.Server.Version}}' 2>/dev/null || true)
say "the Docker Engine ${version:+$version }answers (after $((SECONDS - start)) s)."
