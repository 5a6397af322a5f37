import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { InputError } from "../input-error.js";

/** DIR/slurm/submissions.jsonl: one line per submitted job array, saying which cells each of its tasks runs,
 * so that `--status` can name a cell's job and task, and a new submission leaves queued cells alone. */

export const Submission = z.strictObject({
  job: z.string().regex(/^\d+$/),
  at: z.string(),
  /** Cell ids per array task index. */
  tasks: z.array(z.array(z.string())),
  script: z.string(),
});
export type Submission = z.infer<typeof Submission>;

export class SubmissionsError extends InputError {}

export const slurmDir = (out: string) => join(out, "slurm");
const file = (out: string) => join(slurmDir(out), "submissions.jsonl");

export function readSubmissions(out: string): Submission[] {
  const path = file(out);
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, "utf8").split("\n");
  return lines.flatMap((line, i) => {
    if (!line.trim()) return [];
    let parsed;
    try {
      parsed = Submission.safeParse(JSON.parse(line));
    } catch {
      parsed = null;
    }
    if (parsed?.success) return [parsed.data];
    // A torn last line (the submitting process died mid-write) names no job that could be queried.
    if (i === lines.length - 1) return [];
    throw new SubmissionsError(`${path}, line ${i + 1}, is not a ddst submission record; fix or remove that line`);
  });
}

export function appendSubmission(out: string, s: Submission): void {
  appendFileSync(file(out), JSON.stringify(s) + "\n");
}

/** Where each cell was last submitted: its job and array task ("123_4"). */
export function lastTaskOfCells(subs: readonly Submission[]): Map<string, string> {
  const where = new Map<string, string>();
  for (const s of subs) s.tasks.forEach((cells, i) => cells.forEach((id) => where.set(id, `${s.job}_${i}`)));
  return where;
}
