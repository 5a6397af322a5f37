import { InputError } from "../input-error.js";
import type { SlurmOptions } from "./options.js";
import { gpuRequest, signalLead } from "./options.js";

/** The job-array script for a table's pending cells: one array task per group of cells sharing a GPU (or the
 * CPUs of a task), each running `ddst table --cells` on the shared table directory, which starts or resumes
 * every cell of the group from its checkpoint. Pure: the caller writes and submits it. */

export interface ArrayJob {
  name: string;
  /** Absolute paths: the nodes see the same shared file system. */
  tableFile: string;
  out: string;
  node: string;
  cli: string;
  python: string;
  /** Cell ids per array task. */
  tasks: string[][];
  /** The environment variables the cells' paths name, as the submitting shell has them. */
  env: Record<string, string>;
  slurm: SlurmOptions;
}

export class SbatchPathError extends InputError {}

/** Consecutive groups of `size`: cells of one seed row share a task, so a partly done array still fills rows. */
export function groupCells(ids: readonly string[], size: number): string[][] {
  const groups: string[][] = [];
  for (let i = 0; i < ids.length; i += size) groups.push(ids.slice(i, i + size));
  return groups;
}

/** Single-quoted for bash. */
export const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** #SBATCH lines are not shell: a path there cannot be quoted, and % starts a file name pattern. */
export function checkSbatchPath(out: string): void {
  if (/[\s%]/.test(out)) throw new SbatchPathError(`the table directory ${out} holds a space or a %, which an #SBATCH --output line cannot carry; use a path without them`);
}

export function sbatchScript(job: ArrayJob): string {
  const { slurm, tasks } = job;
  if (tasks.length === 0) throw new Error("a job array needs at least one task");
  const lead = signalLead(slurm.time);
  const device = slurm.gpusPerCell ? "cuda" : "cpu";
  const perTask = Math.max(...tasks.map((t) => t.length));
  checkSbatchPath(job.out);
  // A CPU task's cells each train on a core of their own, unless the user says otherwise (--cpus-per-task=4, -c 4, -c4).
  const cpus = !slurm.gpusPerCell && !slurm.sbatchArgs.some((a) => /^(--cpus-per-task\b|-c)/.test(a)) ? [`--cpus-per-task=${perTask}`] : [];
  const directives = [
    `--job-name=ddst-${job.name}`,
    `--array=0-${tasks.length - 1}`,
    "--ntasks=1",
    // The task's one GPU, unless the user names it (a type: --gres=gpu:a100:1); options.ts checks it is one.
    ...(slurm.gpusPerCell ? (slurm.sbatchArgs.some((a) => gpuRequest(a) !== null) ? [] : ["--gres=gpu:1"]) : cpus),
    // A requeued task (preemption, node failure, or its own time-limit requeue) resumes its cells.
    "--requeue",
    // Only this shell gets USR1: it asks ddst to checkpoint, then requeues the task.
    `--signal=B:USR1@${lead}`,
    `--output=${job.out}/slurm/logs/%A_%a.out`,
    "--open-mode=append",
    ...(slurm.partition ? [`--partition=${slurm.partition}`] : []),
    ...(slurm.account ? [`--account=${slurm.account}`] : []),
    ...(slurm.time ? [`--time=${slurm.time}`] : []),
    ...slurm.sbatchArgs,
  ];
  const cells = tasks.map((t, i) => `  ${shellQuote(t.join(","))} # task ${i}`);
  return `#!/bin/bash
# ddst table ${job.name}: ${count(tasks.flat().length, "cell")} in ${count(tasks.length, "array task")} (up to ${perTask} per ${slurm.gpusPerCell ? "GPU" : "task"}), written by ddst.
# Each task runs \`ddst table --cells\` on the shared table directory: it starts or resumes each of its cells
# from the cell's checkpoint, so a requeued or re-submitted task continues where its cells stopped.
${directives.map((d) => `#SBATCH ${d}`).join("\n")}
set -u

# The interpreters as the submitting machine found them; the nodes must see the same paths.
DDST_NODE=${shellQuote(job.node)}
DDST_CLI=${shellQuote(job.cli)}
export DDST_PYTHON=${shellQuote(job.python)}
${Object.keys(job.env).length ? `# The variables the cells' paths name, as at submission, where the task's environment lacks them (a site may pass\n# none on); a value the node sets itself (a prolog's per-job path) is kept.\n${Object.entries(job.env).map(([k, v]) => `[ -n "\${${k}:-}" ] || ${k}=${shellQuote(v)}; export ${k}`).join("\n")}\n` : ""}TABLE_FILE=${shellQuote(job.tableFile)}
TABLE_DIR=${shellQuote(job.out)}
CELLS=(
${cells.join("\n")}
)
cells="\${CELLS[$SLURM_ARRAY_TASK_ID]}"
echo "ddst: array task \${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID} on $(hostname), start $((\${SLURM_RESTART_COUNT:-0} + 1)), $(date -u +%FT%TZ): $cells"

# scancel, preemption and requeue send TERM to every process of the task: ddst checkpoints its cells and exits.
# This shell only notes it and waits, because the task ends (and Slurm kills what is left) when the shell does.
# USR1 comes ${lead} s before the time limit to this shell alone: ddst is asked to checkpoint (once: a second TERM
# would stop it without one), then the task requeues itself and continues in a new allocation.
pid=
signalled=0
term_seen=0
near_limit=0
trap 'signalled=1; term_seen=1' TERM
trap 'signalled=1; if [ "$term_seen$near_limit" = 00 ] && [ -n "$pid" ]; then near_limit=1; kill -TERM "$pid" 2>/dev/null; fi' USR1
"$DDST_NODE" "$DDST_CLI" table "$TABLE_FILE" --out "$TABLE_DIR" --cells "$cells" --devices ${device} --jobs ${perTask} &
pid=$!
rc=
while :; do
  signalled=0
  wait "$pid"
  status=$?
  # 127: the previous wait already collected ddst's status (a signal came right after it).
  if [ "$status" = 127 ] && [ -n "$rc" ]; then break; fi
  rc=$status
  # A trapped signal ends \`wait\` early while ddst still writes its checkpoints: wait again.
  [ "$signalled" = 1 ] || break
done
if [ "$near_limit" = 1 ] && [ "$term_seen" = 0 ] && [ "$rc" = 143 ]; then
  echo "ddst: time limit near; cells checkpointed, requeueing \${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}"
  scontrol requeue "\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}"
fi
exit "$rc"
`;
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
