#!/usr/bin/env bash
# `make test` / `make test-quick` (--quick): the venv first, then every stage (testbed/test_run.py).
set -euo pipefail; cd "$(dirname "${BASH_SOURCE[0]}")/.."; t0=$(date +%s)
scripts/venv.sh && exec "${VENV:-.venv}/bin/python" -m testbed.test_run --since "$t0" "$@"
