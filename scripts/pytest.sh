#!/usr/bin/env bash
# The Python tests, with the interpreter ddst uses (DDST_PYTHON, else the project's .venv).
set -euo pipefail
cd "$(dirname "$0")/../python"
PY="${DDST_PYTHON:-../.venv/bin/python}"
exec "$PY" -m pytest tests -q "$@"
