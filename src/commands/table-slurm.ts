import { execa } from "execa";
import { copyFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { liveHolder } from "../run/dir-lock.js";
import { FailedRecord, statusOrUnreadable } from "../run/run-status.js";
import { cellStatus, failedInRunningTask, statusText, type CellStatus, type TaskLog } from "../slurm/cell-status.js";
import { SlurmOptions } from "../slurm/options.js";
import { accountedTasks, queuedTasks, SlurmCommandError, type TaskInQueue } from "../slurm/queue.js";
import { checkSbatchPath, groupCells, sbatchScript } from "../slurm/sbatch-script.js";
import { appendSubmission, lastTaskOfCells, readSubmissions, slurmDir } from "../slurm/submissions.js";
import { preflightCells, preflightDensities, type Cell, type TablePlan } from "../table/cells.js";
import { unplannedCells } from "../table/unplanned-cells.js";
import { configConflicts, extendCells, inspectCells, lockTable, recordSpec, TableError, writeResults } from "../table/run-table.js";
import { isSettled, yetToStart } from "../table/cell-state.js";
import { findPython } from "../worker/discover.js";
import { layerTableOf } from "../worker/shape-only-build.js";
import { packageRoot } from "../worker/paths.js";
import { pathVariables } from "../config/data-paths.js";
import { cliName, intOption, UsageError } from "./args.js";
import { readJsonAs, readTail, writeWhole } from "../files.js";

/** `ddst table --slurm` (write and submit the job array of the pending cells) and `--status` (each cell's
 * state, with Slurm's job and task). */

export interface SlurmFlags {
  partition?: string;
  account?: string;
  time?: string;
  "gpus-per-cell"?: string;
  "cells-per-gpu"?: string;
  "sbatch-arg": string[];
  "dry-run": boolean;
}

function slurmOptions(flags: SlurmFlags): SlurmOptions {
  const parsed = SlurmOptions.safeParse({
    partition: flags.partition,
    account: flags.account,
    time: flags.time,
    gpusPerCell: intOption("gpus-per-cell", flags["gpus-per-cell"]) ?? 1,
    cellsPerGpu: intOption("cells-per-gpu", flags["cells-per-gpu"]) ?? 1,
    sbatchArgs: flags["sbatch-arg"],
  });
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => i.message).join("; "));
  return parsed.data;
}

/** Slurm's view of the tasks of every submission of this table. With `onSlurmError`, a squeue that cannot be
 * asked is reported there and the queue taken as empty. */
async function slurmView(plan: TablePlan, onSlurmError?: (e: SlurmCommandError) => void) {
  const submissions = readSubmissions(plan.out);
  const jobs = submissions.map((s) => s.job);
  let queue = new Map<string, TaskInQueue>();
  try {
    queue = await queuedTasks(jobs);
  } catch (e) {
    if (!(e instanceof SlurmCommandError) || !onSlurmError) throw e;
    onSlurmError(e);
  }
  return { submissions, jobs, queue, where: lastTaskOfCells(submissions) };
}

/** Cells not finished (nor diverged) whose last array task is not in Slurm's queue (or that were never submitted). */
function pendingCells(plan: TablePlan, where: Map<string, string>, queue: Map<string, TaskInQueue>) {
  const states = inspectCells(plan);
  const finished = plan.cells.filter((c) => states.get(c.id)!.kind === "finished");
  const diverged = plan.cells.filter((c) => states.get(c.id)!.kind === "diverged");
  // Queued or running in an earlier array, or trained right now by a ddst on this machine (--local).
  const held = (c: Cell) => liveHolder(join(c.dir, "run.lock")) !== null;
  // A cell that failed in a task still running its other cells is that task's no more (its lock let go).
  const logOf = taskLogs(plan.out);
  const leftByTask = (c: Cell) => {
    const task = where.get(c.id) ?? null;
    return !held(c) && failedInRunningTask(c.id, readJsonAs(join(c.dir, "failed.json"), FailedRecord), task, queue.get(task ?? ""), logOf(task)) !== null;
  };
  const inQueue = plan.cells.filter((c) => !isSettled(states.get(c.id)!) && ((queue.has(where.get(c.id) ?? "") && !leftByTask(c)) || held(c)));
  const pending = plan.cells.filter((c) => !isSettled(states.get(c.id)!) && !inQueue.includes(c));
  return { finished, diverged, inQueue, pending, states };
}

const pythonPath = (p: string) => (p.includes("/") ? resolve(p) : p);

export async function submitTable(plan: TablePlan, tableFile: string, flags: SlurmFlags): Promise<number> {
  const slurm = slurmOptions(flags);
  checkSbatchPath(resolve(plan.out)); // before the lock creates the directory
  // One submission at a time, and none while a local `ddst table` trains this table.
  const unlock = lockTable(plan.out);
  try {
    // --extend is recorded in the cells themselves, so the array's tasks (and those of earlier arrays still
    // queued) take them as the table's without the flag. A dry run changes nothing.
    if (plan.extend && !flags["dry-run"]) {
      inspectCells(plan);
      extendCells(plan.cells, (text) => console.log(`  ${text}`));
    }
    const { jobs, queue, where } = await slurmView(plan);
    const { finished, diverged, inQueue, pending, states } = pendingCells(plan, where, queue);
    for (const note of unplannedCells(plan)) console.log(`  ${note}`);
    // The arrays still in the queue, not every one ever submitted.
    const queued = jobs.filter((j) => [...queue.keys()].some((t) => t.startsWith(`${j}_`)));
    console.log(`  ${finished.length} finished, ${diverged.length ? `${diverged.length} diverged (not submitted again), ` : ""}${inQueue.length} queued or running in Slurm${queued.length ? ` (job ${queued.join(", ")})` : ""}, ${pending.length} to submit`);
    if (pending.length === 0) {
      console.log(finished.length + diverged.length === plan.cells.length ? `every cell is ${diverged.length ? "finished or diverged" : "finished"}: run the same command without --slurm to write the table` : "nothing to submit");
      return 0;
    }
    preflightCells(tableFile, pending);
    // Cells that have started passed this check; each array task would refuse the others again at every start.
    const python = (await findPython()).path;
    const starting = pending.filter((c) => yetToStart(states.get(c.id)!));
    if (starting.length) await preflightDensities(tableFile, starting, (exp) => layerTableOf(exp, python));
    const out = resolve(plan.out);
    const tasks = groupCells(
      pending.map((c) => c.id),
      slurm.cellsPerGpu,
    );
    const script = sbatchScript({
      name: plan.spec.name,
      tableFile: resolve(tableFile),
      out,
      node: process.execPath,
      cli: join(packageRoot(), "dist", "cli.js"),
      python: pythonPath(python),
      tasks,
      // preflightCells has found each set.
      env: Object.fromEntries([...new Set(pending.flatMap((c) => pathVariables(c.experiment)))].sort().map((v) => [v, process.env[v]!])),
      slurm,
    });
    recordSpec(plan);
    mkdirSync(join(slurmDir(out), "logs"), { recursive: true });
    const file = join(slurmDir(out), "table.sbatch");
    writeWhole(file, script, 0o755);
    if (flags["dry-run"]) {
      console.log(`\n${script}`);
      console.log(`written to ${file}; not submitted (--dry-run). Submit it with the same command without --dry-run.`);
      return 0;
    }
    // --export=ALL on the command line outranks a site's SBATCH_EXPORT=NONE: the tasks need PATH, HOME and the rest.
    const r = await execa("sbatch", ["--parsable", "--export=ALL", file], { reject: false, timeout: 120_000 });
    if (r.failed) {
      const why = r.code === "ENOENT" ? "sbatch is not installed here: run this on the cluster's login node" : String(r.stderr || r.message).trim();
      throw new SlurmCommandError(`sbatch did not accept ${file}: ${why}`);
    }
    const job = String(r.stdout).trim().split(";")[0]!;
    // Not the flags' fault (exit 1, not 2): sbatch accepted something, and whether an array was queued is unknown.
    if (!/^\d+$/.test(job))
      throw new Error(
        `sbatch exited 0 but printed '${String(r.stdout).trim()}' where a job id was expected, so an array may be queued without ` +
          `this table knowing it: look with squeue -u $USER before submitting again (its tasks, if any, train the cells as any would; ` +
          `--status cannot name them)`,
      );
    const kept = join(slurmDir(out), `job-${job}.sbatch`);
    copyFileSync(file, kept);
    appendSubmission(out, { job, at: new Date().toISOString(), tasks, script: kept });
    console.log(`submitted job array ${job}: ${tasks.length} task(s) for ${pending.length} cell(s); logs in ${join(slurmDir(out), "logs")}`);
    console.log(`watch it with: ${cliName()} table ${tableFile} --out ${plan.out} --status`);
    console.log(`when it is done, the same command without --slurm or --status writes table.md, table.csv and table.json`);
    return 0;
  } finally {
    unlock();
  }
}

/** Array tasks' logs, each read at most once per look and only where a cell's state needs it (the cells of a
 * task share it). From its last 16 MiB (some days of a task's progress lines), where its latest start and last
 * words are; "" when it cannot be read. */
function taskLogs(out: string): (task: string | null) => TaskLog | null {
  const logs = new Map<string, TaskLog>();
  return (task) => {
    if (task === null) return null;
    const path = join(slurmDir(out), "logs", `${task}.out`);
    let log = logs.get(path);
    if (!log) {
      let text: string | undefined;
      log = {
        path,
        get text() {
          if (text === undefined)
            try {
              text = readTail(path, 16 * 2 ** 20).text;
            } catch {
              text = ""; // not written yet, or gone: the log says nothing
            }
          return text;
        },
      };
      logs.set(path, log);
    }
    return log;
  };
}

/** Each cell's state, from its directory and Slurm's queue (and accounting, where the cluster keeps it). */
export async function tableStatus(plan: TablePlan, onSlurmError?: (e: SlurmCommandError) => void): Promise<CellStatus[]> {
  const { jobs, queue, where } = await slurmView(plan, onSlurmError);
  const accounted = await accountedTasks(jobs);
  const logOf = taskLogs(plan.out);
  return plan.cells.map((cell) => {
    const task = where.get(cell.id) ?? null;
    const { status, unreadable } = statusOrUnreadable(cell.dir);
    if (unreadable) return { id: cell.id, task, progress: null, state: "failed" as const, detail: `damaged: ${unreadable}` };
    return cellStatus(cell.id, status, task, queue.get(task ?? ""), accounted?.get(task ?? ""), logOf(task));
  });
}

export async function printStatus(plan: TablePlan): Promise<number> {
  // Without Slurm (results copied off the cluster, say) the cells' own files still tell most of it.
  const rows = await tableStatus(plan, (e) => console.error(`ddst: ${e.message}\nshowing what the cell directories hold`));
  console.log(statusText(rows));
  const conflicts = configConflicts(plan);
  if (conflicts.length)
    console.error(`${conflicts.length} cell(s) on disk were trained with another configuration than ${plan.source} asks for now (they stay out of the results):\n${conflicts.map((c) => `  - ${c}`).join("\n")}`);
  return 0;
}

/** A local `ddst table` on a directory whose cells went to Slurm: it only writes the results once every cell is
 * finished; unfinished cells are trained here only with --local (a login node is no place for training). */
export async function refuseLocalTraining(plan: TablePlan): Promise<void> {
  if (readSubmissions(plan.out).length === 0) return;
  const states = inspectCells(plan);
  const unfinished = plan.cells.filter((c) => !isSettled(states.get(c.id)!));
  if (unfinished.length === 0) return; // Slurm need not be asked
  const rows = await tableStatus(plan).catch((e: Error) => {
    if (e instanceof SlurmCommandError) return null;
    throw e;
  });
  writeResults(plan);
  const shown = rows ? `\n${statusText(rows.filter((r) => r.state !== "done" && r.state !== "diverged"))}` : " (Slurm cannot be asked from here)";
  throw new TableError(
    `${plan.out} was submitted to Slurm and ${unfinished.length} of its ${plan.cells.length} cells ${unfinished.length === 1 ? "is" : "are"} not finished:${shown}\n` +
      `${plan.out}/table.md holds the finished ones. Wait for the array (--status), submit the unfinished cells again with --slurm, ` +
      `or add --local to train them on this machine`,
  );
}
