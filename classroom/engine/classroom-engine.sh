#!/bin/sh
# Entrypoint of a learner's engine. With the host's cgroup v1 tree mounted (what DinD needs
# here), an inner dockerd would put its containers at /docker/<id> of the HOST's tree, out of
# reach of this container's --memory and --cpus. --cgroup-parent puts them under this
# container's own cgroup instead (read from /proc/self/cgroup), where the limits apply.
# On cgroup v2 (a cgroup namespace) the inner engine nests by itself: nothing is added.
set -eu
parent=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
if [ -n "$parent" ] && [ "$parent" != / ]; then
    set -- --cgroup-parent="$parent/learner" "$@"
fi
exec dockerd-entrypoint.sh "$@"
