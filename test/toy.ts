import { resolveExperiment, type Experiment, type ExperimentInput } from "../src/config/experiment.js";

/** The tests' toy experiment: ADAPT relaxed on the ring of 8 Gaussians with the small MLP pair. Overrides replace
 * whole top-level fields (a `model` given is the whole model). */
export function toyInput(overrides: Partial<ExperimentInput> = {}): ExperimentInput {
  return { method: "adapt-relax", density: 0.1, iterations: 400, model: { name: "mlp2d" }, data: { name: "ring8" }, ...overrides };
}

export function toyExperiment(overrides: Partial<ExperimentInput> = {}): Experiment {
  return resolveExperiment(toyInput(overrides));
}
