import type { Experiment } from "../config/experiment.js";
import { deathRate } from "../sparsity/schedule.js";
import type { Controller, ControllerView } from "./controller.js";

/** G's dynamic sparse training (docs/method.md): every `every` iterations a prune-and-regrow step at a fixed
 * active count, its drop rate on the schedule over the run's iterations. */
export function generatorDst(exp: Experiment) {
  const g = exp.generator.dst;
  if (!g) return null;
  return {
    name: "generator-dst",
    every: g.every,
    records: "effects",
    initialState: () => null,
    decide: (view: ControllerView) => ({
      actions: [{ op: "dstStep" as const, net: "generator" as const, policy: g, dropRate: deathRate(g.schedule, g.deathRate, g.floor, view.iteration, view.iterations) }],
    }),
  } satisfies Controller<null>;
}
