import type { Experiment } from "../config/experiment.js";
import { deathRate } from "../sparsity/schedule.js";
import type { Controller, MaskAction, ControllerView } from "./controller.js";
import { decideDensity } from "./density-rule.js";

/** D's density under the BR band rules (ADAPT relaxed and strict, DDA's band): once the BR window is full, every
 * `every` iterations, BR at or below B- takes a step of density away, at or above B+ adds one, and the strict
 * rule at the cap runs D's own DST step instead (its schedule counting D steps, as the reference). The rule
 * itself is density-rule.ts; this is its place in the run. Stateless: the density it moves from is D's target. */
export function balanceRule(exp: Experiment) {
  const c = exp.discriminator.controller;
  if (!c) return null;
  const n = exp.train.nCritic;
  return {
    name: "balance-rule",
    every: c.every,
    records: "effects",
    initialState: () => null,
    decide: (view: ControllerView) => {
      if (!view.br.full || view.br.value === null) return {};
      const br = view.br.value;
      const d = decideDensity(c, br, view.densities.discriminator.target);
      const actions: MaskAction[] = [];
      if (d.decision === "increase" || d.decision === "decrease") actions.push({ op: "setDensity", net: "discriminator", target: d.densityD, growth: c.growth });
      else if (d.decision === "dst" && c.capDst)
        actions.push({ op: "dstStep", net: "discriminator", policy: c.capDst, dropRate: deathRate(c.capDst.schedule, c.capDst.deathRate, c.capDst.floor, view.iteration * n, view.iterations * n) });
      return { actions, band: { br, lower: c.lower, upper: c.upper, decision: d.decision, densityD: d.densityD } };
    },
  } satisfies Controller<null>;
}
