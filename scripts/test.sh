#!/usr/bin/env bash
# The test command: installs into .venv first if it is not there yet (or lacks the dev tools), then runs the fast test
# suite in $HIVA_TEST_WORKERS processes (default 2; 0 runs it in this one), each torch on one thread unless
# OMP_NUM_THREADS says otherwise: on 2 cores about 5 minutes instead of 9 one test at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HIVA_VENV:-.venv}
{ [ -x "$VENV/bin/hiva_core" ] && "$VENV/bin/python" -c "import xdist" 2>/dev/null; } || bash scripts/install.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$VENV/bin/python" -m pytest -q -n "${HIVA_TEST_WORKERS:-2}" "$@"
