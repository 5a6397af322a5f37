// An experiment as a TypeScript module: `ddst run examples/ring8-adapt-strict.ts`.
import { defineExperiment } from "ddst";

export default defineExperiment({
  name: "ring8-adapt-strict",
  method: "adapt-strict",
  density: 0.1,
  iterations: 400,
  model: { name: "mlp2d", hidden: 128, depth: 2 },
  data: { name: "ring8" },
  train: { batchSize: 256, lrG: 0.002, lrD: 0.0005, betas: [0.5, 0.9] },
  generator: { dst: { every: 50 } },
  discriminator: { controller: { every: 100, window: 100, cap: 0.3 } },
});
