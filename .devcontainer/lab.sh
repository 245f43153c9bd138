#!/usr/bin/env bash
# The dev container's postAttachCommand: JupyterLab on the course, in the browser.
#   1. wait for the Docker Engine that the docker-in-docker feature starts in the background;
#   2. if an earlier attach already runs it (a lock held while `make lab` runs), or something
#      listens on LAB_PORT (8888), say so and stop: the Ports tab opens it;
#   3. otherwise `make lab`: it reuses .venv (updateContentCommand built it with `make venv`:
#      nothing is installed twice), prepares the course images and the registry, and serves
#      JupyterLab on notebooks/. .devcontainer/jupyter/ makes it accept the codespace's
#      forwarded address and print that address (with the token) as its link.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export LAB_PORT="${LAB_PORT:-8888}"

.devcontainer/wait-for-engine.sh

# One `make lab` per container: a second attach (another window, a reconnect) while the
# first still prepares the images must not start a second JupyterLab on the next port.
lock="${LABKIT_LAB_LOCK:-.cache/devcontainer-lab.lock}"
mkdir -p "$(dirname "$lock")"
exec 9>"$lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
    echo "lab: \`make lab\` already runs (an earlier attach started it): see its terminal, or open port $LAB_PORT from the Ports tab."
    exit 0
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$LAB_PORT") 2>/dev/null; then
    echo "lab: something already listens on port $LAB_PORT (JupyterLab from an earlier attach?): open it from the Ports tab, or stop it and run \`make lab\`."
    exit 0
fi

export JUPYTER_CONFIG_PATH="$ROOT/.devcontainer/jupyter${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
exec make lab
