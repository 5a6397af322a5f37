import { execa } from "execa";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MODEL_NAMES, ModelSpec } from "../vocabulary/networks.js";
import { findPython } from "../worker/discover.js";
import { packageRoot } from "../worker/paths.js";
import { intOption, UsageError } from "./args.js";

/** `ddst bench`: masked vs dense iteration and a global prune-and-grow, timed in the worker. */
export async function cmdBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string", default: "sngan32" },
      batch: { type: "string", default: "64" },
      iters: { type: "string", default: "3" },
      device: { type: "string", default: "cpu" },
      json: { type: "boolean", default: false },
    },
  });
  const model = ModelSpec.safeParse({ name: values.model });
  if (!model.success) throw new UsageError(`unknown model '${values.model}'; known: ${MODEL_NAMES.join(", ")}`);
  if (values.device !== "cpu" && values.device !== "cuda") throw new UsageError(`--device must be cpu or cuda, got '${values.device}'`);
  const batch = intOption("batch", values.batch)!;
  const iters = intOption("iters", values.iters)!;
  if (batch < 1 || iters < 1) throw new UsageError(`--batch and --iters must be at least 1, got ${batch} and ${iters}`);
  const python = (await findPython()).path;
  const root = packageRoot();
  const r = await execa(python, ["-m", "ddst_worker.bench", "--model", values.model, "--batch", String(batch), "--iters", String(iters), "--device", values.device], {
    env: { PYTHONPATH: join(root, "python"), DDST_SCHEMAS: join(root, "schemas") },
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`the benchmark failed:\n${r.stderr}`);
  const b = JSON.parse(String(r.stdout).trim().split("\n").pop()!) as Record<string, number | string>;
  if (values.json) {
    console.log(JSON.stringify(b));
    return 0;
  }
  const s = (x: unknown) => `${Number(x).toFixed(3)} s`;
  console.log(`${b.model} batch ${b.batch}, ${b.device}, torch ${b.torch}, ${b.threads} threads, median of ${b.iters} after a warm-up`);
  console.log(`  dense training iteration          ${s(b.denseIterS)}`);
  console.log(`  masked iteration (density ${b.density})     ${s(b.maskedIterS)}   ${Number(b.maskedOverDense).toFixed(3)}x dense   (target <= 1.10x)`);
  console.log(`  global prune-and-grow of G         ${s(b.dstStepS)}   ${Number(b.dstOverMaskedIter).toFixed(3)}x an iteration (target <= 3x)`);
  return 0;
}
