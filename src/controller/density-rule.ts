import type { ControllerPolicy } from "../config/policies.js";

/** The ADAPT rule for D's density. Relaxed: BR at or below B- -> lose `step` (not below the floor); at or
 * above B+ -> gain `step` (not above the cap); strictly between -> hold. The band's edges are inclusive, as
 * in the reference. Strict: the same, but at or above B+ at the cap D runs one DST step at fixed count
 * instead. Pure: the run loop carries the decision out. */

export type Decision = "increase" | "decrease" | "hold" | "dst";

export interface DensityDecision {
  decision: Decision;
  /** D's density after the decision. */
  densityD: number;
}

// Densities are compared with a little slack so that 0.05 steps never drift past a bound by rounding.
const EPS = 1e-9;

export function decideDensity(policy: Pick<ControllerPolicy, "rule" | "lower" | "upper" | "step" | "floor" | "cap">, br: number, densityD: number): DensityDecision {
  if (!Number.isFinite(br)) return { decision: "hold", densityD };
  if (br <= policy.lower) {
    const next = Math.max(policy.floor, roundDensity(densityD - policy.step));
    return next < densityD - EPS ? { decision: "decrease", densityD: next } : { decision: "hold", densityD };
  }
  if (br >= policy.upper) {
    const next = Math.min(policy.cap, roundDensity(densityD + policy.step));
    if (next > densityD + EPS) return { decision: "increase", densityD: next };
    return policy.rule === "strict" ? { decision: "dst", densityD } : { decision: "hold", densityD };
  }
  return { decision: "hold", densityD };
}

/** Removes float noise from repeated +-step (0.1 + 0.05 * 3 must be 0.25, not 0.25000000000000006). */
export function roundDensity(d: number): number {
  return Math.round(d * 1e9) / 1e9;
}
