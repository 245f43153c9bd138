#!/bin/sh
# Same contract as the official registry:2 entrypoint: a config file (or a registry
# sub-command) as arguments runs the registry; anything else is executed as given.
set -e
case "$1" in
    *.yaml|*.yml) set -- registry serve "$@" ;;
    serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac
exec "$@"
