import type { Experiment } from "../config/experiment.js";
import type { BrWindow, Probe } from "../controller/br-window.js";
import { isLogIter } from "./events.js";
import type { MetricRecord } from "./records.js";
import type { RunState } from "./run-state.js";

/** The records of one trained segment, from the worker's rows: a `loss` record at every log iteration (the mean
 * since the previous one, carried across segments in `lossSum`), and a `br` record for every probe, which also
 * enters the BR window. In iteration order (a probe's record before the loss record of the same iteration), so a segment
 * cut short by an interruption and its continuation write the same lines as the uncut segment. */
export function segmentRecords(exp: Experiment, state: RunState, window: BrWindow, losses: number[][], probes: number[][], flopsRate: number): MetricRecord[] {
  const records: MetricRecord[] = [];
  for (const [iter, d, g] of losses) {
    const s = state.lossSum;
    state.lossSum = { d: s.d + d!, g: s.g + g!, n: s.n + 1, rates: withRate(s, flopsRate) };
    if (isLogIter(exp, iter!)) records.push(closeLossInterval(state, iter!));
  }
  for (const [iter, fakePre, fakePost, real] of probes) {
    const probe: Probe = { iter: iter!, fakePre: fakePre!, fakePost: fakePost!, real: real! };
    const ratio = window.push(probe);
    records.push({
      iter: probe.iter,
      kind: "br",
      br: window.count ? window.value : null,
      ratio: Number.isFinite(ratio) ? ratio : null,
      probe: { fakePre: probe.fakePre, fakePost: probe.fakePost, real: probe.real },
    });
  }
  // At one iteration the probe's record comes first: the status line is drawn at each loss record and shows the
  // BR as of that iteration.
  const rank = (r: MetricRecord) => (r.kind === "br" ? 0 : 1);
  return records.map((r, i) => ({ r, i })).sort((a, b) => a.r.iter - b.r.iter || rank(a.r) - rank(b.r) || a.i - b.i).map(({ r }) => r);
}

/** The loss interval's FLOPs rates, [rate, iterations] in order, with one more iteration at `rate`. A checkpoint of
 * a ddst before rates were kept had one rate per segment, the one in force: its iterations so far take this one. */
function withRate(s: RunState["lossSum"], rate: number): [number, number][] {
  const rates = s.rates ?? (s.n ? [[rate, s.n] as [number, number]] : []);
  const last = rates[rates.length - 1];
  return last && last[0] === rate ? [...rates.slice(0, -1), [rate, last[1] + 1]] : [...rates, [rate, 1]];
}

/** The loss record that closes the interval at `iter` (a log iteration, or the iteration a controller stopped the
 * run at): mean losses, and the mean FLOPs per iteration over the interval, so that the records' rates times their
 * intervals sum to the run's FLOPs even where a density changed inside one (exactly the rate, where none did). */
export function closeLossInterval(state: RunState, iter: number): MetricRecord & { kind: "loss" } {
  const m = state.lossSum;
  const rates = m.rates ?? [];
  const flopsPerIteration = rates.length === 1 ? rates[0]![0] : rates.reduce((a, [r, n]) => a + r * n, 0) / m.n;
  state.lossSum = { d: 0, g: 0, n: 0, rates: [] };
  state.lastLoss = { iter, d: m.d / m.n, g: m.g / m.n };
  return { iter, kind: "loss", d: m.d / m.n, g: m.g / m.n, ...(rates.length ? { flopsPerIteration } : {}) };
}
