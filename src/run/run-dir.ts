import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MetricRecord } from "./records.js";
import { CheckpointPointer } from "./run-state.js";

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
    mkdirSync(join(path, "checkpoints"), { recursive: true });
    return new RunDir(path);
  }

  static checkFree(path: string): void {
    if (existsSync(path) && readdirSync(path).length > 0)
      throw new RunDirError(`${path} already exists and is not empty; choose another --out, remove it, or continue it with --resume ${path}`);
  }

  /** An existing run, for --resume. */
  static open(path: string): RunDir {
    for (const f of ["config.json", "checkpoint.json"])
      if (!existsSync(join(path, f)))
        throw new RunDirError(`${path} is not a resumable run: ${f} is missing (was it started by ddst run, and did it write its first checkpoint?)`);
    return new RunDir(path);
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

  writeJson(name: string, value: unknown): void {
    const tmp = join(this.path, `.${name}.tmp`);
    writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
    renameSync(tmp, join(this.path, name));
  }

  append(records: readonly MetricRecord[]): void {
    if (records.length === 0) return;
    appendFileSync(this.metricsPath, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  }

  metricsBytes(): number {
    return existsSync(this.metricsPath) ? statSync(this.metricsPath).size : 0;
  }

  /** Drops whatever was appended after a checkpoint, so no iteration is recorded twice. */
  truncateMetrics(bytes: number): void {
    if (this.metricsBytes() > bytes) truncateSync(this.metricsPath, bytes);
  }

  workerCheckpoint(iter: number): { relative: string; absolute: string } {
    const relative = join("checkpoints", `iter-${String(iter).padStart(9, "0")}.pt`);
    return { relative, absolute: join(this.path, relative) };
  }

  readPointer(): CheckpointPointer {
    const parsed = CheckpointPointer.safeParse(this.readJson("checkpoint.json"));
    if (!parsed.success) throw new RunDirError(`${join(this.path, "checkpoint.json")} is not a ddst checkpoint pointer: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  }

  /** Publishes a checkpoint and removes all but the newest `keep` worker files. */
  publish(pointer: CheckpointPointer, keep: number): void {
    this.writeJson("checkpoint.json", pointer);
    const dir = join(this.path, "checkpoints");
    const files = readdirSync(dir).filter((f) => /^iter-\d+\.pt$/.test(f)).sort();
    for (const f of files.slice(0, Math.max(0, files.length - keep))) rmSync(join(dir, f), { force: true });
  }
}

export class RunDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunDirError";
  }
}
