#!/usr/bin/env bash
# npm test: install what the tests need, type-check src/, test/ and examples/ while dist/ compiles (two cores,
# two compilers), then vitest and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
DDST_SETUP_NO_BUILD=1 bash scripts/setup.sh --tests
npx tsc -p tsconfig.json &
build=$!
check=0
npx tsc -p tsconfig.check.json || check=$?
wait "$build"
[ "$check" = 0 ] || exit "$check"
npx vitest run
bash scripts/pytest.sh
