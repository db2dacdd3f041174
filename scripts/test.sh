#!/usr/bin/env bash
# The test command: installs into .venv first if it is not there yet, then runs the fast test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HIVA_VENV:-.venv}
[ -x "$VENV/bin/hiva_core" ] || bash scripts/install.sh
exec "$VENV/bin/python" -m pytest -q "$@"
