import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { editsSinceCheckpoint, trainedConfig } from "../config/config-changes.js";
import { Experiment } from "../config/experiment.js";
import { readJsonAs, readTail, UnreadableFileError } from "../files.js";
import { liveHolder } from "./dir-lock.js";
import { isFinishedRun, Summary } from "./records.js";
import { CheckpointPointer } from "./run-state.js";
import { recordIter } from "./run-dir.js";

/** Where a run directory stands, read from its files alone (`ddst ls`, `ddst show`): nothing is started. */

/** failed.json: written when a run stops on an error (not an interruption), removed when a resume is accepted.
 * `divergedAt`: the iteration at which training went to NaN or infinity, when that stopped it. */
export const FailedRecord = z.object({
  error: z.string(),
  iter: z.number().int().nullable(),
  at: z.string(),
  divergedAt: z.number().int().optional(),
  /** The Slurm job (array task, "7_3") it failed in, when it ran in one. */
  slurmTask: z.string().optional(),
});
export type FailedRecord = z.infer<typeof FailedRecord>;

/** The iteration at which the training recorded in failed.json diverged, or undefined when something else stopped
 * it. Records of ddst versions before `divergedAt` say it only in their message (DivergedError's). */
export function divergedAt(failure: FailedRecord): number | undefined {
  if (failure.divergedAt !== undefined) return failure.divergedAt;
  const m = /^training diverged at iteration (\d+):/.exec(failure.error);
  return m ? Number(m[1]) : undefined;
}

export type RunStatus = {
  dir: string;
  /** What was trained: config.json, or, where it was edited after the newest checkpoint, the config that
   * checkpoint was written under (with config.json's iterations, which a resume may change). */
  experiment: Experiment;
  /** The fields of config.json edited after the newest checkpoint ("method: ... -> ..."); empty when none. */
  edited: string[];
  /** Iterations done (the newest checkpoint's; a running run's, its newest record's) and planned. */
  iter: number;
  planned: number;
  summary: Summary | null;
} & (
  | { kind: "finished" | "interrupted" | "unstarted" }
  | { kind: "running"; pid: number }
  /** "diverged": its training went to NaN or infinity (failure.divergedAt); resuming repeats the same steps. */
  | { kind: "failed" | "diverged"; failure: FailedRecord }
  /** A bookkeeping file the run cannot go on without is unreadable (damaged from outside: ddst writes whole files). */
  | { kind: "damaged"; damage: string }
);

/** The run in `dir`, or null when `dir` holds no readable ddst run (no or invalid config.json). A config.json
 * there that cannot be read at all throws UnreadableFileError; any other file of the run that cannot be read
 * makes it "damaged", naming the file. */
export function runStatus(dir: string): RunStatus | null {
  const config = readJsonAs(join(dir, "config.json"), Experiment);
  if (!config) return null;
  try {
    return statusOf(dir, config);
  } catch (e) {
    if (!(e instanceof UnreadableFileError)) throw e;
    return { dir, experiment: config, edited: [], iter: 0, planned: config.iterations, summary: null, kind: "damaged", damage: e.message };
  }
}

/** runStatus, or why `dir`'s config.json cannot be read at all (permissions, say): for listings, where one
 * such directory must not hide the others. */
export function statusOrUnreadable(dir: string): { status: RunStatus | null; unreadable?: string } {
  try {
    return { status: runStatus(dir) };
  } catch (e) {
    if (e instanceof UnreadableFileError) return { status: null, unreadable: e.message };
    throw e;
  }
}

function statusOf(dir: string, config: Experiment): RunStatus {
  const pointerFile = join(dir, "checkpoint.json");
  const pointer = readJsonAs(pointerFile, CheckpointPointer);
  const summary = readJsonAs(join(dir, "summary.json"), Summary);
  // What config.json says is what was trained only if nobody edited it since (show, ls and report print it).
  const trained = trainedConfig(pointer?.config);
  const edited = editsSinceCheckpoint(config, trained);
  const experiment = edited.length && trained ? { ...trained, iterations: config.iterations } : config;
  const base = { dir, experiment, edited, iter: pointer?.iter ?? 0, planned: experiment.iterations, summary };
  const holder = liveHolder(join(dir, "run.lock"));
  if (holder) return { ...base, iter: Math.max(base.iter, newestRecordIter(dir) ?? 0), kind: "running", pid: holder.pid };
  if (isFinishedRun(summary, base.iter, experiment.iterations)) return { ...base, kind: "finished" };
  if (!pointer && existsSync(pointerFile)) return { ...base, kind: "damaged", damage: "checkpoint.json unreadable, so --resume cannot continue it" };
  const failure = readJsonAs(join(dir, "failed.json"), FailedRecord);
  if (failure) return { ...base, kind: divergedAt(failure) === undefined ? "failed" : "diverged", failure };
  return { ...base, kind: pointer ? "interrupted" : "unstarted" };
}

/** The iteration of metrics.jsonl's last whole record, read from the file's end (a running run's progress, which
 * its checkpoint lags by up to checkpoint.every); undefined when there is none. */
function newestRecordIter(dir: string): number | undefined {
  try {
    const { text, whole } = readTail(join(dir, "metrics.jsonl"), 65_536);
    const tail = text.split("\n");
    const first = whole ? 0 : 1; // read from the middle of the file, the first line is cut
    // A line being written, or the cut one at the tail's start, is no record (recordIter: Infinity).
    for (let i = tail.length - 1; i >= first; i--) {
      const iter = recordIter(tail[i]!);
      if (Number.isFinite(iter)) return iter;
    }
  } catch {
    /* no records yet */
  }
  return undefined;
}

/** "kl 0.1014" from a summary's final evaluation; "kl n/a" when that evaluation has no value for it (a generator
 * with no high-quality sample has no KL); null without an evaluation. */
export function finalMetric(summary: Summary | null, digits = 4): string | null {
  const ev = summary?.eval;
  if (!ev?.final || !ev.primary) return null;
  const v = ev.final.metrics[ev.primary];
  return `${ev.primary} ${v === undefined ? "n/a" : v.toFixed(digits)}`;
}
