import type { DeathRateSchedule } from "../config/policies.js";

/** The drop fraction ("death rate") at step t of T (docs/method.md, "Terms"): cosine annealing from the initial rate to the
 * floor over the whole run (the reference's choice), linear decay to the floor, or constant. */
export function deathRate(schedule: DeathRateSchedule, initial: number, floor: number, t: number, total: number): number {
  if (schedule === "constant" || total <= 0) return initial;
  const p = Math.min(1, Math.max(0, t / total));
  if (schedule === "linear") return initial + (floor - initial) * p;
  return floor + 0.5 * (initial - floor) * (1 + Math.cos(Math.PI * p));
}
