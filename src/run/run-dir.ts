import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { MetricRecord } from "./records.js";
import { holderText, liveHolder, type LockHolder, takeLock } from "./dir-lock.js";
import { CheckpointPointer, type SavedCheckpoint } from "./run-state.js";
import { InputError } from "../input-error.js";
import { readBytes, writeWhole } from "../files.js";

/** A metrics.jsonl line's iteration (Infinity for a line that is not a record: it proves nothing). */
export function recordIter(line: string): number {
  try {
    const iter = (JSON.parse(line) as { iter?: unknown }).iter;
    return typeof iter === "number" ? iter : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** What a run directory without checkpoint.json holds of training, if anything: a run that died before its
 * first checkpoint has written at most its iteration-0 records and worker file (nothing is lost when it is
 * started again); anything more means checkpoint.json was lost or left behind in a copy. */
export function trainingIn(dir: string): string | null {
  if (existsSync(join(dir, "summary.json"))) return "summary.json";
  const checkpoints = existsSync(join(dir, "checkpoints")) ? readdirSync(join(dir, "checkpoints")).filter((f) => /^iter-0*[1-9]\d*\.pt$/.test(f)) : [];
  if (checkpoints.length) return `checkpoints/${checkpoints[0]}`;
  const metrics = join(dir, "metrics.jsonl");
  if (!existsSync(metrics) || !statSync(metrics).isFile()) return null;
  // A line that is not a record (one cut by the crash) proves nothing.
  const trainedPast0 = readFileSync(metrics, "utf8")
    .split("\n")
    .map(recordIter)
    .some((iter) => Number.isFinite(iter) && iter > 0);
  return trainedPast0 ? "metrics.jsonl records past iteration 0" : null;
}

/** A run directory that `ddst run` created and that stopped before its first checkpoint, with nothing trained. */
function isUnstartedRun(dir: string): boolean {
  return existsSync(join(dir, "config.json")) && !existsSync(join(dir, "checkpoint.json")) && trainingIn(dir) === null && !liveHolder(join(dir, "run.lock"));
}

/** "train.batchSize: Too small: expected number to be >=1": a zod issue with the field it is about. */
export function issueText(issue: { path: PropertyKey[]; message: string } | undefined): string {
  if (!issue) return "invalid";
  return issue.path.length ? `${issue.path.map(String).join(".")}: ${issue.message}` : issue.message;
}


/** The run directory: config.json, metrics.jsonl, summary.json, worker.log, checkpoint.json and
 * checkpoints/. Every JSON file is written to a temporary name and renamed, so a reader never sees half a file
 * and an interrupted run keeps everything written before the interruption. */
export class RunDir {
  readonly metricsPath: string;

  private constructor(readonly path: string) {
    this.metricsPath = join(path, "metrics.jsonl");
  }

  /** Refuses a non-empty directory: an existing run is never overwritten. */
  static create(path: string): RunDir {
    RunDir.checkFree(path);
    makeDirs(join(path, "checkpoints"));
    return new RunDir(path);
  }

  static checkFree(path: string): void {
    // "" is no directory, yet Node writes a run's files into the working directory for it (over a run there, too).
    if (path === "") throw new RunDirError("--out is empty; give the directory for the run");
    // A run inside another run's directory would be taken for part of it (and removed with it).
    for (let up = dirname(resolve(path)); up !== dirname(up); up = dirname(up))
      if (existsSync(join(up, "config.json")) && existsSync(join(up, "checkpoint.json")))
        throw new RunDirError(`${path} is inside the run ${up}; choose an --out outside it`);
    if (!existsSync(path)) return;
    if (!statSync(path).isDirectory()) throw new RunDirError(`${path} is a file, not a directory; choose another --out`);
    if (readdirSync(path).length === 0) return;
    if (isUnstartedRun(path))
      throw new RunDirError(`${path} holds a run that stopped before its first checkpoint, so nothing of it was trained; remove it and run again, or choose another --out`);
    throw new RunDirError(`${path} already exists and is not empty; choose another --out, remove it, or continue it with --resume ${path}`);
  }

  /** An existing run, for --resume. */
  static open(path: string): RunDir {
    if (!existsSync(path)) throw new RunDirError(`${path} does not exist; --resume takes the directory of a run`);
    if (!statSync(path).isDirectory()) throw new RunDirError(`${path} is a file; --resume takes the directory of a run`);
    if (isUnstartedRun(path))
      throw new RunDirError(`${path} cannot be resumed: it stopped before its first checkpoint, so nothing of it was trained; remove it and start the run again`);
    for (const f of ["config.json", "checkpoint.json"])
      if (!existsSync(join(path, f)))
        throw new RunDirError(`${path} is not a resumable run: ${f} is missing (was it started by ddst run, and did it write its first checkpoint?)`);
    return new RunDir(path);
  }

  /** This process writes the run: a second writer (a second --resume, a table cell run twice) is refused,
   * naming the holder; a lock left by a process that is gone is taken over. Returns the release. */
  lock(): () => void {
    const file = join(this.path, "run.lock");
    const refuse = (h: LockHolder) => new RunDirError(`${this.path} is being written by another ddst (${holderText(h)}); wait for it or stop it first (if that process is gone for good, remove ${file})`);
    try {
      return takeLock(file, refuse);
    } catch (e) {
      throw e instanceof RunDirError ? e : ioError("lock the run by creating", file, e);
    }
  }

  get logPath(): string {
    return join(this.path, "worker.log");
  }

  readJson(name: string): unknown {
    const file = join(this.path, name);
    try {
      return JSON.parse(readFileSync(file, "utf8")) as unknown;
    } catch (e) {
      throw new RunDirError(`cannot read ${file}: ${(e as Error).message}`);
    }
  }

  /** The file's JSON, or undefined when it cannot be read or parsed. */
  tryReadJson(name: string): unknown {
    try {
      return this.readJson(name);
    } catch {
      return undefined;
    }
  }

  writeJson(name: string, value: unknown): void {
    const file = join(this.path, name);
    try {
      writeWhole(file, JSON.stringify(value, null, 2) + "\n");
    } catch (e) {
      throw ioError("write", file, e);
    }
  }

  append(records: readonly MetricRecord[]): void {
    if (records.length === 0) return;
    try {
      appendFileSync(this.metricsPath, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
    } catch (e) {
      throw ioError("append to", this.metricsPath, e);
    }
  }

  metricsBytes(): number {
    return existsSync(this.metricsPath) ? statSync(this.metricsPath).size : 0;
  }

  /** Cuts metrics.jsonl back to the `bytes` that the checkpoint of iteration `iter` recorded, dropping whatever
   * was appended after it, so no iteration is recorded twice; the lines `keep` accepts are written back after
   * the cut (a restart record from that same checkpoint: history, not training). Returns how many lines were
   * dropped, and the lines kept. */
  truncateMetrics(bytes: number, iter: number, keep: (line: string) => boolean = () => false): { dropped: number; kept: string[] } {
    const lines = this.checkMetrics(bytes, iter);
    if (lines.length === 0) return { dropped: 0, kept: [] };
    const kept = lines.filter(keep);
    try {
      truncateSync(this.metricsPath, bytes);
      if (kept.length) appendFileSync(this.metricsPath, kept.join("\n") + "\n");
    } catch (e) {
      throw ioError("cut back", this.metricsPath, e);
    }
    return { dropped: lines.length - kept.length, kept };
  }

  /** Refuses a metrics.jsonl that no longer holds what the checkpoint of iteration `iter` recorded: shorter than
   * its `bytes`, or not ending a record there (appending would glue new records onto a cut one, or leave a gap);
   * and a checkpoint whose `bytes` would cut records of iterations before its own (checkpoint.json edited: the
   * resume would drop them and never train them again). Returns the lines after `bytes`, which a resume cuts. */
  checkMetrics(bytes: number, iter: number): string[] {
    // A file that is not a regular one (a pipe, a device) has no length to hold to.
    if (existsSync(this.metricsPath) && !statSync(this.metricsPath).isFile()) return [];
    const size = this.metricsBytes();
    const lost = `${this.metricsPath} has ${size} bytes, but the checkpoint it is resumed from recorded ${bytes}`;
    const what = "nothing was changed; restore the file (a copy, a backup) to continue this run, or start it anew in another directory";
    if (size < bytes) throw new RunDirError(`${lost}: records were lost (the file was cut short, emptied or removed); ${what}`);
    if (bytes > 0 && readBytes(this.metricsPath, bytes - 1, 1)[0] !== 0x0a)
      throw new RunDirError(`${lost}, and no record ends there: the file was edited; ${what}`);
    const after = size > bytes ? readBytes(this.metricsPath, bytes, size - bytes).toString("utf8").split("\n").filter((l) => l.trim()) : [];
    const earlier = after.map(recordIter).find((at) => at < iter);
    if (earlier !== undefined)
      throw new RunDirError(
        `${join(this.path, "checkpoint.json")} says its checkpoint of iteration ${iter} ends ${this.metricsPath} at byte ${bytes}, but a record of ` +
          `iteration ${earlier} comes after that: resuming would drop it for good. checkpoint.json was edited; restore it (nothing was changed)`,
      );
    return after;
  }

  workerCheckpoint(iter: number): { relative: string; absolute: string } {
    const relative = join("checkpoints", `iter-${String(iter).padStart(9, "0")}.pt`);
    return { relative, absolute: join(this.path, relative) };
  }

  readPointer(): CheckpointPointer {
    const file = join(this.path, "checkpoint.json");
    let reason: string;
    try {
      const parsed = CheckpointPointer.safeParse(JSON.parse(readFileSync(file, "utf8")));
      if (parsed.success) return parsed.data;
      reason = issueText(parsed.error.issues[0]);
    } catch (e) {
      reason = (e as Error).message;
    }
    // It is written whole (renamed into place), so only damage from outside gets here.
    throw new RunDirError(
      `${file} cannot be read as a checkpoint pointer (${reason}): it holds the run's own state (BR window, controllers, ` +
        `FLOPs), without which the worker files in ${join(this.path, "checkpoints")} cannot be resumed; restore it from a copy, or start the run anew in another directory`,
    );
  }

  /** The newest checkpoint's iteration, or null when there is none readable. */
  tryPointerIter(): number | null {
    try {
      return this.readPointer().iter;
    } catch {
      return null;
    }
  }

  /** Publishes a checkpoint with the config it was written under, keeping the `keep - 1` newest earlier ones as fallbacks, and removes every other
   * worker file. */
  publish(saved: SavedCheckpoint, keep: number, config: unknown): void {
    let before: SavedCheckpoint[] = [];
    try {
      const previous = this.readPointer();
      before = [previous, ...previous.earlier];
    } catch {
      /* the first checkpoint, or a pointer that cannot be read: nothing earlier to keep */
    }
    const earlier = before.filter((p) => p.iter < saved.iter).map(({ iter, worker, state }) => ({ iter, worker, state }));
    this.point({ ...saved, config, earlier: earlier.slice(0, Math.max(0, keep - 1)) });
  }

  /** Makes `pointer` the run's newest checkpoint and removes the worker files it does not name, and any half-written
   * one (`.pt.tmp`) a save cut short by a second signal left: no save is under way when a checkpoint is published. */
  point(pointer: CheckpointPointer): void {
    this.writeJson("checkpoint.json", pointer);
    const named = new Set([pointer.worker, ...pointer.earlier.map((p) => p.worker)].map((w) => basename(w)));
    const dir = join(this.path, "checkpoints");
    for (const f of readdirSync(dir)) if (/^iter-\d+\.pt(\.tmp)?$/.test(f) && !named.has(f)) rmSync(join(dir, f), { force: true });
  }

  /** Moves an unreadable checkpoint file aside (kept for a look, never loaded again); returns its new name. */
  setAside(worker: string): string {
    const to = `${worker}.unreadable`;
    renameSync(join(this.path, worker), join(this.path, to));
    return to;
  }
}

/** mkdir -p that reports the real cause: Node's recursive mkdir says ENOENT on a read-only file system. */
function makeDirs(path: string): void {
  const parent = dirname(path);
  if (parent !== path && !existsSync(parent)) makeDirs(parent);
  try {
    mkdirSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw ioError("create", path, e);
  }
}

const CAUSES: Record<string, string> = {
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  ENOTDIR: "a part of the path is a file, not a directory",
  ENOENT: "no such file or directory",
  EIO: "input/output error",
  EISDIR: "it is a directory, not a file",
};

/** A file-system failure as a message naming the file and the cause; what was written before is kept, and
 * the run continues from its last checkpoint with --resume once the cause is fixed. */
export function ioError(action: string, file: string, e: unknown): RunDirError {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  const cause = CAUSES[code] ? `${CAUSES[code]} (${code})` : (e as Error).message;
  return new RunDirError(`cannot ${action} ${file}: ${cause}`);
}

export class RunDirError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = "RunDirError";
  }
}
