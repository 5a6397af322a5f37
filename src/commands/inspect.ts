import { parseArgs } from "node:util";
import { MODEL_NAMES, ModelSpec, TrainSpec, trainArgs } from "../vocabulary/networks.js";
import { BuildResult } from "../protocol/messages.js";
import { dataForInspection, formatInspect, inspectNet } from "../report/inspect.js";
import { Worker } from "../worker/worker.js";
import { densityOption, UsageError } from "./args.js";

/** `ddst inspect`: parameter counts, densities and MACs of a network pair. */
export async function cmdInspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "density-g": { type: "string" },
      "density-d": { type: "string" },
      init: { type: "string", default: "erk" },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError("ddst inspect takes exactly one model name");
  const model = ModelSpec.safeParse({ name: positionals[0] });
  if (!model.success) throw new UsageError(`unknown model '${positionals[0]}'; known: ${MODEL_NAMES.join(", ")}`);
  const init = values.init;
  if (init !== "erk" && init !== "uniform") throw new UsageError(`--init must be erk or uniform, got '${init}'`);
  const dG = densityOption("density-g", values["density-g"]) ?? 1;
  const dD = densityOption("density-d", values["density-d"]) ?? dG;
  const worker = await Worker.start();
  try {
    const built = await worker.ask("build", { seed: 0, device: "cpu", model: model.data, data: dataForInspection(model.data), train: trainArgs(TrainSpec.parse({})) }, BuildResult);
    const nets = {
      generator: inspectNet(built.layers, "generator", dG, init),
      discriminator: inspectNet(built.layers, "discriminator", dD, init),
    };
    if (values.json) console.log(JSON.stringify(nets, null, 2));
    else console.log(formatInspect(model.data.name, nets, { generator: dG, discriminator: dD }, init));
    return 0;
  } finally {
    await worker.stop();
  }
}
