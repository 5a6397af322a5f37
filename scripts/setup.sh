#!/usr/bin/env bash
# Installs whatever this checkout lacks, quickly when everything is present:
#   - npm packages (npm ci, from package-lock.json)
#   - the Python environment .venv with torch, pyzmq, numpy, jsonschema, pytest (unless DDST_PYTHON is set)
#   - the compiled TypeScript in dist/
#   - with --tests: the Debian packages only the tests need (scripts/test-deps.sh: chromium, a one-node Slurm)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

PY_CHECK='import torch, zmq, numpy, jsonschema, pytest'
if [ -n "${DDST_PYTHON:-}" ]; then
  if ! "$DDST_PYTHON" -c "$PY_CHECK" 2>/dev/null; then
    say "DDST_PYTHON=$DDST_PYTHON cannot import torch, zmq, numpy, jsonschema and pytest."
    say "Install them there (pip install -r python/requirements.txt) or unset DDST_PYTHON to use the project's .venv."
    exit 1
  fi
else
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "$PY_CHECK" 2>/dev/null; then
    BASE_PY="${DDST_BASE_PYTHON:-python3}"
    say "creating .venv with $BASE_PY ($("$BASE_PY" --version 2>&1))"
    "$BASE_PY" -m venv .venv
    # The pinned torch first: where a local CPU wheel of it exists (this project's build machines) pip takes
    # it from disk; the project's own requirement stays a range (torch>=2.1) and is then already satisfied.
    .venv/bin/python -m pip install --quiet "${DDST_TORCH_SPEC:-torch==2.13.0}"
    .venv/bin/python -m pip install --quiet -r python/requirements.txt
  fi
fi

if [ "${1:-}" = "--tests" ]; then
  bash scripts/test-deps.sh
fi

# scripts/test.sh compiles dist/ itself, beside the type check.
if [ -z "${DDST_SETUP_NO_BUILD:-}" ] && { [ ! -f dist/cli.js ] || [ -n "$(find src -name '*.ts' -newer dist/cli.js | head -n 1)" ] || [ tsconfig.json -nt dist/cli.js ]; }; then
  say "compiling TypeScript"
  npx tsc -p tsconfig.json
fi
