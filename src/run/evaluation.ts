import { join } from "node:path";
import { expandEnv } from "../config/data-paths.js";
import { defaultMetrics, type Experiment } from "../config/experiment.js";
import type { OpArgs } from "../protocol/messages.js";
import { cacheDir } from "../worker/paths.js";
import type { z } from "zod";
import { primaryMetric, type MetricRecord } from "./records.js";
import type { RunState } from "./run-state.js";

/** Evaluations of the EMA generator: what the worker is asked, and the final and best results a run keeps
 * (ranked by the primary metric, lower is better). The noise is the evaluation's own: training is unaffected. */

/** The sample grid or scatter plot of the evaluation after iteration t, relative to the run directory (`tag`: a
 * second evaluation at the same iteration). */
export const picturePath = (t: number, tag?: string) => join("samples", `iter-${String(t).padStart(9, "0")}${tag ? `-${tag}` : ""}.png`);

export function evaluateArgs(exp: Experiment, runDir: string, t: number, tag?: string): z.infer<(typeof OpArgs)["evaluate"]> {
  const ev = exp.eval!;
  return {
    metrics: ev.metrics ?? defaultMetrics(exp.data.name),
    samples: ev.samples,
    seed: ev.seed,
    batchSize: ev.batchSize,
    batchNorm: ev.batchNorm,
    reference: ev.reference,
    ...(ev.inception ? { inception: expandEnv(ev.inception, "eval.inception") } : {}),
    cacheDir: cacheDir(),
    picture: join(runDir, picturePath(t, tag)),
  };
}

/** The metric that ranks this experiment's evaluations, from the metrics it asks for (fid, else the classifier's
 * FID, else the toy KL): a property of the run, so a final evaluation without a value for it (a generator
 * with no high-quality sample has no KL) still names it, and a table counts that seed as finished without a
 * value instead of losing it. */
export function configuredPrimary(exp: Experiment): string | null {
  if (!exp.eval) return null;
  const asked: readonly string[] = exp.eval.metrics ?? defaultMetrics(exp.data.name);
  return ([["fid", "fid"], ["classifier", "classifierFid"], ["toy", "kl"]] as const).find(([kind]) => asked.includes(kind))?.[1] ?? null;
}

/** Records an evaluation in the run's state (final, and best when its primary metric is lower) and returns its
 * record. Wall time stays out of metrics.jsonl, which is reproducible byte for byte; worker.log has it. */
export function recordEvaluation(state: RunState["eval"], t: number, metrics: Record<string, number>, pictured: boolean, tag?: string): MetricRecord {
  const point = { iter: t, metrics };
  state.final = point;
  const key = primaryMetric(metrics);
  const best = state.best;
  if (key && (!best || !(key in best.metrics) || metrics[key]! < best.metrics[key]!)) state.best = point;
  return { iter: t, kind: "eval", metrics, picture: pictured ? picturePath(t, tag) : null };
}
