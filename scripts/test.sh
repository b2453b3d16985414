#!/usr/bin/env bash
# The test command: makes its own virtual environment (.venv), installs the project with
# every extra from PyPI, then runs pytest. Extra arguments go to pytest
# (e.g. scripts/test.sh -m "not slow" for the fast part only).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
bash scripts/install_chromium.sh  # the viewer's tests use a real headless browser
exec "$VENV/bin/python" -m pytest "$@"
