import { execaSync } from "execa";

/** Which Slurm job this process runs in, and whether a job is still in Slurm's queue: what a lock left on
 * another node needs to be judged (a requeued array task restarts on any node, and the node it left cannot
 * be asked whether its pid still runs). */

/** "123_4" inside array task 4 of job 123, "123" inside a plain job, null outside Slurm. */
export function currentSlurmJob(env: NodeJS.ProcessEnv = process.env): string | null {
  const { SLURM_ARRAY_JOB_ID: array, SLURM_ARRAY_TASK_ID: task, SLURM_JOB_ID: job } = env;
  if (array && task) return `${array}_${task}`;
  return job || null;
}

/** How many times Slurm has requeued the job this process runs in (0 for its first start). */
export function slurmRestartCount(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.SLURM_RESTART_COUNT ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/** Whether `job` ("123" or "123_4") is pending or running; null when squeue cannot tell (not installed, or
 * the controller does not answer). */
export function slurmJobQueued(job: string): boolean | null {
  try {
    const r = execaSync("squeue", ["-h", "-j", job, "-o", "%T"], { reject: false, timeout: 20_000 });
    // squeue exits 1 with "Invalid job id" for a job that left the queue (and MinJobAge passed).
    if (r.exitCode !== 0) return /invalid job id/i.test(String(r.stderr)) ? false : null;
    return String(r.stdout).trim().length > 0;
  } catch {
    return null;
  }
}
