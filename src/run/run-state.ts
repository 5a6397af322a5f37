import { z } from "zod";
import { Json } from "../controller/controller.js";

/** Densities are in (0, 1]; a checkpoint.json saying otherwise was edited. */
const Density = z.number().gt(0).max(1);

/** Everything the orchestrator must remember to continue a run exactly where a checkpoint left it. The
 * orchestrator draws no random numbers, so it has no RNG state; the worker's RNG streams are in its file. */
export const RunState = z.object({
  iter: z.number().int().min(0),
  densityD: Density,
  window: z.object({ size: z.number().int().min(1), ratios: z.array(z.number()) }),
  /** The losses since the last loss record, and the FLOPs rate of each stretch of it ([rate, iterations]; absent in
   * checkpoints of a ddst before them). */
  lossSum: z.object({
    d: z.number(),
    g: z.number(),
    n: z.number().int().min(0),
    rates: z.array(z.tuple([z.number().min(0), z.number().int().min(1)])).optional(),
  }),
  flops: z.object({
    paper: z.object({ generator: z.number().min(0), discriminator: z.number().min(0) }),
    executed: z.object({ generator: z.number().min(0), discriminator: z.number().min(0) }),
  }),
  restarts: z.number().int().min(0),
  wallSeconds: z.number().min(0),
  eval: z.object({
    final: z.object({ iter: z.number().int(), metrics: z.record(z.string(), z.number()) }).nullable(),
    best: z.object({ iter: z.number().int(), metrics: z.record(z.string(), z.number()) }).nullable(),
  }),
  /** Length of metrics.jsonl when the checkpoint was taken: a resume cuts the file back to it. */
  metricsBytes: z.number().int().min(0),
  /** What the experiment's own controllers see and keep (absent in checkpoints from before controllers were
   * plug-ins, which had none): G's density as last set, the newest loss record, every evaluation, and each
   * controller's state by name. */
  densityG: Density.optional(),
  lastLoss: z.object({ iter: z.number().int(), d: z.number(), g: z.number() }).nullable().optional(),
  evals: z.array(z.object({ iter: z.number().int(), metrics: z.record(z.string(), z.number()) })).optional(),
  controllers: z.record(z.string(), Json).optional(),
  /** A controller's stop, once decided: a resume goes straight to the end of the run. */
  stopped: z.object({ iter: z.number().int(), controller: z.string(), reason: z.string() }).optional(),
  /** The iteration at which the run's end was recorded (the last evaluation and densities, then this
   * checkpoint): resuming there only writes summary.json again, and adds no record twice. */
  finishedAt: z.number().int().optional(),
  /** The iteration of the checkpoint written just before the final evaluation (so a failed evaluation keeps the
   * training): a resume there evaluates, unlike one from a checkpoint at the last iteration of a ddst before it. */
  evaluatingAt: z.number().int().optional(),
  /** The iteration of a checkpoint written when a periodic evaluation there failed: the evaluation and the
   * controllers' decisions at that iteration are still due, before any more training. */
  eventDueAt: z.number().int().optional(),
  /** The iteration of the last decision that changed G: an evaluation there came before it, so a run that ends
   * there evaluates again (kept here, so a resume between the stop and that evaluation still knows). */
  generatorChangedAt: z.number().int().optional(),
});
export type RunState = z.infer<typeof RunState>;

/** One complete checkpoint: the worker's file and the orchestrator's state at the same iteration. */
export const SavedCheckpoint = z.object({
  iter: z.number().int().min(0),
  // Only a name the run itself gives (RunDir.workerCheckpoint): a resume loads the file, and sets an unreadable one aside.
  worker: z
    .string()
    .regex(/^checkpoints\/iter-\d+\.pt$/, "not a checkpoint of this run (checkpoints/iter-<iteration>.pt)")
    .describe("worker checkpoint, relative to the run directory"),
  state: RunState,
});
export type SavedCheckpoint = z.infer<typeof SavedCheckpoint>;

/** checkpoint.json: the newest complete checkpoint, written last so it never names a half-written one, and the
 * older ones still kept (newest first), which a resume falls back to when a newer file cannot be read. */
export const CheckpointPointer = SavedCheckpoint.extend({
  earlier: z.array(SavedCheckpoint).default([]),
  /** config.json as it was when the newest checkpoint was written (absent in runs from before it was kept): a
   * resume refuses a config.json edited since. */
  config: z.unknown().optional(),
});
export type CheckpointPointer = z.infer<typeof CheckpointPointer>;
