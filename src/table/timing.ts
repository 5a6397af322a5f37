import type { Experiment } from "../config/experiment.js";
import { trainArgs } from "../vocabulary/networks.js";
import { BuildResult, StatsResult, TrainResult, type LayerInfo } from "../protocol/messages.js";
import { shapeOnlyData } from "../report/plan-flops.js";
import { probeEvery } from "../run/events.js";
import { startingMasks } from "../sparsity/erk.js";
import type { Worker } from "../worker/worker.js";

/** A short timing run for `ddst table --plan`: the cell's networks at its starting densities on data of the
 * right shape (no files read), a warm-up, then `iterations` timed training iterations. Mask updates and
 * evaluations are not timed. */
export async function secondsPerIteration(worker: Worker, exp: Experiment, device: "cpu" | "cuda", iterations: number): Promise<{ seconds: number; layers: LayerInfo[] }> {
  const built = await worker.ask("build", { seed: exp.seed, device, model: exp.model, data: shapeOnlyData(exp.data), train: trainArgs(exp.train) }, BuildResult);
  await worker.ask("setMasks", startingMasks(built.layers, exp), StatsResult);
  const every = probeEvery(exp);
  await worker.ask("train", { start: 1, iterations: 2, probeEvery: every }, TrainResult);
  const t0 = performance.now();
  await worker.ask("train", { start: 3, iterations, probeEvery: every }, TrainResult);
  return { seconds: (performance.now() - t0) / 1000 / iterations, layers: built.layers };
}
