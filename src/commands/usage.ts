/** Every command's help text: `ddst --help` prints the summaries, `ddst <command> --help` the command's own. */

export const COMMANDS = {
  run: {
    summary: "train one experiment, or continue one with --resume",
    usage: `usage:
  ddst run <experiment.json|.ts> [--out DIR] [--iterations N] [--seed N] [--device auto|cpu|cuda] [--set path=value ...] [--until N]
  ddst run --resume DIR [--iterations N] [--until N]

  --out DIR          the run directory (new or empty; default runs/<name>-<time>)
  --iterations N     train N iterations (with --resume: continue to N, which may extend the run)
  --seed N           the experiment's seed
  --device D         auto (CUDA when available, else CPU), cpu or cuda
  --set path=value   override any field, e.g. --set train.lrG=1e-4 (repeatable; values parsed as JSON)
  --until N          stop after iteration N with a checkpoint; continue later with --resume
  --resume DIR       continue a run from its last checkpoint
SIGINT, SIGTERM and SIGHUP write a checkpoint and exit 130, 143, 129; exit 2 means bad input.`,
  },
  table: {
    summary: "a paper table (methods x densities x seeds); the same command skips finished cells and resumes the rest",
    usage: `usage:
  ddst table <table.json|.ts> [--out DIR] [--jobs N] [--devices cpu|cuda|cuda:0,cuda:1] [--plan] [--plan-iterations N] [--status-every S] [--extend]
  ddst table <table.json|.ts> --out DIR --slurm [--partition P] [--time T] [--account A] [--gpus-per-cell 0|1]
             [--cells-per-gpu K] [--sbatch-arg ARG ...] [--dry-run] [--extend]
  ddst table <table.json|.ts> --out DIR --status

  --out DIR            the table directory (default runs/<name>)
  --jobs N             cells trained at once (default 1)
  --devices LIST       where cells run: auto, cpu, cuda, or cuda:0,cuda:1 (default: the experiments' device)
  --plan               list the cells with FLOPs and a time estimate, training nothing
  --plan-iterations N  iterations timed per method for the estimate (default 5; 0: FLOPs only)
  --status-every S     seconds between status lines (default 30)
  --cells ID,ID        train only these cells (what a Slurm array task runs)
  --local              train here the cells of a directory that was submitted to Slurm
  --extend             the table's iterations changed: cells not past the new count continue to it from their
                       checkpoints (the count is recorded in each cell, so later commands need no flag)
  --slurm              submit the unfinished cells as a Slurm job array (docs/cluster.md)
  --partition, --time, --account   the array's #SBATCH settings
  --gpus-per-cell G    1 (default) or 0 for a CPU partition
  --cells-per-gpu K    cells sharing one array task and its GPU (default 1)
  --sbatch-arg ARG     any other sbatch option, e.g. --sbatch-arg=--mem=32G (repeatable)
  --dry-run            write and print the script, submit nothing
  --status             each cell's state, with its Slurm job and task`,
  },
  inspect: {
    summary: "a model's layers, parameters and MACs at given densities",
    usage: `usage:
  ddst inspect <model> [--density-g X] [--density-d Y] [--init erk|uniform] [--json]

  models: mlp2d, sngan32, sngan48, dcgan28, dcgan32`,
  },
  flops: {
    summary: "training FLOPs of a plan whose densities are known ahead (dense, static, SDST)",
    usage: `usage:
  ddst flops <experiment> [--json] [--set path=value ...]`,
  },
  bench: {
    summary: "masked vs dense training iteration, one global prune-and-grow of G; --paper: a paper-setting iteration",
    usage: `usage:
  ddst bench [--model sngan32] [--batch 64] [--iters 3] [--device cpu|cuda] [--json]
  ddst bench --paper [--device cpu|cuda] [--iters N] [--warmup N] [--profile-iters N] [--concurrent 1,2,4,8]
                     [--cuda-graphs on|off] [--channels-last on|off] [--compile on|off] [--tf32 on|off]
                     [--precision fp32|bf16] [--masking on|off] [--json]

  --paper          SNGAN-32, D batch 64, G batch 128, n_critic 5, probe every 10, ERK at 0.1: ms per
                   steady-state iteration, and per iteration under the profiler: aten ops, launches, kernels,
                   kernel time, host syncs, the GPU's busy fraction (docs/gpu.md)
  --concurrent     that many runs at once on the device: iterations per second in all
  --masking off    leave out the masked/dense figures (they run at the default numerics, not at the
                   --precision, --tf32, --cuda-graphs, --channels-last and --compile given)
  --iters          timed iterations (--paper: 200 on cuda, 3 on cpu)`,
  },
  ls: {
    summary: "the runs and tables under a directory, with status and final metric",
    usage: `usage:
  ddst ls [DIR]        (default runs/)

  status: finished, interrupted (continue with --resume), failed, running (pid), unstarted`,
  },
  show: {
    summary: "one run's configuration, status and summary, or a table's results",
    usage: `usage:
  ddst show RUN_DIR|TABLE_DIR`,
  },
  report: {
    summary: "an HTML report of a run or a table: BR with its band, densities, losses, metrics, samples",
    usage: `usage:
  ddst report RUN_DIR|TABLE_DIR [--out FILE.html] [--png]

  --out FILE.html   where to write (default DIR/report.html); the file is self-contained
  --png             also write each plot as a PNG beside the HTML`,
  },
  doctor: {
    summary: "which Python ddst would use, and why other candidates were rejected",
    usage: `usage:
  ddst doctor`,
  },
} as const;

export type CommandName = keyof typeof COMMANDS;

export const USAGE =
  "usage: ddst <command> [options]    (ddst <command> --help for its options; ddst --version)\n\n" +
  Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`)
    .join("\n");

export const wantsHelp = (argv: readonly string[]) => argv.includes("--help") || argv.includes("-h");
