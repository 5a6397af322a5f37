import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MetricRecord } from "../run/records.js";
import { ioError, RunDirError } from "../run/run-dir.js";

/** metrics.jsonl's records; a line that is not a record is an error naming the file and the line. */
export function readRecords(dir: string): MetricRecord[] {
  const file = join(dir, "metrics.jsonl");
  if (!existsSync(file)) return [];
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw ioError("read", file, e);
  }
  const records: MetricRecord[] = [];
  // Numbered as an editor numbers them: blank lines count.
  for (const [i, l] of text.split("\n").entries()) {
    if (!l.trim()) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(l);
    } catch {
      throw new RunDirError(`${file}:${i + 1} is not JSON`);
    }
    const r = MetricRecord.safeParse(parsed);
    if (!r.success) throw new RunDirError(`${file}:${i + 1} is not a ddst metrics record: ${r.error.issues[0]?.message}`);
    records.push(r.data);
  }
  return records;
}
