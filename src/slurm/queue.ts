import { InputError } from "../input-error.js";
import { execa } from "execa";

/** What Slurm says about array tasks: squeue for those still queued or running, sacct (where the cluster keeps
 * accounting) for those that ended. */

export interface TaskInQueue {
  /** PENDING, RUNNING, COMPLETING, REQUEUED, ... */
  state: string;
  /** Why a pending task waits (Priority, Resources, BeginTime, ...), or the node it runs on. */
  reason: string;
}

/** Slurm's commands are missing or refuse (no controller, an unknown partition): the environment's or the
 * flags' fault, exit 2 like any other. */
export class SlurmCommandError extends InputError {}

/** Parses `squeue -h -r -o "%F_%K|%T|%R"` output: "123_4|PENDING|(Priority)". */
export function parseSqueue(text: string): Map<string, TaskInQueue> {
  const out = new Map<string, TaskInQueue>();
  for (const line of text.split("\n")) {
    const [id, state, reason] = line.trim().split("|");
    if (id && state) out.set(id, { state, reason: (reason ?? "").replace(/^\((.*)\)$/, "$1") });
  }
  return out;
}

/** Parses `sacct -n -P -X -o JobID,State,ExitCode` output: "123_4|FAILED|1:0". */
export function parseSacct(text: string): Map<string, { state: string; exitCode: string }> {
  const out = new Map<string, { state: string; exitCode: string }>();
  for (const line of text.split("\n")) {
    const [id, state, exitCode] = line.trim().split("|");
    // "CANCELLED by 0" -> CANCELLED
    if (id && state && /^\d+_\d+$/.test(id)) out.set(id, { state: state.split(" ")[0]!, exitCode: exitCode ?? "" });
  }
  return out;
}

/** The array tasks of `jobs` that Slurm still holds. */
export async function queuedTasks(jobs: readonly string[]): Promise<Map<string, TaskInQueue>> {
  if (jobs.length === 0) return new Map();
  // One call for all jobs; a job id that left the queue makes `squeue -j` fail, so ask for this user's jobs.
  const r = await execa("squeue", ["--me", "-h", "-r", "-o", "%F_%K|%T|%R"], { reject: false, timeout: 60_000 });
  if (r.failed)
    throw new SlurmCommandError(`squeue failed (${r.exitCode ?? r.code ?? r.signal}): ${String(r.stderr || r.message).trim()}; is this a Slurm login node?`);
  const wanted = new Set(jobs);
  return new Map([...parseSqueue(String(r.stdout))].filter(([id]) => wanted.has(id.split("_")[0]!)));
}

/** How the tasks of `jobs` ended, or null where the cluster keeps no accounting (sacct refuses). */
export async function accountedTasks(jobs: readonly string[]): Promise<Map<string, { state: string; exitCode: string }> | null> {
  if (jobs.length === 0) return new Map();
  const r = await execa("sacct", ["-n", "-P", "-X", "-j", jobs.join(","), "-o", "JobID,State,ExitCode"], { reject: false, timeout: 60_000 });
  if (r.failed) return null;
  return parseSacct(String(r.stdout));
}
