#!/usr/bin/env bash
# The GPU checks of docs/gpu.md as one script, for a GPU machine lent for minutes: the CUDA tests first (are CUDA
# graphs and Adam's device path right?), then the paper-setting figures, most wanted first (eager, graphs, graphs
# with 1/2/4/8 runs sharing the card, bf16, TF32 off). Every step has its own time limit and the script goes on
# past a step that fails or runs out, so a short lease still brings back what finished. Output: DIR/log.txt
# (everything, as it happens), one JSON per bench step, DIR/tests.txt. The limits add up to 11.5 minutes; give the
# device call less (say 420 s) so a lease keeps time for a second try: what finished by then still comes back.
#
#   bash scripts/gpu-check.sh [DIR]      # DIR defaults to $OUT, else gpu-check/
#
# The machine needs CUDA torch, the worker's Python packages, Node.js and dist/ (see README "On a GPU").
set -uo pipefail
DIR="${1:-${OUT:-gpu-check}}"
mkdir -p "$DIR"
LOG="$DIR/log.txt"
ITERS="${GPU_CHECK_ITERS:-100}"
PY="${DDST_PYTHON:-python3}"   # .gpu/env.sh points it at the machine's CUDA torch
export PYTHONUNBUFFERED=1

say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }

# step NAME LIMIT_S COMMAND...: run with a time limit, stdout to DIR/NAME.json, everything else to the log.
step() {
  local name="$1" limit="$2"; shift 2
  say "$name: $*"
  timeout --kill-after=10 "$limit" "$@" > "$DIR/$name.json" 2>> "$LOG"
  local rc=$?
  say "$name: exit $rc$([ $rc = 124 ] || [ $rc = 137 ] && echo " (ran past ${limit}s)")"
  [ $rc = 0 ] || rm -f "$DIR/$name.json"
}

say "start; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())' 2>&1 | tee -a "$LOG"

say "CUDA tests"
# -v: a run cut short by its limit still shows which tests passed.
(cd python && timeout --kill-after=10 150 "$PY" -m pytest tests/test_cuda.py tests/test_cuda_graphs.py tests/test_adam.py \
  tests/test_checkpoint.py tests/test_data.py::test_cuda_batches_match_cpu -v -rs 2>&1) > "$DIR/tests.txt"
rc=$?
say "CUDA tests: exit $rc$([ $rc = 124 ] || [ $rc = 137 ] && echo " (ran past 150s)") ($(tail -1 "$DIR/tests.txt"))"

BENCH=(node dist/cli.js bench --paper --device cuda --iters "$ITERS" --json)
step eager 90 "${BENCH[@]}" --cuda-graphs off
step graphs 90 "${BENCH[@]}" --cuda-graphs on
step concurrent 180 "${BENCH[@]}" --cuda-graphs on --concurrent 1,2,4,8 --profile-iters 0
step bf16 90 "${BENCH[@]}" --cuda-graphs on --precision bf16
step tf32-off 90 "${BENCH[@]}" --cuda-graphs off --tf32 off
say "done"
