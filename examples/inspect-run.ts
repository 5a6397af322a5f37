// Open a finished run with live PyTorch objects (through pythonia), sample from its generator (the EMA one where
// the run keeps an EMA) and print the per-layer densities of both networks.
//
//   node dist/cli.js run examples/ring8-adapt.json --out runs/ring8-adapt
//   npx tsx examples/inspect-run.ts runs/ring8-adapt
import { openRun } from "ddst";

const dir = process.argv[2] ?? "runs/ring8-adapt";
const run = await openRun(dir);
try {
  console.log(`${dir}: checkpoint at iteration ${await run.iteration()}`);
  const points = await run.sample(8, 0);
  console.log(`8 samples from the generator (the EMA one, if the run keeps one; first values of each): ${points.map((p) => Number(p[0]).toFixed(3)).join(" ")}`);
  const densities = await run.densities();
  for (const net of ["generator", "discriminator"] as const) {
    console.log(`${net}:`);
    for (const [layer, d] of Object.entries(densities[net])) console.log(`  ${layer.padEnd(24)} ${d.toFixed(4)}`);
  }
} finally {
  await run.close();
}
