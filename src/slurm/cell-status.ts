import { isFinishedRun } from "../run/records.js";
import type { FailedRecord, RunStatus } from "../run/run-status.js";
import type { TaskInQueue } from "./queue.js";

/** A table cell's state on a cluster, from what its directory holds and what Slurm says about the array task
 * it was last submitted in. Pure: the caller reads the directory and asks Slurm. */

export type ClusterState = "done" | "diverged" | "running" | "queued" | "failed" | "stopped" | "new";

export interface CellStatus {
  id: string;
  state: ClusterState;
  /** "123_4": the array task the cell was last submitted in. */
  task: string | null;
  /** "300/600" where the cell has a checkpoint or a summary. */
  progress: string | null;
  detail: string;
}

/** sacct states of a task that ended without finishing its cells. */
const ENDED_BADLY = new Set(["FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"]);
const ACTIVE = new Set(["RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"]);

/** A task's queue state in which its processes run (or end). */
const isActive = (queued: TaskInQueue | undefined): boolean => queued !== undefined && ACTIVE.has(queued.state);

/** Why cell `id` failed in the array task still running (with its other cells), or null. Its failed.json names
 * that task, or, where the cell left no word of its own (failed before its first checkpoint, which leaves no
 * directory, or a resume refused, which leaves its files as they were), the task's log since its latest start
 * says so. Not a failure of an earlier task, whose failed.json stays until the task the cell was submitted
 * again in takes it up. `log`: the task's, null where there is none. */
export function failedInRunningTask(
  id: string,
  failure: FailedRecord | null | undefined,
  task: string | null,
  queued: TaskInQueue | undefined,
  log: TaskLog | null,
): string | null {
  if (!isActive(queued)) return null;
  if (failure?.slurmTask !== undefined && failure.slurmTask === task) return failure.error;
  return log === null ? null : failedInLog(log.text, id);
}

/** The lines of a task's log since its latest start (the log appends across requeues and resubmissions). */
function latestStart(logText: string): string[] {
  const lines = logText.split("\n");
  let start = lines.length - 1;
  while (start >= 0 && !lines[start]!.startsWith("ddst: array task ")) start--;
  return lines.slice(start + 1);
}

/** The last error ddst wrote to a task's log since its latest start (its first line, and the next where it ends
 * in ':' as a list follows), leaving out the lines the script itself writes; null when there is none. */
export function lastError(logText: string): string | null {
  const lines = latestStart(logText);
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!;
    if (!l.startsWith("ddst: ") || l.startsWith("ddst: time limit near")) continue;
    const next = lines[i + 1]?.trim();
    return l.endsWith(":") && next ? `${l.slice(6)} ${next}` : l.slice(6);
  }
  return null;
}

/** Why cell `id` failed in the task's latest start, from the table's progress line ("FAILED id: why"); null
 * when it did not. A cell that fails before its first checkpoint leaves no directory to say it, and one whose
 * resume was refused leaves its files as they were: only the log tells. */
export function failedInLog(logText: string, id: string): string | null {
  const head = `FAILED ${id}: `;
  const lines = latestStart(logText).filter((l) => l.startsWith(head));
  return lines.length ? lines[lines.length - 1]!.slice(head.length) : null;
}

/** An error's first line, without its full stop (more follows it after a ';'). */
const firstLine = (error: string) => error.split("\n")[0]!.replace(/\.$/, "");

/** A task's log: where it is, and its text ("" when it cannot be read), read only when asked for. */
export interface TaskLog {
  path: string;
  readonly text: string;
}

export function cellStatus(
  id: string,
  run: RunStatus | null,
  task: string | null,
  queued: TaskInQueue | undefined,
  accounted: { state: string; exitCode: string } | undefined,
  log: TaskLog | null,
): CellStatus {
  const progress = run ? `${run.iter}/${run.planned}` : null;
  const at = { id, task, progress };
  const logAt = log ? `; log ${log.path}` : "";
  // Finished training counts as done even while its process is still writing the table files and exiting.
  if (run?.kind === "finished" || isFinishedRun(run?.summary, run?.iter ?? 0, run?.planned ?? 0)) return { ...at, state: "done", detail: "" };
  // Never submitted again, whatever its task does next.
  if (run?.kind === "diverged") return { ...at, state: "diverged", detail: `${run.failure.error.split(". ")[0]}; not submitted again (remove ${run.dir} to train it once more)` };
  // Failed in a task that goes on with the other cells it holds (its lock let go: runStatus says "running" else).
  const failedHere = run?.kind === "running" ? null : failedInRunningTask(id, run && "failure" in run ? run.failure : null, task, queued, log);
  if (failedHere !== null) return { ...at, state: "failed", detail: `${firstLine(failedHere)}${logAt}; its task is still running (its other cells); --slurm submits it again` };
  if (isActive(queued)) return { ...at, state: "running", detail: `on ${queued!.reason}` };
  if (queued) return { ...at, state: "queued", detail: `${queued.state.toLowerCase()}${queued.reason && queued.reason !== "None" ? ` (${queued.reason})` : ""}` };
  if (run?.kind === "running") return { ...at, state: "running", detail: `outside Slurm's queue, pid ${run.pid}` };
  if (run?.kind === "failed") return { ...at, state: "failed", detail: `${firstLine(run.failure.error)}${logAt}` };
  if (run?.kind === "damaged") return { ...at, state: "failed", detail: `damaged: ${run.damage}` };
  // Why a task that is gone ended, in its own words, where the cell cannot say.
  const logError = log ? lastError(log.text) : null;
  if (accounted && ENDED_BADLY.has(accounted.state))
    return { ...at, state: "failed", detail: `Slurm: ${accounted.state} (exit ${accounted.exitCode})${logError ? `; ${logError}` : ""}${logAt}; --slurm submits it again${logError ? " once that is mended" : ""}` };
  // A task that ended on an error of its own before the cell ran (data a node cannot see, a broken DDST_PYTHON).
  if (task && logError)
    return { ...at, state: "failed", detail: `${run ? "stopped" : "never started"}: ${logError}${logAt}; --slurm submits it again once that is mended` };
  if (task)
    return {
      ...at,
      state: "stopped",
      detail: `${run ? "interrupted" : "never started"} and no longer queued${logAt}; --slurm submits it again`,
    };
  return { ...at, state: run ? "stopped" : "new", detail: run ? "interrupted (not submitted to Slurm)" : "not submitted" };
}

/** The status table as text. */
export function statusText(rows: readonly CellStatus[]): string {
  const w = Math.max(4, ...rows.map((r) => r.id.length));
  const t = Math.max(10, ...rows.map((r) => (r.task ?? "-").length));
  const head = `  ${"cell".padEnd(w)}  ${"state".padEnd(8)}  ${"slurm task".padEnd(t)}  ${"iteration".padEnd(13)}  detail`;
  const lines = rows.map(
    (r) => `  ${r.id.padEnd(w)}  ${r.state.padEnd(8)}  ${(r.task ?? "-").padEnd(t)}  ${(r.progress ?? "-").padEnd(13)}  ${r.detail}`.trimEnd(),
  );
  const counts = (["done", "diverged", "running", "queued", "failed", "stopped", "new"] as const)
    .map((s) => [s, rows.filter((r) => r.state === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`);
  return `${head}\n${lines.join("\n")}\n  ${counts.join(", ")}`;
}
