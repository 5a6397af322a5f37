import type { Experiment } from "../config/experiment.js";
import { BuildResult, type LayerInfo } from "../protocol/messages.js";
import { WorkerRequestError } from "../protocol/client.js";
import { shapeOnlyData } from "../report/plan-flops.js";
import { resolveDataPaths } from "../config/data-paths.js";
import { InputError } from "../input-error.js";
import { trainArgs } from "../vocabulary/networks.js";
import { Worker } from "./worker.js";

/** An experiment's networks built without its data: the same model on data of the right shape (nothing is
 * read but an npy file, whose shape only it holds), for what needs only their layers (FLOPs ahead of training, a
 * table's pre-flight, timings). */

/** Builds `exp`'s networks on `worker` -> the layer table. */
export async function buildShapeOnly(worker: Worker, exp: Experiment, device: "cpu" | "cuda" = "cpu"): Promise<LayerInfo[]> {
  // An npy file is read for its shape, and its path may name ${VAR}s as any data path does.
  const data = shapeOnlyData(exp.data.name === "npy" ? resolveDataPaths(exp.data) : exp.data);
  const built = await worker.ask("build", { seed: exp.seed, device, model: exp.model, data, train: trainArgs(exp.train) }, BuildResult);
  return built.layers;
}

/** A network the worker refuses to build (a bad_value reply) is the input's fault, every run of it would fail
 * the same way: an InputError headed by `what`. Any other error is `e` itself. */
export function refusedBuild(e: unknown, what: string): unknown {
  return e instanceof WorkerRequestError && e.code === "bad_value" ? new InputError(`${what}: ${e.message.replace(/^worker \w+: bad_value: /, "")}`) : e;
}

/** `exp`'s layer table from a CPU worker of its own, started and stopped here (refusedBuild names `exp`). */
export async function layerTableOf(exp: Experiment, python?: string): Promise<LayerInfo[]> {
  const worker = await Worker.start({ python, threads: 1 });
  try {
    return await buildShapeOnly(worker, exp);
  } catch (e) {
    throw refusedBuild(e, exp.name);
  } finally {
    await worker.stop();
  }
}
