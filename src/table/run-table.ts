import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { holderText, liveHolder, takeLock } from "../run/dir-lock.js";
import { resumeRun, RunAborted, runExperiment } from "../run/run-experiment.js";
import type { Summary } from "../run/records.js";
import { divergedAt, FailedRecord, finalMetric } from "../run/run-status.js";
import { adoptPlannedSettings, cellState, CellStateError, checkCellConfig, isSettled, recordPlannedCount, type CellState } from "./cell-state.js";
import { DivergedError } from "../run/divergence.js";
import type { Cell, TablePlan } from "./cells.js";
import type { Slot } from "./devices.js";
import type { TableProgress } from "./progress.js";
import { tableCsv, tableMarkdown } from "./render.js";
import { tableResult, type FailedCell, type SettledCell, type TableResult } from "./results.js";
import { InputError } from "../input-error.js";
import { readJsonAs, UnreadableFileError, writeWhole } from "../files.js";

/** Runs a table's cells, `slots.length` at a time: each cell is an ordinary durable run in DIR/cells/<id>, so
 * re-running the command skips finished cells and resumes interrupted ones from their checkpoints. Results
 * (table.md, table.csv, table.json) are rewritten from the cells' summary.json files after every finished
 * cell and at the end. */

export interface TableRunOptions {
  slots: readonly Slot[];
  progress: TableProgress;
  /** Aborting interrupts every running cell with a checkpoint and starts no more. */
  signal?: AbortSignal;
  python?: string;
  /** Run only these cells, without the table's lock: the array tasks of a Slurm job run side by side on one
   * table directory, each on its own cells, and each cell's run.lock keeps two writers of a cell apart. */
  only?: ReadonlySet<string>;
}

export interface TableOutcome {
  result: TableResult;
  /** Cells that failed in this command; the same command tries them again. */
  failed: { id: string; error: string }[];
  /** Cells whose training diverged, in this command or an earlier one: not tried again. */
  diverged: { id: string; error: string }[];
  /** Cells another ddst (a `--cells` command beside this one) was training at their turn: left to it. */
  busy: { id: string; holder: string; lock: string }[];
  interrupted: boolean;
}

export class TableError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = "TableError";
  }
}

/** Every cell's state, after checking that existing cells were trained with the configuration the table asks
 * for now (all conflicts are reported at once; nothing is touched before). With `only` (an array task's cells),
 * states are returned for those, but every cell on disk is checked: the task writes the whole table's results,
 * and a table file edited while an array waits must not mix two configurations in one table. */
export function inspectCells(plan: TablePlan, only?: ReadonlySet<string>): Map<string, CellState> {
  checkTableDir(plan.out);
  const states = new Map<string, CellState>();
  const problems: string[] = [];
  for (const cell of plan.cells) {
    const mine = !only || only.has(cell.id);
    try {
      const state = cellState(cell);
      // Another task's cell planned for another count is no conflict of this task's: `--extend` records the count
      // in each cell as it can (one being trained keeps its own until then), and results leave such a cell out.
      if (state.kind !== "new" && state.kind !== "unstarted") checkCellConfig(cell, plan.extend || !mine, state);
      if (mine) states.set(cell.id, state);
    } catch (e) {
      if (!(e instanceof CellStateError)) throw e;
      // Another task's cell that cannot be read is that task's to report; one of another configuration is everyone's.
      if (mine || e.kind === "config") problems.push(e.message);
    }
  }
  if (problems.length) throw new TableError(`${plan.out} cannot continue this table:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  return states;
}

/** --extend (after inspectCells has let it): the table's iteration count recorded in every cell that can take it. */
export function extendCells(cells: readonly Cell[], say: (text: string) => void): void {
  const busy = cells.filter((c) => !recordPlannedCount(c)).map((c) => c.id);
  if (busy.length)
    say(`--extend: ${busy.join(", ")} ${busy.length === 1 ? "is" : "are"} being trained by another ddst right now and keep${busy.length === 1 ? "s" : ""} ${busy.length === 1 ? "its" : "their"} count; give --extend again once ${busy.length === 1 ? "it is" : "they are"} done`);
}

/** The cells on disk trained with another configuration than the plan's, each with what differs. */
export function configConflicts(plan: TablePlan): string[] {
  return plan.cells.flatMap((cell) => conflictOf(cell, plan.extend) ?? []);
}

function conflictOf(cell: Cell, extend: boolean, state?: CellState): string | null {
  try {
    checkCellConfig(cell, extend, state ?? cellState(cell));
    return null;
  } catch (e) {
    if (e instanceof CellStateError && e.kind === "config") return e.message;
    return null; // damaged: cellState reports it
  }
}

/** What a table directory may hold before its first command has written table-spec.json: its lock, its
 * cells, its Slurm files. */
const TABLE_ENTRIES = new Set(["table-spec.json", "table.lock", "cells", "slurm"]);
/** What a table writes beside its cells: its results and `ddst report`'s page. */
const RESULT_FILES = new Set(["table.md", "table.csv", "table.json", "report.html"]);

/** Refuses a directory that is not a table's (a run, a folder of the user's): the table would write its
 * cells and overwrite table.md, table.csv and table.json there. Missing and empty directories are fine. */
export function checkTableDir(out: string): void {
  if (out === "") throw new TableError("--out is empty; give the table's directory");
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new TableError(`${out} is a file, not a directory; choose another --out`);
  // Hidden files (.gitkeep) are nobody's results, and a spec being written by a concurrent --cells task is hidden
  // (writeWhole); one an older ddst was writing (table-spec.json.<host>.<pid>.tmp) is this table's too.
  const entries = readdirSync(out).filter((e) => !e.startsWith("."));
  // A table whose table-spec.json is gone (deleted by hand) still holds its cells beside its results: the
  // command writes the spec again, and checks every cell against the table file as always.
  const results = entries.includes("cells") ? RESULT_FILES : new Set<string>();
  // `ddst report --png` writes its plots beside the page: report-<plot>.png.
  const plot = (e: string) => results.size > 0 && /^report-[\w-]+\.png$/.test(e);
  const ours = (e: string) => TABLE_ENTRIES.has(e) || results.has(e) || plot(e) || (e.startsWith("table-spec.json.") && e.endsWith(".tmp"));
  if (entries.includes("table-spec.json") || entries.every(ours)) return;
  const shown = entries.filter((e) => !ours(e)).slice(0, 3).join(", ");
  const what = entries.includes("config.json") ? "a ddst run" : `a directory holding ${shown}`;
  throw new TableError(`${out} is ${what}, not a ddst table directory (it has no table-spec.json); choose another --out, or an empty directory`);
}

/** One command at a time per table directory: a second one (a requeued job while the first still runs, say)
 * would restart cells under the first one's workers. A lock whose process is gone is taken over. */
export function lockTable(out: string): () => void {
  mkdirSync(out, { recursive: true });
  return takeLock(join(out, "table.lock"), (h) => busyTable(out, h));
}

const busyTable = (out: string, h: Parameters<typeof holderText>[0]) => new TableError(`${out} is being run by another ddst table (${holderText(h)}); wait for it, or stop it first`);

/** Refuses at once, before any slow pre-flight (a torch worker's start), a table another command is running;
 * lockTable takes the lock itself later, so two commands starting together are still told apart. */
export function checkTableFree(out: string): void {
  const holder = liveHolder(join(out, "table.lock"));
  if (holder) throw busyTable(out, holder);
}

export async function runTable(plan: TablePlan, opts: TableRunOptions): Promise<TableOutcome> {
  if (opts.only) return await runLocked(plan, opts);
  const unlock = lockTable(plan.out);
  try {
    return await runLocked(plan, opts);
  } finally {
    unlock();
  }
}

async function runLocked(plan: TablePlan, opts: TableRunOptions): Promise<TableOutcome> {
  const mine = opts.only ? { ...plan, cells: plan.cells.filter((c) => opts.only!.has(c.id)) } : plan;
  // Read again under the lock, whatever the caller saw before: another command may have moved the cells since.
  const states = inspectCells(plan, opts.only);
  if (plan.extend) extendCells(mine.cells, opts.progress.note.bind(opts.progress));
  mkdirSync(join(plan.out, "cells"), { recursive: true });
  recordSpec(plan);
  const failed: TableOutcome["failed"] = [];
  const diverged: TableOutcome["diverged"] = [];
  const busy: TableOutcome["busy"] = [];
  const queue: Cell[] = [];
  for (const cell of mine.cells) {
    const s = states.get(cell.id)!;
    if (s.kind === "diverged") diverged.push({ id: cell.id, error: s.error });
    if (!isSettled(s)) queue.push(cell);
  }
  const { progress, signal } = opts;

  /** The cell's state at its turn: a `--cells` command beside this one (it takes no table lock) may have
   * trained it meanwhile. Undefined when there is nothing to run (said on the progress). */
  const stateAtTurn = (cell: Cell): CellState | undefined => {
    const planned = states.get(cell.id)!;
    // It leaves the queue without starting here.
    const unqueue = () => progress.unqueue(cell.experiment.iterations - (planned.kind === "interrupted" ? planned.iter : 0));
    const fail = (error: string) => {
      unqueue();
      failed.push({ id: cell.id, error });
      progress.fail(cell.id, error);
      return undefined;
    };
    let state: CellState;
    try {
      state = cellState(cell);
      if (state.kind !== "new" && state.kind !== "unstarted") checkCellConfig(cell, plan.extend, state);
    } catch (e) {
      if (!(e instanceof CellStateError)) throw e;
      return fail(e.message);
    }
    // Another process training (or starting) this cell holds its run.lock: not a failure, and never deleted under
    // it; it is that process's to finish.
    const holder = state.kind === "unstarted" || state.kind === "interrupted" ? liveHolder(join(cell.dir, "run.lock")) : null;
    if (holder) {
      unqueue();
      busy.push({ id: cell.id, holder: holderText(holder), lock: join(cell.dir, "run.lock") });
      progress.note(`busy ${cell.id}: being trained by another ddst (${holderText(holder)}); left to it`);
      return undefined;
    }
    if (state.kind === "unstarted") {
      // A directory without a checkpoint holds no training (cellState has looked); starting it again is the only way forward.
      rmSync(cell.dir, { recursive: true, force: true });
      return { kind: "new" };
    }
    if (state.kind === "finished") {
      unqueue();
      progress.finish(cell.id, `${describe(state.summary)} (trained meanwhile by another ddst)`);
      return undefined;
    }
    if (state.kind === "diverged") {
      unqueue();
      diverged.push({ id: cell.id, error: state.error });
      progress.fail(cell.id, `${state.error} (meanwhile, in another ddst)`, true);
      return undefined;
    }
    return state;
  };

  const runCell = async (cell: Cell, slot: Slot): Promise<void> => {
    const state = stateAtTurn(cell);
    if (!state) return;
    const from = state.kind === "interrupted" ? state.iter : null;
    // An interrupted cell continues on the kind of device it started on (its random streams live there).
    const started = state.kind === "interrupted" ? startedOn(cell) : undefined;
    progress.start(cell.id, started && started !== slot.device ? `${started} (where it started)` : slot.label, from, cell.experiment.iterations);
    const runOpts = {
      out: cell.dir,
      signal,
      // A new cell runs where its slot is; an interrupted one continues on the device it started on.
      device: state.kind === "interrupted" ? undefined : slot.device,
      worker: { python: opts.python, env: slot.env, threads: cell.experiment.supervision.threads ?? slot.threads },
      onRecord: (r: Parameters<TableProgress["record"]>[1]) => progress.record(cell.id, r),
      onNotice: (message: string) => progress.note(`${cell.id}: ${message}`),
    };
    try {
      if (state.kind === "interrupted") adoptPlannedSettings(cell);
      // To the table's length: a cell of a table extended with --extend continues past the end it was planned for.
      const summary = state.kind === "interrupted" ? await resumeRun({ ...runOpts, iterations: cell.experiment.iterations }) : await runExperiment(cell.experiment, runOpts);
      progress.finish(cell.id, describe(summary));
    } catch (e) {
      if (e instanceof RunAborted) progress.interrupted(cell.id, e.iter);
      else {
        const error = (e as Error).message;
        (e instanceof DivergedError ? diverged : failed).push({ id: cell.id, error });
        // The cause, not only its heading ("invalid experiment X:" is followed by the fields), and the worker's log if it has one.
        const lines = error.split("\n");
        const head = lines[0]!.endsWith(":") && lines[1] ? `${lines[0]} ${lines[1].trim()}` : lines[0]!;
        const log = join(cell.dir, "worker.log");
        progress.fail(cell.id, existsSync(log) ? `${head} (${log})` : head, e instanceof DivergedError);
      }
      return;
    }
    try {
      writeResults(plan);
    } catch (e) {
      // The cell is done either way; the table files are written again after the next cell and at the end.
      progress.note(`could not update the table files: ${(e as Error).message}`);
    }
  };

  await Promise.all(
    opts.slots.map(async (slot) => {
      for (let cell = queue.shift(); cell && !signal?.aborted; cell = queue.shift()) await runCell(cell, slot);
    }),
  );
  progress.close();
  // In the table's order, not the order in which cells running side by side ended.
  const rank = new Map(plan.cells.map((c, i) => [c.id, i]));
  const inOrder = <T extends { id: string }>(xs: T[]) => xs.sort((a, b) => rank.get(a.id)! - rank.get(b.id)!);
  return { result: writeResults(plan), failed: inOrder(failed), diverged: inOrder(diverged), busy: inOrder(busy), interrupted: signal?.aborted === true };
}

function startedOn(cell: Cell): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(cell.dir, "config.json"), "utf8")) as { device?: string }).device;
  } catch {
    return undefined; // resumeRun reports it
  }
}

function describe(s: Summary): string {
  const metric = finalMetric(s, 3);
  return `${metric ? `${metric}, ` : ""}FLOPs ${(100 * s.flops.ratio).toFixed(2)}% of dense, d_D ${s.final.densityD.toFixed(3)}, ${(s.wallSeconds / 60).toFixed(1)} min`;
}

/** What the results are made of, from one look at each cell as it is on disk now: the settled cells (finished or
 * diverged) and those whose last attempt failed (failed.json, not a divergence, with training left), each trained
 * with the plan's configuration: a cell another array task trained under an edited table file stays out of the
 * results (inspectCells refuses such tables up front; this covers tasks that were already running when the file
 * changed). A damaged cell is in neither (inspectCells and --status name it), and a cell that failed before its
 * first checkpoint leaves no directory: nothing on disk counts it. */
export function cellOutcomes(plan: TablePlan): { settled: SettledCell[]; failed: FailedCell[] } {
  const settled: SettledCell[] = [];
  const failed: FailedCell[] = [];
  for (const cell of plan.cells) {
    const key = { method: cell.method, density: cell.density, seed: cell.seed };
    try {
      const s = cellState(cell);
      if (isSettled(s)) {
        if (conflictOf(cell, plan.extend, s) !== null) continue;
        if (s.kind === "finished") settled.push({ ...key, summary: s.summary });
        if (s.kind === "diverged") settled.push({ ...key, divergedAt: s.at });
      } else if (s.kind === "interrupted" || s.kind === "unstarted") {
        if (s.kind === "interrupted") checkCellConfig(cell, plan.extend, s);
        const failure = readJsonAs(join(cell.dir, "failed.json"), FailedRecord);
        if (failure && divergedAt(failure) === undefined) failed.push(key);
      }
    } catch (e) {
      if (e instanceof CellStateError || e instanceof UnreadableFileError) continue; // damaged, or of another configuration
      throw e;
    }
  }
  return { settled, failed };
}

export const settledCells = (plan: TablePlan): SettledCell[] => cellOutcomes(plan).settled;
export const failedCells = (plan: TablePlan): FailedCell[] => cellOutcomes(plan).failed;

/** table-spec.json: what marks the directory as this table's (checkTableDir, `ddst ls`), written by every
 * command that puts anything else there. */
export function recordSpec(plan: TablePlan): void {
  mkdirSync(plan.out, { recursive: true });
  writeWhole(join(plan.out, "table-spec.json"), JSON.stringify({ source: plan.source, spec: plan.spec }, null, 2) + "\n");
}

/** Writes table.json, table.md and table.csv from the finished cells' summaries. */
export function writeResults(plan: TablePlan): TableResult {
  recordSpec(plan);
  const ev = plan.cells.find((c) => c.experiment.eval !== null)?.experiment.eval;
  const evaluation = ev ? { samples: ev.samples, reference: ev.reference, batchNorm: ev.batchNorm } : null;
  const { settled, failed } = cellOutcomes(plan);
  const result = tableResult(plan.spec, settled, failed, ev !== undefined, evaluation);
  writeWhole(join(plan.out, "table.json"), JSON.stringify(result, null, 2) + "\n");
  writeWhole(join(plan.out, "table.md"), tableMarkdown(result));
  writeWhole(join(plan.out, "table.csv"), tableCsv(result));
  return result;
}


