// Open a finished run with live PyTorch objects (through pythonia), sample from its EMA generator and print
// the per-layer densities of both networks.
//
//   npx tsx examples/inspect-run.ts runs/ring8-adapt
import { openRun } from "ddst";

const dir = process.argv[2] ?? "runs/ring8-adapt";
const run = await openRun(dir);
try {
  console.log(`${dir}: checkpoint at iteration ${await run.iteration()}`);
  const points = await run.sample(8, 0);
  console.log(`8 samples from the EMA generator (first values of each): ${points.map((p) => Number(p[0]).toFixed(3)).join(" ")}`);
  const densities = await run.densities();
  for (const net of ["generator", "discriminator"] as const) {
    console.log(`${net}:`);
    for (const [layer, d] of Object.entries(densities[net])) console.log(`  ${layer.padEnd(24)} ${d.toFixed(4)}`);
  }
} finally {
  await run.close();
}
