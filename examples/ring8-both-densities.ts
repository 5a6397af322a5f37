// A controller that moves BOTH networks' densities:
//   ddst run examples/ring8-both-densities.ts
// Once per BR window it looks at BR: low for the whole window (D dominates) -> G gets denser (up to a cap) and
// D sparser; high (D too weak) -> D gets denser. docs/controllers.md explains the interface.
import { defineController, defineExperiment } from "ddst";

const band = { lower: 0.45, upper: 0.55 };
const step = { generator: 0.05, discriminator: 0.05 };
const caps = { generator: 0.5, discriminator: 1, floor: 0.05 };
/** The default BR window of a method without ADAPT's controller: 100 probes, one every 10 iterations. */
const WINDOW = 1000;

type State = { lowWindows: number; highWindows: number };

const round = (x: number) => Math.round(x * 1000) / 1000;

export const bothDensities = defineController<State>({
  name: "both-densities",
  every: WINDOW / 2,
  initialState: () => ({ lowWindows: 0, highWindows: 0 }),
  decide(view, state) {
    if (!view.br.full || view.br.value === null) return {};
    const br = view.br.value;
    const g = view.densities.generator.target;
    const d = view.densities.discriminator.target;
    if (br <= band.lower) {
      const actions = [];
      if (g < caps.generator) actions.push({ op: "setDensity" as const, net: "generator" as const, target: round(Math.min(caps.generator, g + step.generator)) });
      if (d > caps.floor) actions.push({ op: "setDensity" as const, net: "discriminator" as const, target: round(Math.max(caps.floor, d - step.discriminator)) });
      return { actions, state: { ...state, lowWindows: state.lowWindows + 1 }, note: { br, why: "BR low for a whole window: G denser, D sparser" } };
    }
    if (br >= band.upper && d < caps.discriminator) {
      const target = round(Math.min(caps.discriminator, d + step.discriminator));
      return { actions: [{ op: "setDensity", net: "discriminator", target }], state: { ...state, highWindows: state.highWindows + 1 }, note: { br, why: "BR high: D denser" } };
    }
    return {};
  },
});

export default defineExperiment({
  name: "ring8-both-densities",
  method: "static-balance",
  density: 0.1,
  iterations: 3000,
  model: { name: "mlp2d", hidden: 256, depth: 2, latentDim: 2 },
  data: { name: "ring8" },
  train: { batchSize: 256, nCritic: 1, lrG: 0.001, lrD: 0.001, betas: [0.5, 0.9], ema: null },
  log: { every: 50 },
  checkpoint: { every: 1000 },
  eval: { samples: 2000 },
  controllers: [bothDensities],
});
