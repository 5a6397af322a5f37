import type { Experiment } from "../config/experiment.js";

/** When the run loop must stop training and decide something. Pure, so the cadence is unit-tested. */

/** Iterations (1-based) after which the generator's DST step runs. */
export function isGeneratorDstIter(e: Experiment, t: number): boolean {
  const dst = e.generator.dst;
  return dst !== null && t < e.iterations && t % dst.every === 0;
}

/** D's controller counts D steps (n_critic per iteration): it fires after the iteration whose D steps
 * cross a multiple of `every`. */
export function isControllerIter(e: Experiment, t: number): boolean {
  const c = e.discriminator.controller;
  if (!c || t >= e.iterations) return false;
  const n = e.train.nCritic;
  return Math.floor((t * n) / c.every) > Math.floor(((t - 1) * n) / c.every);
}

/** Evaluations run every `eval.every` iterations and always at the end. */
export function isEvalIter(e: Experiment, t: number): boolean {
  if (!e.eval) return false;
  return t === e.iterations || (e.eval.every > 0 && t % e.eval.every === 0);
}

export function isLogIter(e: Experiment, t: number): boolean {
  return t % e.log.every === 0 || t === e.iterations;
}

/** The next iteration after `t` at which anything happens (always <= iterations). */
export function nextEventIter(e: Experiment, t: number): number {
  const candidates = [e.iterations];
  const g = e.generator.dst;
  if (g) candidates.push((Math.floor(t / g.every) + 1) * g.every);
  const c = e.discriminator.controller;
  if (c) {
    // The first iteration whose cumulative D steps reach the next multiple of `every`.
    const n = e.train.nCritic;
    const nextMultiple = (Math.floor((t * n) / c.every) + 1) * c.every;
    candidates.push(Math.ceil(nextMultiple / n));
  }
  candidates.push((Math.floor(t / e.log.every) + 1) * e.log.every);
  if (e.eval && e.eval.every > 0) candidates.push((Math.floor(t / e.eval.every) + 1) * e.eval.every);
  return Math.min(...candidates.filter((x) => x > t));
}

/** BR probing cadence: the controller's, or every 10 iterations for methods that only watch BR. */
export function probeEvery(e: Experiment): number {
  return e.discriminator.controller?.probeEvery ?? 10;
}

export function windowProbes(e: Experiment): number {
  const c = e.discriminator.controller;
  return c ? Math.max(1, Math.floor(c.window / c.probeEvery)) : 100;
}
