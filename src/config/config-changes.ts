import { isJsonObject } from "../vocabulary/schema-shapes.js";
import { Experiment } from "./experiment.js";

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

/** How often a run writes its loss records and evaluates its generator. Neither touches what the built-in rules
 * train (the loss sums carry over to the next record; an evaluation draws from random streams of its own), but an
 * experiment's own controllers may be called at evaluations and see the latest loss record and the evaluations:
 * there they decide what is trained. */
const CADENCE_FIELDS = ["log.every", "eval.every"] as const;
export const cadenceFields = (exp: Experiment): readonly string[] => (exp.controllers?.length ? [] : CADENCE_FIELDS);

/** How a CUDA step is executed, not what it computes: the same kernels replayed as a graph, activations in another
 * layout, fused kernels from torch.compile (float-level differences, as between two GPUs). A run may turn them
 * off, e.g. after a failed capture. (python/ddst_worker/checkpoint.py's EXECUTION is the worker's copy.) */
export const EXECUTION_FIELDS = ["train.cudaGraphs", "train.channelsLast", "train.compile"] as const;

/** What a resume lets config.json change: the run's length (--iterations writes it), how the run is supervised
 * and checkpointed, how often it logs and evaluates (without controllers of its own), how its CUDA steps are
 * executed, where its files are (a run moved to another machine; its controllers' modules too) and its name;
 * everything else decides what is trained. */
const editableOnResume = (trained: Experiment) =>
  new Set<string>(["iterations", "name", ...SUPERVISION_FIELDS, ...cadenceFields(trained), ...EXECUTION_FIELDS, ...PATH_FIELDS]);

/** The config a checkpoint was written under (checkpoint.json's `config`), read through today's schema: one
 * written by a resume of an older run holds the defaults its config.json leaves out, and a field a newer ddst adds
 * with a default is no change. Null when absent (runs from before it was kept: nothing can be said) or unreadable. */
export function trainedConfig(pointerConfig: unknown): Experiment | null {
  if (pointerConfig === undefined) return null;
  const parsed = Experiment.safeParse(pointerConfig);
  return parsed.success ? parsed.data : null;
}

/** The changes of `config` (a run's config.json, parsed) since `trained` (trainedConfig of its newest checkpoint). */
export function editsSinceCheckpoint(config: Experiment, trained: Experiment | null): string[] {
  return trained ? configChanges(comparable(trained), comparable(config), editableOnResume(trained)) : [];
}

/** JSON as stored, with the controllers' module paths left out (they move with the run, like the data). */
export function comparable(exp: Experiment): unknown {
  const json = JSON.parse(JSON.stringify(exp)) as Record<string, unknown>;
  if (Array.isArray(json.controllers))
    json.controllers = json.controllers.map((c) => {
      if (!isJsonObject(c)) return c;
      const { module: _module, ...rest } = c;
      return rest;
    });
  return json;
}
