import type { Experiment } from "../config/experiment.js";

/** When the run loop must stop training and decide something. Pure, so the cadence is unit-tested. */

/** Iterations (1-based) after which the generator's DST step runs. */
export function isGeneratorDstIter(e: Experiment, t: number): boolean {
  const dst = e.generator.dst;
  return dst !== null && t < e.iterations && t % dst.every === 0;
}

/** D's controller decides after every `every`-th iteration, whatever n_critic is (the reference checks
 * once per iteration, after the G step), and never after the last one. */
export function isControllerIter(e: Experiment, t: number): boolean {
  const c = e.discriminator.controller;
  return c !== null && t < e.iterations && t % c.every === 0;
}

/** Evaluations run every `eval.every` iterations and always at the end. */
export function isEvalIter(e: Experiment, t: number): boolean {
  if (!e.eval) return false;
  return t === e.iterations || (e.eval.every > 0 && t % e.eval.every === 0);
}

export function isLogIter(e: Experiment, t: number): boolean {
  return t % e.log.every === 0 || t === e.iterations;
}

/** The next iteration after `t` at which anything happens (always <= iterations); `cadences` are the
 * experiment's own controllers' (the built-in rules' come from the policies). */
export function nextEventIter(e: Experiment, t: number, cadences: readonly number[] = []): number {
  const candidates = [e.iterations, ...cadences.map((every) => nextMultiple(t, every))];
  const g = e.generator.dst;
  if (g) candidates.push(nextMultiple(t, g.every));
  const c = e.discriminator.controller;
  if (c) candidates.push(nextMultiple(t, c.every));
  candidates.push(nextMultiple(t, e.log.every));
  if (e.eval && e.eval.every > 0) candidates.push(nextMultiple(t, e.eval.every));
  return Math.min(...candidates.filter((x) => x > t));
}

/** The first multiple of `every` after t. */
function nextMultiple(t: number, every: number): number {
  return (Math.floor(t / every) + 1) * every;
}

/** BR probing cadence (0: none): the controller's, or `log.probeEvery` (10 unless set) for methods that only
 * watch the BR. */
export function probeEvery(e: Experiment): number {
  return e.discriminator.controller?.probeEvery ?? e.log.probeEvery ?? 10;
}

/** How many of the first T iterations are probed. */
export function probeCount(e: Experiment, T: number): number {
  const every = probeEvery(e);
  return every ? Math.floor(T / every) : 0;
}

export function windowProbes(e: Experiment): number {
  const c = e.discriminator.controller;
  return c ? Math.max(1, Math.floor(c.window / c.probeEvery)) : 100;
}
