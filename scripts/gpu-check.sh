#!/usr/bin/env bash
# The GPU checks of docs/gpu.md as one script, for a GPU machine lent for minutes: the CUDA tests first (are CUDA
# graphs, channels-last, compiled networks and Adam's device path right?), then the paper-setting figures.
# Every step has its own time limit and the script goes on past a step that fails or runs out, so a short
# lease still brings back what finished. Output: DIR/log.txt (everything, as it happens), one JSON per bench
# step, DIR/tests.txt and DIR/compile-tests.txt.
#
#   bash scripts/gpu-check.sh [DIR] [STEP ...]   # DIR defaults to $OUT, else gpu-check/
#
# STEP (default: all, in this order), each a `ddst bench --paper --device cuda` with its settings spelled out,
# so a step means the same whatever the defaults are:
#   tests          the CUDA tests but train.compile's (120 s)
#   eager          no graphs, NCHW: the baseline, and the only step with the masked/dense figures (those
#                  always run eager steps in NCHW) (100 s)
#   graphs         CUDA graphs, NCHW (60 s)
#   channels-last  CUDA graphs, channels-last: the defaults (60 s)
#   compile        the defaults and train.compile (240 s: compilation is in the warm-up)
#   compile-tests  train.compile's CUDA tests (240 s: each compiles the networks)
#   concurrent     the defaults, 1, 2, 4 and 8 runs sharing the card (50 iterations each; 120 s)
#   bf16           the defaults in bf16 (60 s)
#   tf32-off       the defaults without TF32 (60 s)
# The limits add up to 17.7 minutes (a step past its limit gets 10 s more to stop): more than one device call
# (10 minutes), so name the steps a call is for, e.g. `tests channels-last compile compile-tests`.
# The machine needs CUDA torch, the worker's Python packages, Node.js and dist/ (see README "On a GPU").
set -uo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-${OUT:-gpu-check}}"
shift || true
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(tests eager graphs channels-last compile compile-tests concurrent bf16 tf32-off)
mkdir -p "$DIR"
LOG="$DIR/log.txt"
ITERS="${GPU_CHECK_ITERS:-100}"
PY="${DDST_PYTHON:-python3}"   # .gpu/env.sh points it at the machine's CUDA torch
export PYTHONUNBUFFERED=1

say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }
overran() { [ "$1" = 124 ] || [ "$1" = 137 ] && echo " (ran past ${2}s)"; }

# bench NAME LIMIT_S ARGS...: `ddst bench --paper --device cuda --json ARGS` with a time limit, its JSON to
# DIR/NAME.json, everything else to the log.
bench() {
  local name="$1" limit="$2"; shift 2
  local cmd=(node dist/cli.js bench --paper --device cuda --iters "$ITERS" --profile-iters 10 --json "$@")
  say "$name: ${cmd[*]}"
  timeout --kill-after=10 "$limit" "${cmd[@]}" > "$DIR/$name.json" 2>> "$LOG" &
  local pid=$!
  wait "$pid"
  local rc=$?
  # timeout leads its own process group, the workers included. A step cut off by its limit may leave workers
  # behind (they ignore SIGTERM and outlive a killed orchestrator until their next parent check); they would
  # share the GPU with the next step.
  kill -KILL -- "-$pid" 2> /dev/null
  say "$name: exit $rc$(overran $rc "$limit")"
  [ $rc = 0 ] || rm -f "$DIR/$name.json"
}

# tests NAME LIMIT_S PYTEST_ARGS...: pytest in python/ under a time limit, its output to DIR/NAME.txt.
tests() {
  local name="$1" limit="$2"; shift 2
  say "$name: pytest $*"
  # -v: a run cut short by its limit still shows which tests passed.
  (cd python && timeout --kill-after=10 "$limit" "$PY" -m pytest "$@" -v -rs 2>&1) > "$DIR/$name.txt"
  local rc=$?
  say "$name: exit $rc$(overran $rc "$limit") ($(tail -1 "$DIR/$name.txt"))"
}
CUDA_TESTS=(tests/test_cuda.py tests/test_cuda_graphs.py tests/test_adam.py tests/test_checkpoint.py
  tests/test_data.py::test_cuda_batches_match_cpu tests/test_metrics.py::test_metrics_on_cuda)

say "start ${STEPS[*]}; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())' 2>&1 | tee -a "$LOG"

for s in "${STEPS[@]}"; do
  case "$s" in
    tests) tests tests 120 "${CUDA_TESTS[@]}" -k "not compiled" ;;
    compile-tests) tests compile-tests 240 tests/test_cuda_graphs.py -k compiled ;;
    eager) bench eager 100 --cuda-graphs off --channels-last off --compile off ;;
    graphs) bench graphs 60 --cuda-graphs on --channels-last off --compile off --masking off ;;
    channels-last) bench channels-last 60 --cuda-graphs on --channels-last on --compile off --masking off ;;
    compile) bench compile 240 --cuda-graphs on --channels-last on --compile on --masking off ;;
    concurrent) bench concurrent 120 --cuda-graphs on --channels-last on --compile off --concurrent 1,2,4,8 --iters 50 --profile-iters 0 --masking off ;;
    bf16) bench bf16 60 --cuda-graphs on --channels-last on --compile off --precision bf16 --masking off ;;
    tf32-off) bench tf32-off 60 --cuda-graphs on --channels-last on --compile off --tf32 off --masking off ;;
    *) say "unknown step '$s' (tests eager graphs channels-last compile compile-tests concurrent bf16 tf32-off)"; exit 2 ;;
  esac
done
say "done"
