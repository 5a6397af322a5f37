import { parseArgs } from "node:util";
import { loadExperiment } from "../config/load.js";
import { planFlops, whyNeedsRun, type PlanFlops } from "../report/plan-flops.js";
import { layerTableOf } from "../worker/shape-only-build.js";
import { UsageError } from "./args.js";

/** `ddst flops`: a plan's training FLOPs without training. */
export async function cmdFlops(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: "boolean", default: false }, set: { type: "string", multiple: true, default: [] } },
  });
  if (positionals.length !== 1) throw new UsageError("ddst flops takes exactly one experiment file");
  // Costs need shapes only, so data paths need not exist here.
  const exp = await loadExperiment(positionals[0]!, values.set, false);
  let result: PlanFlops;
  if (whyNeedsRun(exp)) result = planFlops(exp, []);
  else {
    result = planFlops(exp, await layerTableOf(exp));
  }
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else if (!result.known) console.log(`${exp.method}: ${result.reason}`);
  else {
    const p = result.paper;
    const x = result.executed;
    console.log(`${exp.method} at d_G ${exp.generator.density} (d_D ${exp.discriminator.density}), ${result.iterations} iterations:`);
    console.log(`  paper convention:    G ${p.generator.toExponential(3)}  D ${p.discriminator.toExponential(3)}  total ${p.total.toExponential(3)}  = ${(100 * p.ratio).toFixed(2)}% of dense (${p.dense.toExponential(3)})`);
    console.log(`  executed operations: G ${x.generator.toExponential(3)}  D ${x.discriminator.toExponential(3)}  total ${x.total.toExponential(3)}  = ${(100 * x.ratio).toFixed(2)}% of dense (${x.dense.toExponential(3)})`);
  }
  return 0;
}
