import type { Experiment } from "../config/experiment.js";
import { builtInControllers } from "../controller/built-in.js";
import { controllerEvent, type ControllerView, type MaskAction } from "../controller/controller.js";
import type { MetricRecord } from "./records.js";

/** What the paper's rules decide after iteration t, as a pure function of the BR window and D's density: the
 * built-in controllers (src/controller/) called as the run loop calls them, without a worker. The cadence
 * and rule tests use it; the run loop calls the same controllers through the general mechanism. */

/** The built-in rules never stop a run. */
export type Action = MaskAction;

export interface Decisions {
  actions: Action[];
  /** The balance rule's record (a hold included) when it decided at t. */
  controller: Extract<MetricRecord, { kind: "controller" }> | null;
  /** D's density after the decisions. */
  densityD: number;
}

export interface WindowView {
  readonly full: boolean;
  readonly value: number;
}

export function decisionsAfter(exp: Experiment, t: number, window: WindowView, densityD: number): Decisions {
  const net = (d: number) => ({ density: d, target: d, layers: [] });
  const view: ControllerView = {
    iteration: t,
    iterations: exp.iterations,
    event: "cadence",
    experiment: exp,
    br: { value: window.value, full: window.full, count: 0, size: 0, latest: null },
    loss: null,
    densities: { generator: net(exp.generator.density), discriminator: net(densityD) },
    evaluations: [],
    flops: { total: 0, ratio: 0 },
  };
  const out: Decisions = { actions: [], controller: null, densityD };
  for (const c of builtInControllers(exp)) {
    if (!controllerEvent(c, t, exp.iterations, false)) continue;
    const d: { actions?: Action[]; band?: Omit<Extract<MetricRecord, { kind: "controller" }>, "iter" | "kind"> } = c.decide(view);
    out.actions.push(...(d.actions ?? []));
    if (d.band) out.controller = { iter: t, kind: "controller", ...d.band };
    for (const a of d.actions ?? []) if (a.op === "setDensity" && a.net === "discriminator") out.densityD = a.target;
  }
  return out;
}
