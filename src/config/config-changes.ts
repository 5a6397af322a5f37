import { isJsonObject } from "../vocabulary/schema-shapes.js";

/** Where two resolved experiments differ, field by field: "train.lrG: 0.0002 -> 0.001". A run's config.json is
 * compared with what its checkpoint was written under, a table cell's with what the table asks for now; the
 * fields in `skip` (dotted paths: "supervision", "data.path") are the ones the caller lets change. */
export function configChanges(before: unknown, after: unknown, skip: ReadonlySet<string>, path = ""): string[] {
  if (skip.has(path)) return [];
  if (isJsonObject(before) && isJsonObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => configChanges(before[k], after[k], skip, path ? `${path}.${k}` : k));
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  const show = (x: unknown) => (x === undefined ? "(absent)" : JSON.stringify(x));
  return [`${path || "(root)"}: ${show(before)} -> ${show(after)}`];
}

/** Settings that say how a run is supervised and checkpointed, not what it trains (resume is bitwise across them). */
export const SUPERVISION_FIELDS = ["supervision", "checkpoint"] as const;

/** Where the files are: a run or a table copied to another machine, or data moved, names them anew. */
export const PATH_FIELDS = ["data.path", "eval.inception"] as const;

/** The first few changes, for a message. */
export const changesText = (changes: readonly string[]) =>
  `${changes.slice(0, 4).join("; ")}${changes.length > 4 ? `; and ${changes.length - 4} more` : ""}`;
