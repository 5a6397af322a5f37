import type { z } from "zod";
import type { Experiment } from "../config/experiment.js";
import { StatsResult, TrainResult, type LayerInfo } from "../protocol/messages.js";
import { probeEvery } from "../run/events.js";
import { startingMasks } from "../sparsity/erk.js";
import { buildShapeOnly } from "../worker/shape-only-build.js";
import type { Worker } from "../worker/worker.js";

/** Timing an experiment's training iterations on a worker: its networks at the starting densities on data
 * of the right shape (no files read), the run's own probe cadence. Mask updates and evaluations are not
 * timed. Serves `ddst table --plan` and `ddst bench --paper`. */

export type TrainProfile = NonNullable<z.infer<typeof TrainResult>["profile"]>;

/** Build the experiment's networks on `device` and set its starting masks; -> the layer table. */
export async function prepareTiming(worker: Worker, exp: Experiment, device: "cpu" | "cuda"): Promise<LayerInfo[]> {
  const layers = await buildShapeOnly(worker, exp, device);
  await worker.ask("setMasks", startingMasks(layers, exp), StatsResult);
  return layers;
}

/** Train iterations start..start+iterations-1 -> wall seconds as the orchestrator sees them (one request), and
 * the worker's profile when asked for. */
export async function timeIterations(worker: Worker, exp: Experiment, start: number, iterations: number, profile = false): Promise<{ seconds: number; profile?: TrainProfile }> {
  const t0 = performance.now();
  const r = await worker.ask("train", { start, iterations, probeEvery: probeEvery(exp), ...(profile ? { profile } : {}) }, TrainResult);
  return { seconds: (performance.now() - t0) / 1000, profile: r.profile };
}

/** prepareTiming, then iterations 1..warmup untimed (lazy set-up, CUDA graph capture); -> the layer table. */
export async function warmedUp(worker: Worker, exp: Experiment, device: "cpu" | "cuda", warmup: number): Promise<LayerInfo[]> {
  const layers = await prepareTiming(worker, exp, device);
  if (warmup > 0) await timeIterations(worker, exp, 1, warmup);
  return layers;
}

/** Seconds per iteration after a warm-up of `warmup` iterations, over `iterations` timed ones. */
export async function secondsPerIteration(worker: Worker, exp: Experiment, device: "cpu" | "cuda", iterations: number, warmup = 2): Promise<{ seconds: number; layers: LayerInfo[] }> {
  const layers = await warmedUp(worker, exp, device, warmup);
  const { seconds } = await timeIterations(worker, exp, warmup + 1, iterations);
  return { seconds: seconds / iterations, layers };
}
