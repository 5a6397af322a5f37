import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { MetricRecord } from "../run/records.js";
import { ioError, RunDirError } from "../run/run-dir.js";

/** metrics.jsonl's records; a line that is not a record is an error naming the file and the line. */
export function readRecords(dir: string): MetricRecord[] {
  if (!existsSync(dir)) throw new RunDirError(`${dir} does not exist; readRecords takes a run directory`);
  if (!statSync(dir).isDirectory()) throw new RunDirError(`${dir} is a file; readRecords takes the run directory that holds metrics.jsonl`);
  if (existsSync(join(dir, "table-spec.json"))) throw new RunDirError(`${dir} is a table directory; its cells' runs are in ${join(dir, "cells")}`);
  const file = join(dir, "metrics.jsonl");
  if (!existsSync(file)) return []; // a run before its first record
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw ioError("read", file, e);
  }
  const records: MetricRecord[] = [];
  const lines = text.split("\n");
  // Numbered as an editor numbers them: blank lines count.
  for (const [i, l] of lines.entries()) {
    if (!l.trim()) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(l);
    } catch {
      // A last line without its newline is a record being written (a running run) or cut by a crash (which a resume
      // refuses, naming it): what comes before is whole.
      if (i === lines.length - 1) break;
      throw new RunDirError(`${file}:${i + 1} is not JSON`);
    }
    const r = MetricRecord.safeParse(parsed);
    if (!r.success) throw new RunDirError(`${file}:${i + 1} is not a ddst metrics record: ${r.error.issues[0]?.message}`);
    records.push(r.data);
  }
  return records;
}
