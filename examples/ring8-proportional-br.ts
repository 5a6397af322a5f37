// A controller of your own: a proportional BR controller for D's density, in place of ADAPT's band rule.
//   ddst run examples/ring8-proportional-br.ts
// G keeps the paper's DST (the method's built-in rule); this controller steers BR towards `target` by moving
// d_D in proportion to the error, each change clamped. docs/controllers.md explains the interface.
import { defineController, defineExperiment } from "ddst";

/** Knobs of the controller, kept apart so a table can vary them. */
export const settings = { target: 0.5, gain: 0.5, maxStep: 0.02, floor: 0.05, every: 100, smoothing: 0.5 };

type State = { smoothed: number | null; decisions: number };

export const proportionalBr = defineController<State>({
  name: "proportional-br",
  every: settings.every,
  initialState: () => ({ smoothed: null, decisions: 0 }),
  decide(view, state) {
    if (view.br.value === null || view.br.count < 5) return {}; // too few probes to act on
    // Exponential smoothing across decisions: the state a resume must restore exactly.
    const smoothed = state.smoothed === null ? view.br.value : settings.smoothing * state.smoothed + (1 - settings.smoothing) * view.br.value;
    // BR above target: D reacts too little to G's step (too weak), so it gets denser; below: sparser.
    const raw = settings.gain * (smoothed - settings.target);
    const step = Math.max(-settings.maxStep, Math.min(settings.maxStep, raw));
    const from = view.densities.discriminator.target;
    const to = Math.round(Math.max(settings.floor, Math.min(1, from + step)) * 1000) / 1000;
    const next = { smoothed, decisions: state.decisions + 1 };
    const note = { br: view.br.value, smoothed, step, densityD: to };
    if (Math.abs(to - from) < 1e-9) return { state: next, note };
    return { actions: [{ op: "setDensity", net: "discriminator", target: to }], state: next, note };
  },
});

export default defineExperiment({
  name: "ring8-proportional-br",
  method: "sdst-balance-rigl",
  density: 0.3,
  iterations: 1500,
  model: { name: "mlp2d", hidden: 256, depth: 2, latentDim: 2 },
  data: { name: "ring8" },
  train: { batchSize: 256, nCritic: 1, lrG: 0.001, lrD: 0.001, betas: [0.5, 0.9], ema: null },
  generator: { dst: { every: 100 } },
  log: { every: 50 },
  checkpoint: { every: 500 },
  eval: { samples: 2000 },
  controllers: [proportionalBr],
});
