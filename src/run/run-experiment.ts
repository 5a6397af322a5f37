import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { changesText, editsSinceCheckpoint, trainedConfig } from "../config/config-changes.js";
import { Experiment, ExperimentInput } from "../config/experiment.js";
import { findPython } from "../worker/discover.js";
import { controllersOf } from "../controller/registry.js";
import { DivergedError } from "./divergence.js";
import { ExperimentRun, RunAborted } from "./experiment-run.js";
import type { FailedRecord } from "./run-status.js";
import { preflight } from "./preflight.js";
import { isFinishedRun, Summary } from "./records.js";
import type { RunOptions } from "./run-options.js";
import { issueText, RunDir, RunDirError } from "./run-dir.js";
import { InputError } from "../input-error.js";
import { currentSlurmJob } from "../slurm/job-id.js";

export { BuildRefusedError, RunAborted } from "./experiment-run.js";
export type { RunOptions } from "./run-options.js";

/** Starting and resuming a run: the run directory and the interpreter are settled here, the loop itself is
 * ExperimentRun (experiment-run.ts). */

/** failed.json for `ddst ls` / `ddst show`: what stopped the run, unless an interruption did (that is not a failure). */
function recordFailure(dir: RunDir, e: unknown): void {
  if (e instanceof RunAborted) return;
  const slurmTask = currentSlurmJob();
  const failure: FailedRecord = {
    error: (e as Error).message,
    iter: dir.tryPointerIter(),
    at: new Date().toISOString(),
    ...(e instanceof DivergedError ? { divergedAt: e.at.iter } : {}),
    ...(slurmTask ? { slurmTask } : {}),
  };
  try {
    dir.writeJson("failed.json", failure);
  } catch {
    /* the error being reported matters more than its record (a full disk, say) */
  }
}

/** Starts a new run of `exp` in `opts.out`. */
export async function runExperiment(experiment: Experiment, opts: RunOptions): Promise<Summary> {
  const exp = opts.device ? { ...experiment, device: opts.device } : experiment;
  RunDir.checkFree(opts.out);
  preflight(exp, exp.name);
  // Find the interpreter before creating anything, so a machine without one leaves no half-made run.
  const python = opts.worker?.python ?? (await findPython()).path;
  const controllers = await controllersOf(exp);
  const existed = existsSync(opts.out); // empty (checkFree): the user's own directory, e.g. `--out .`
  const dir = RunDir.create(opts.out);
  const unlock = dir.lock(); // before anything can remove the directory: a second writer leaves it alone
  try {
    dir.writeJson("config.json", exp);
    return await new ExperimentRun(exp, dir, { ...opts, worker: { ...opts.worker, python } }, controllers).drive(false);
  } catch (e) {
    // A run that failed before its first checkpoint (unreadable data, a model that cannot be built) holds
    // nothing worth keeping; removing it lets the same command run again once the cause is fixed. A directory
    // that existed before is emptied, not removed. The cause is what the user needs: a failed clean-up
    // must not replace it.
    if (!existsSync(join(dir.path, "checkpoint.json"))) {
      try {
        if (existed) for (const f of readdirSync(dir.path)) rmSync(join(dir.path, f), { recursive: true, force: true });
        else rmSync(dir.path, { recursive: true, force: true });
      } catch {
        /* what is left is an unstarted run: `ddst ls` shows it so */
      }
    } else recordFailure(dir, e);
    throw e;
  } finally {
    unlock();
  }
}

/** Continues the run in `opts.out` from its last checkpoint, to the experiment's end or `iterations`. Nothing
 * in the directory changes before the request is accepted, but what loading a checkpoint mends: a newest one
 * that cannot be read is set aside (the pointer falls back), and records past the loaded one are cut. */
export async function resumeRun(opts: RunOptions & { iterations?: number }): Promise<Summary> {
  const dir = RunDir.open(opts.out);
  const unlock = dir.lock();
  try {
    const parsed = Experiment.safeParse(dir.readJson("config.json"));
    if (!parsed.success) throw new RunDirError(`${dir.path}/config.json is not a valid experiment (${issueText(parsed.error.issues[0])}); the run cannot be resumed with it: restore it from a copy, or start the run anew in another directory`);
    let exp = parsed.data;
    const pointer = dir.readPointer();
    const done = pointer.iter;
    const edited = editsSinceCheckpoint(exp, trainedConfig(pointer.config));
    if (edited.length)
      throw new RunDirError(
        `${dir.path}/config.json was edited after the checkpoint of iteration ${done} (${changesText(edited)}): a run continues with ` +
          "the settings it was trained with (only iterations, name, supervision, checkpoint, the paths of files and modules, and without controllers of " +
          "its own log.every and eval.every may change). Restore " +
          "them, or start a run with the new settings in another directory",
      );
    // Held to a new run's limits: config.json records the count, and a value the schema refuses would leave the run unreadable.
    const counted = ExperimentInput.shape.iterations.safeParse(opts.iterations ?? exp.iterations);
    if (!counted.success) throw new InputError(`--iterations ${opts.iterations}: ${issueText(counted.error.issues[0])}`);
    const target = opts.iterations ?? exp.iterations;
    // Even a finished run: answering with its summary must not hide records lost since.
    dir.checkMetrics(pointer.state.metricsBytes, done);
    if (existsSync(join(dir.path, "summary.json"))) {
      // A summary that cannot be read (damaged, or from an older ddst that today's schema does not read) only
      // means the run is not finished here: finishing writes it again from the checkpoint.
      const summary = Summary.safeParse(dir.tryReadJson("summary.json"));
      // Nothing left to do (a controller may have ended it early): hand back what the finished run reported.
      if (summary.success && isFinishedRun(summary.data, done, target)) return summary.data;
      if (!summary.success) opts.onNotice?.(`${dir.path}/summary.json cannot be read as a run summary; it is written again when the run finishes`);
    }
    if (done > target)
      throw new RunDirError(`${dir.path} is already at iteration ${done}, past the requested ${target}; resume it with --iterations ${done} or more`);
    if (opts.until !== undefined && opts.until < done)
      throw new RunDirError(`${dir.path} is already at iteration ${done}, past --until ${opts.until}; give --until ${done} or more, or leave it out`);
    preflight(exp, `${dir.path}/config.json`);
    // Found before anything changes, so a machine without one leaves the run as it was.
    const python = opts.worker?.python ?? (await findPython()).path;
    const controllers = await controllersOf(exp);
    const lengthened = opts.iterations !== undefined && opts.iterations !== exp.iterations;
    // A new length moves the schedules' horizon from here on.
    if (lengthened) exp = { ...exp, iterations: opts.iterations! };
    // The files change once a worker has loaded a checkpoint (none readable, an Inception file gone: refused
    // as it was found).
    let accepted = false;
    const accept = () => {
      accepted = true;
      rmSync(join(dir.path, "failed.json"), { force: true }); // this attempt's outcome replaces the last one's
      // A finished run taken further is no longer finished: its summary would show the old end as final.
      if (done < target) rmSync(join(dir.path, "summary.json"), { force: true });
      if (lengthened) dir.writeJson("config.json", exp);
    };
    return await new ExperimentRun(exp, dir, { ...opts, worker: { ...opts.worker, python } }, controllers).drive(true, accept).catch((e: unknown) => {
      // A refusal (no readable checkpoint, a build the worker refuses) leaves the record as it was; a failure
      // (the worker died loading) is this attempt's outcome.
      if (accepted || !(e instanceof InputError)) recordFailure(dir, e);
      throw e;
    });
  } finally {
    unlock();
  }
}
