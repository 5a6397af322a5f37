import { z } from "zod";
import { ControllerAction, Json } from "../controller/controller.js";

/** The records of metrics.jsonl: one JSON object per line, each with an integer `iter` and a `kind`. */

const Base = { iter: z.number().int().min(0) };

export const LossRecord = z.object({
  ...Base,
  kind: z.literal("loss"),
  d: z.number(),
  g: z.number(),
  flopsPerIteration: z
    .number()
    .optional()
    .describe("training FLOPs per iteration since the previous loss record (the mean, where a density changed in between), paper convention (absent in runs from before it was recorded)"),
});
export const BrRecord = z.object({
  ...Base,
  kind: z.literal("br"),
  br: z.number().nullable().describe("window value (mean of per-probe ratios); null while empty"),
  ratio: z.number().nullable().describe("this probe's own ratio"),
  probe: z.object({ fakePre: z.number(), fakePost: z.number(), real: z.number() }),
});
export const ControllerRecord = z.object({
  ...Base,
  kind: z.literal("controller"),
  br: z.number(),
  lower: z.number(),
  upper: z.number(),
  decision: z.enum(["increase", "decrease", "hold", "dst"]),
  densityD: z.number(),
});
export const DensityRecord = z.object({ ...Base, kind: z.literal("density"), generator: z.number(), discriminator: z.number() });
export const DstRecord = z.object({
  ...Base,
  kind: z.literal("dst"),
  net: z.enum(["generator", "discriminator"]),
  dropRate: z.number(),
  pruned: z.number().int(),
  grown: z.number().int(),
  regrown: z.number().int().optional().describe("of the grown, weights this step had just pruned (they stay as they were); absent in runs from before ddst counted them"),
  active: z.number().int(),
  total: z.number().int(),
});

export const RestartRecord = z.object({
  ...Base,
  kind: z.literal("restart"),
  attempt: z.number().int().min(1),
  reason: z.string().describe("why the worker was restarted (its death or hang)"),
  fromCheckpoint: z.number().int().describe("iteration of the checkpoint the run resumed from"),
});

export const EvalRecord = z.object({
  ...Base,
  kind: z.literal("eval"),
  metrics: z.record(z.string(), z.number()),
  picture: z.string().nullable().describe("sample grid or scatter plot, relative to the run directory"),
});

/** A call of an experiment's own controller that returned actions or a note (docs/controllers.md). */
export const DecisionRecord = z.object({
  ...Base,
  kind: z.literal("decision"),
  controller: z.string(),
  event: z.enum(["cadence", "evaluation"]),
  actions: z.array(ControllerAction),
  note: z.record(z.string(), Json).nullable(),
});

/** A controller ended the run before its planned iterations. */
export const StopRecord = z.object({ ...Base, kind: z.literal("stop"), controller: z.string(), reason: z.string() });

export const MetricRecord = z.discriminatedUnion("kind", [
  LossRecord,
  BrRecord,
  ControllerRecord,
  DensityRecord,
  DstRecord,
  RestartRecord,
  EvalRecord,
  DecisionRecord,
  StopRecord,
]);
export type MetricRecord = z.infer<typeof MetricRecord>;

export const EvalPoint = z.object({ iter: z.number().int(), metrics: z.record(z.string(), z.number()) });
export type EvalPoint = z.infer<typeof EvalPoint>;

/** The metric that ranks evaluations: lower is better for each. */
export function primaryMetric(metrics: Record<string, number>): string | null {
  for (const m of ["fid", "classifierFid", "kl"]) if (m in metrics) return m;
  return null;
}

export const Summary = z.object({
  name: z.string(),
  method: z.string(),
  iterations: z.number().int(),
  seed: z.number().int(),
  device: z.string(),
  wallSeconds: z.number(),
  worker: z.object({ python: z.string(), torch: z.string(), threads: z.number().int() }),
  final: z.object({ densityG: z.number(), densityD: z.number(), br: z.number().nullable() }),
  flops: z.object({
    convention: z.literal("paper"),
    generator: z.number(),
    discriminator: z.number(),
    total: z.number(),
    ratio: z.number().describe("total over the dense run of the same plan"),
    planned: z.number().int().optional().describe("the plan's iterations, over which that dense run is counted (absent in summaries of a ddst before it)"),
    executed: z.object({ generator: z.number(), discriminator: z.number(), total: z.number(), ratio: z.number() }),
  }),
  restarts: z.number().int(),
  stopped: z
    .object({ iter: z.number().int(), controller: z.string(), reason: z.string() })
    .optional()
    .describe("a controller ended the run here, before its planned iterations"),
  eval: z
    .object({
      final: EvalPoint.nullable(),
      best: EvalPoint.nullable().describe("the evaluation with the lowest primary metric (fid, else classifierFid, else kl)"),
      primary: z.string().nullable(),
    })
    .nullable(),
});
export type Summary = z.infer<typeof Summary>;

/** Whether a run whose newest checkpoint is at `iter` has finished, by its summary: all `planned` iterations
 * done, or ended there by one of its controllers. */
export function isFinishedRun(summary: Summary | null | undefined, iter: number, planned: number): summary is Summary {
  return !!summary && (iter >= planned || summary.stopped?.iter === iter);
}
