import { appendFileSync, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MetricRecord } from "./records.js";

/** The run directory: config.json, metrics.jsonl, summary.json, worker.log. Files are written so that an
 * interrupted run keeps everything written before the interruption. */
export class RunDir {
  readonly metricsPath: string;

  private constructor(readonly path: string) {
    this.metricsPath = join(path, "metrics.jsonl");
  }

  /** Refuses a non-empty directory: an existing run is never overwritten. */
  static create(path: string): RunDir {
    if (existsSync(path) && readdirSync(path).length > 0)
      throw new RunDirError(`${path} already exists and is not empty; choose another --out or remove it`);
    mkdirSync(path, { recursive: true });
    return new RunDir(path);
  }

  static checkFree(path: string): void {
    if (existsSync(path) && readdirSync(path).length > 0)
      throw new RunDirError(`${path} already exists and is not empty; choose another --out or remove it`);
  }

  get logPath(): string {
    return join(this.path, "worker.log");
  }

  writeJson(name: string, value: unknown): void {
    // Temporary file then rename: a reader never sees half a file.
    const tmp = join(this.path, `.${name}.tmp`);
    writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
    renameSync(tmp, join(this.path, name));
  }

  append(records: readonly MetricRecord[]): void {
    if (records.length === 0) return;
    appendFileSync(this.metricsPath, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  }
}

export class RunDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunDirError";
  }
}
