import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Experiment } from "../config/experiment.js";
import { findPython } from "../worker/discover.js";
import { ExperimentRun } from "./experiment-run.js";
import { Summary } from "./records.js";
import type { RunOptions } from "./run-options.js";
import { RunDir, RunDirError } from "./run-dir.js";

export { RunAborted } from "./experiment-run.js";
export type { RunOptions } from "./run-options.js";

/** Starting and resuming a run: the run directory and the interpreter are settled here, the loop itself is
 * ExperimentRun (experiment-run.ts). */

/** Starts a new run of `exp` in `opts.out`. */
export async function runExperiment(experiment: Experiment, opts: RunOptions): Promise<Summary> {
  const exp = opts.device ? { ...experiment, device: opts.device } : experiment;
  RunDir.checkFree(opts.out);
  // Find the interpreter before creating anything, so a machine without one leaves no half-made run.
  const python = opts.worker?.python ?? (await findPython()).path;
  const dir = RunDir.create(opts.out);
  dir.writeJson("config.json", exp);
  try {
    return await new ExperimentRun(exp, dir, { ...opts, worker: { ...opts.worker, python } }).drive(false);
  } catch (e) {
    // A run that failed before its first checkpoint (unreadable data, a model that cannot be built) holds
    // nothing worth keeping; removing it lets the same command run again once the cause is fixed.
    if (!existsSync(join(dir.path, "checkpoint.json"))) rmSync(dir.path, { recursive: true, force: true });
    throw e;
  }
}

/** Continues the run in `opts.out` from its last checkpoint, to the experiment's end or `iterations`. */
export async function resumeRun(opts: RunOptions & { iterations?: number }): Promise<Summary> {
  const dir = RunDir.open(opts.out);
  const parsed = Experiment.safeParse(dir.readJson("config.json"));
  if (!parsed.success) throw new RunDirError(`${dir.path}/config.json is not a valid experiment: ${parsed.error.issues[0]?.message}`);
  let exp = parsed.data;
  const done = dir.readPointer().iter;
  const target = opts.iterations ?? exp.iterations;
  if (done >= target && existsSync(join(dir.path, "summary.json"))) {
    // Nothing left to do: hand back what the finished run reported.
    return Summary.parse(dir.readJson("summary.json"));
  }
  if (opts.iterations !== undefined && opts.iterations !== exp.iterations) {
    // A new length moves the schedules' horizon from here on; config.json records it.
    exp = { ...exp, iterations: opts.iterations };
    dir.writeJson("config.json", exp);
  }
  return new ExperimentRun(exp, dir, opts).drive(true);
}

