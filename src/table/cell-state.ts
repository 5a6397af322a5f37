import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { z } from "zod";
import { Experiment } from "../config/experiment.js";
import { genBatchSize } from "../vocabulary/networks.js";
import { isFinishedRun, Summary } from "../run/records.js";
import { cadenceFields, changesText, EXECUTION_FIELDS, comparable, configChanges, editsSinceCheckpoint, PATH_FIELDS, SUPERVISION_FIELDS, trainedConfig } from "../config/config-changes.js";
import { CheckpointPointer } from "../run/run-state.js";
import { divergedAt, FailedRecord } from "../run/run-status.js";
import { issueText, RunDir, trainingIn } from "../run/run-dir.js";
import { liveHolder } from "../run/dir-lock.js";
import { isJsonObject } from "../vocabulary/schema-shapes.js";
import { readJsonAs, UnreadableFileError } from "../files.js";
import type { Cell } from "./cells.js";

/** What a cell's directory holds, so that re-running a table skips finished cells, resumes interrupted ones
 * and refuses to mix a cell trained under another configuration. */

export type CellState =
  | { kind: "new" }
  /** Created but never checkpointed (the process died during start-up): nothing in it is worth keeping. */
  | { kind: "unstarted" }
  | { kind: "interrupted"; iter: number }
  | { kind: "finished"; summary: Summary }
  /** Its training went to NaN or infinity: resuming would repeat the same steps, so the table does not retry it. */
  | { kind: "diverged"; iter: number; at: number; error: string };

/** Nothing more to train: finished, or diverged (which only other settings, in another table, would change). */
export const isSettled = (s: CellState): boolean => s.kind === "finished" || s.kind === "diverged";

/** Not started yet, or started without a checkpoint: its starting densities are still to be checked (a cell with
 * a checkpoint passed that check when it started). */
export const yetToStart = (s: CellState): boolean => s.kind === "new" || s.kind === "unstarted";

export class CellStateError extends Error {
  constructor(
    readonly cell: string,
    message: string,
    /** "config": trained with another configuration than the table asks for; "damaged": its files cannot be read. */
    readonly kind: "config" | "damaged" = "damaged",
  ) {
    super(`cell ${cell}: ${message}`);
    this.name = "CellStateError";
  }
}

/** Another array task may remove an unstarted cell's directory while this one looks at it. */
function isEmptyOrGone(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw e;
  }
}

/** readJsonAs for a cell's file: one that is there but cannot be read makes the cell damaged, not unfinished. */
function readCellJsonAs<T>(cell: Cell, file: string, schema: z.ZodType<T>): T | null {
  try {
    return readJsonAs(file, schema);
  } catch (e) {
    if (e instanceof UnreadableFileError) throw new CellStateError(cell.id, e.message);
    throw e;
  }
}

/** What to do about a cell whose bookkeeping is damaged: it cannot be resumed, only trained again. */
const anew = (dir: string) => `; the cell cannot be resumed: remove ${dir} to train it anew`;

/** A damaged config.json need not cost the cell its training: its newest checkpoint keeps the configuration it
 * was trained under. The remedy for one, or anew's where there is no such copy. */
function configRemedy(dir: string): string {
  try {
    const pointer = CheckpointPointer.safeParse(JSON.parse(readFileSync(join(dir, "checkpoint.json"), "utf8")));
    if (pointer.success && Experiment.safeParse(pointer.data.config).success)
      return `; ${join(dir, "checkpoint.json")} keeps the configuration the cell was trained under (its "config"): write that into config.json to keep the cell's training, or remove ${dir} to train it anew`;
  } catch {
    /* no readable copy */
  }
  return anew(dir);
}

function readJson(file: string, cell: string, dir: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as unknown;
  } catch (e) {
    throw new CellStateError(cell, `cannot read ${file}: ${(e as Error).message}${file === join(dir, "config.json") ? configRemedy(dir) : anew(dir)}`);
  }
}

export function cellState(cell: Cell): CellState {
  if (isEmptyOrGone(cell.dir)) return { kind: "new" };
  const pointerFile = join(cell.dir, "checkpoint.json");
  if (!existsSync(pointerFile)) {
    const trained = trainingIn(cell.dir);
    if (trained)
      throw new CellStateError(
        cell.id,
        `${cell.dir} holds training (${trained}) but no checkpoint.json, which says how far it went: restore checkpoint.json ` +
          `(from where the cell was copied) to count or resume it, or remove ${cell.dir} to train it anew`,
      );
    return { kind: "unstarted" };
  }
  const pointer = CheckpointPointer.safeParse(readJson(pointerFile, cell.id, cell.dir));
  if (!pointer.success) throw new CellStateError(cell.id, `${pointerFile} is not a ddst checkpoint pointer (${issueText(pointer.error.issues[0])})${anew(cell.dir)}`);
  // A summary that cannot be read (damaged, or of an older ddst) leaves the cell to be resumed: finishing
  // writes it again from the checkpoint, as `ddst ls` and `ddst show` suggest.
  const summary = readCellJsonAs(cell, join(cell.dir, "summary.json"), Summary);
  // Another run's summary put here by hand would be counted as this cell's result.
  if (summary && (summary.method !== cell.experiment.method || summary.seed !== cell.experiment.seed || !summary.name.endsWith(`-${cell.id}`))) {
    // A whole directory copied from another cell: that is what to say.
    const config = join(cell.dir, "config.json");
    const stored = existsSync(config) ? Experiment.safeParse(readJson(config, cell.id, cell.dir)) : null;
    if (stored?.success) checkIdentity(cell, stored.data);
    throw new CellStateError(
      cell.id,
      `${join(cell.dir, "summary.json")} is another run's (${summary.name}: ${summary.method}, seed ${summary.seed}), not this cell's: ` +
        `put this cell's own back, or remove it and the same command writes it again from the cell's checkpoint`,
    );
  }
  // Finished: all its iterations, or ended early by one of its controllers.
  if (isFinishedRun(summary, pointer.data.iter, cell.experiment.iterations)) return { kind: "finished", summary };
  // Any other failure (a worker crash, a full disk) is retried: failed.json only records the last attempt.
  const failure = readCellJsonAs(cell, join(cell.dir, "failed.json"), FailedRecord);
  const at = failure ? divergedAt(failure) : undefined;
  if (failure && at !== undefined) return { kind: "diverged", iter: pointer.data.iter, at, error: failure.error };
  return { kind: "interrupted", iter: pointer.data.iter };
}

/** Throws where the cell's directory holds another cell's training (copied or moved there: method, d_G or seed
 * differ), whose remedy is the directory, not the table file. */
function checkIdentity(cell: Cell, was: Experiment): void {
  if (was.method !== cell.experiment.method || was.seed !== cell.experiment.seed || was.generator.density !== cell.experiment.generator.density)
    throw new CellStateError(
      cell.id,
      `${cell.dir} holds another cell's training (${was.method} at d_G ${was.generator.density}, seed ${was.seed}): put it back where it came from, or remove ${cell.dir} to train this cell anew`,
      "config",
    );
}

/** Fields whose defaults changed since a cell's config.json was written by an earlier ddst (it lacks a field
 * that came with the change), and in which the table now differs from the cell: the table's `set` that finishes
 * it as it began ({"eval.batchNorm": "running", "eval.batchSize": 500, "data.hflip": false, and for SNGAN
 * "train.batchSize": 256, "train.genBatchSize": 256, "train.nCritic": 1; those that differ), or null. */
function earlierDefaults(raw: unknown, stored: Experiment, changes: readonly string[]): Record<string, unknown> | null {
  const json = raw as { eval?: { batchNorm?: unknown } | null; data?: { hflip?: unknown } };
  const beforeBatchNorm = stored.eval !== null && json.eval?.batchNorm === undefined;
  const beforeHflip = "hflip" in stored.data && json.data?.hflip === undefined;
  const set: Record<string, unknown> = {};
  const changed = (path: string) => changes.some((c) => c.startsWith(`${path}: `));
  if (beforeBatchNorm && stored.eval)
    for (const [path, value] of [["eval.batchNorm", stored.eval.batchNorm], ["eval.batchSize", stored.eval.batchSize]] as const) if (changed(path)) set[path] = value;
  if (beforeHflip && changed("data.hflip")) set["data.hflip"] = (stored.data as { hflip: boolean }).hflip;
  // The paper's networks had the generic batches and n_critic by default then.
  if ((beforeBatchNorm || beforeHflip) && stored.model.name.startsWith("sngan"))
    for (const [path, value] of [["train.batchSize", stored.train.batchSize], ["train.genBatchSize", genBatchSize(stored.train)], ["train.nCritic", stored.train.nCritic]] as const)
      if (changed(path)) set[path] = value;
  return Object.keys(set).length ? set : null;
}

/** Settings that say how a cell runs, not what it trains: where (--devices), how it is supervised and how
 * often it is checkpointed (resume is bitwise), and its name (the table's, renamed). A cell keeps the ones it
 * started with. */
export const HOW_IT_RUNS = new Set<string>(["name", "device", ...SUPERVISION_FIELDS, ...PATH_FIELDS]);

/** The table's settings an interrupted cell takes up when it resumes: where the files are (a table moved to
 * another machine), how its CUDA steps are executed and, where they change nothing trained, how often it logs
 * and evaluates. */
const adopted = (exp: Experiment) => [...PATH_FIELDS, ...EXECUTION_FIELDS, ...cadenceFields(exp)];

/** The iteration at which a settled cell's training ended before its planned count (diverged, or stopped by a
 * controller); null for any other. A raised count changes nothing about such a cell. */
function endedEarlyAt(state: CellState | undefined): number | null {
  if (state?.kind === "diverged") return state.at;
  if (state?.kind === "finished" && state.summary.stopped) return state.summary.stopped.iter;
  return null;
}

/** Throws when an existing cell was configured differently from the plan. The stored config is read through
 * today's schema first, so a field a newer ddst adds with a default does not make every old cell "changed".
 * With `extend`, a cell planned for another number of iterations than the table now asks for is no conflict if
 * it is not past it: recordPlannedCount gives it the table's count, and it continues from its checkpoint to it,
 * as `ddst run --resume --iterations` would (its schedules then end there from its checkpoint on); one that
 * diverged or was stopped before that count needs only the count. `state`: the cell's, as cellState read it. */
export function checkCellConfig(cell: Cell, extend = false, state?: CellState): void {
  const file = join(cell.dir, "config.json");
  if (!existsSync(file)) return;
  const raw = readJson(file, cell.id, cell.dir);
  const stored = Experiment.safeParse(raw);
  if (!stored.success) throw new CellStateError(cell.id, `${file} is not a valid experiment (${issueText(stored.error.issues[0])})${configRemedy(cell.dir)}`);
  // config.json is what was trained only if nobody edited it since its checkpoint (to match a new table file, say).
  const pointer = existsSync(join(cell.dir, "checkpoint.json")) ? CheckpointPointer.safeParse(readJson(join(cell.dir, "checkpoint.json"), cell.id, cell.dir)) : null;
  const edited = editsSinceCheckpoint(stored.data, pointer?.success ? trainedConfig(pointer.data.config) : null);
  if (edited.length) throw new CellStateError(cell.id, `${file} was edited after its checkpoint (${changesText(edited)}). Restore it, or remove ${cell.dir} to train the cell anew.`, "config");
  const changes = configChanges(comparable(stored.data), comparable(cell.experiment), new Set([...HOW_IT_RUNS, ...adopted(stored.data)]));
  const others = changes.filter((c) => !c.startsWith("iterations: "));
  const planned = cell.experiment.iterations;
  // A cell goes on to the table's count from where it is, never back.
  const at = pointer?.success ? pointer.data.iter : 0;
  const early = endedEarlyAt(state);
  const reachable = at <= planned && (early === null || early <= planned);
  if (extend && reachable ? others.length === 0 : changes.length === 0) return;
  let hint = "";
  if (others.length === 0 && reachable)
    hint =
      early === null
        ? `; or add --extend to continue the cell from its checkpoint (iteration ${at}) to ${planned} iterations (its schedules, planned over ` +
          `${stored.data.iterations}, then end at ${planned} from there on: not what a cell trained for ${planned} from the start would do)`
        : `; or add --extend to give the table ${planned} iterations (this cell ended at iteration ${early}, ${state?.kind === "diverged" ? "diverged" : "stopped by a controller"}: it needs no training, only the new count)`;
  else if (others.length === 0) hint = `; it is past ${planned} iterations (at ${Math.max(at, early ?? 0)}): remove ${cell.dir} to train it anew`;
  const earlier = earlierDefaults(raw, stored.data, changes);
  if (earlier) {
    const why: Record<string, (v: unknown) => string> = {
      "eval.batchNorm": () => "its evaluations sampled by BatchNorm's running averages",
      "eval.batchSize": (v) => `${String(v)} at a time`,
      "data.hflip": () => "its training images unflipped",
      "train.batchSize": (v) => `D's batch ${String(v)}`,
      "train.genBatchSize": (v) => `G's batch ${String(v)}`,
      "train.nCritic": (v) => `n_critic ${String(v)}`,
    };
    const what = Object.entries(earlier).map(([k, v]) => why[k]!(v));
    const entries = Object.entries(earlier).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
    hint += `; this cell was trained by an earlier ddst (${what.join(", ")}): to finish the table as it began, add ${entries.join(", ")} to the table file's "set"`;
  }
  checkIdentity(cell, stored.data);
  throw new CellStateError(
    cell.id,
    `${cell.dir} was trained with another configuration than the table now asks for (${changesText(changes)}). ` +
      `Restore the table file, or write this table to another --out${hint}.`,
    "config",
  );
}

/** --extend: the table's iteration count, recorded in the cell's config.json where it differs (checkCellConfig has
 * let it), so that every later command and array task takes the cell as the table's without the flag. False when
 * another process trains the cell right now: it keeps its count until a later --extend. */
export function recordPlannedCount(cell: Cell): boolean {
  const file = join(cell.dir, "config.json");
  if (!existsSync(file)) return true;
  const stored = readJson(file, cell.id, cell.dir);
  if (!isJsonObject(stored) || stored.iterations === cell.experiment.iterations) return true;
  if (liveHolder(join(cell.dir, "run.lock"))) return false;
  RunDir.open(cell.dir).writeJson("config.json", { ...stored, iterations: cell.experiment.iterations });
  return true;
}

/** A table moved to another machine (or its data moved) names its files anew, and a table file may change how
 * often its cells log and evaluate: an interrupted cell resumes with the plan's (a resume lets them change), not
 * the ones its config.json was written with. */
export function adoptPlannedSettings(cell: Cell): void {
  const file = join(cell.dir, "config.json");
  const stored = readJson(file, cell.id, cell.dir);
  if (!isJsonObject(stored)) return; // checkCellConfig has refused it
  const planned = JSON.parse(JSON.stringify(cell.experiment)) as Record<string, unknown>;
  const next = structuredClone(stored);
  for (const field of adopted(cell.experiment)) {
    const [block, key] = field.split(".") as [string, string];
    const from = planned[block];
    const to = next[block];
    if (isJsonObject(to)) to[key] = isJsonObject(from) ? from[key] : undefined;
  }
  const plannedControllers = planned.controllers;
  if (Array.isArray(next.controllers) && Array.isArray(plannedControllers))
    next.controllers = next.controllers.map((c, i) => (isJsonObject(c) && isJsonObject(plannedControllers[i]) ? { ...c, module: plannedControllers[i].module } : c));
  if (JSON.stringify(next) !== JSON.stringify(stored)) RunDir.open(cell.dir).writeJson("config.json", next);
}
