import type { Experiment } from "../config/experiment.js";
import type { CapDstPolicy } from "../config/policies.js";
import { decideDensity } from "../controller/density-rule.js";
import { deathRate } from "../sparsity/schedule.js";
import type { DensityGrowth, NetName } from "../vocabulary/criteria.js";
import { isControllerIter, isGeneratorDstIter } from "./events.js";
import type { MetricRecord } from "./records.js";

/** What is due after iteration t, decided without the worker: G's DST step, then D's density controller.
 * Pure, so every method's cadence and rule are tested without Python; the run loop carries the actions out. */

export type Action =
  | { op: "dstStep"; net: NetName; policy: CapDstPolicy; dropRate: number }
  | { op: "setDensity"; net: "discriminator"; target: number; growth: DensityGrowth };

export interface Decisions {
  actions: Action[];
  /** The controller's record (a hold included) when it decided at t, written after the actions' records. */
  controller: Extract<MetricRecord, { kind: "controller" }> | null;
  /** D's density after the decisions. */
  densityD: number;
}

export interface WindowView {
  readonly full: boolean;
  readonly value: number;
}

export function decisionsAfter(exp: Experiment, t: number, window: WindowView, densityD: number): Decisions {
  const T = exp.iterations;
  const actions: Action[] = [];
  const g = exp.generator.dst;
  if (g && isGeneratorDstIter(exp, t)) actions.push({ op: "dstStep", net: "generator", policy: g, dropRate: deathRate(g.schedule, g.deathRate, g.floor, t, T) });
  const c = exp.discriminator.controller;
  if (!c || !isControllerIter(exp, t) || !window.full) return { actions, controller: null, densityD };
  const br = window.value;
  const d = decideDensity(c, br, densityD);
  if (d.decision === "increase" || d.decision === "decrease") actions.push({ op: "setDensity", net: "discriminator", target: d.densityD, growth: c.growth });
  else if (d.decision === "dst" && c.capDst) {
    // D's own schedule counts D steps.
    const n = exp.train.nCritic;
    actions.push({ op: "dstStep", net: "discriminator", policy: c.capDst, dropRate: deathRate(c.capDst.schedule, c.capDst.deathRate, c.capDst.floor, t * n, T * n) });
  }
  return {
    actions,
    controller: { iter: t, kind: "controller", br, lower: c.lower, upper: c.upper, decision: d.decision, densityD: d.densityD },
    densityD: d.densityD,
  };
}
