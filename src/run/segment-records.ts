import type { Experiment } from "../config/experiment.js";
import type { BrWindow, Probe } from "../controller/br-window.js";
import { isLogIter } from "./events.js";
import type { MetricRecord } from "./records.js";
import type { RunState } from "./run-state.js";

/** The records of one trained segment, from the worker's rows: a `loss` record at every log iteration (the mean
 * since the previous one, carried across segments in `lossSum`), and a `br` record for every probe, which also
 * enters the BR window. In iteration order (a probe's record before the loss record of the same iteration), so a segment
 * cut short by an interruption and its continuation write the same lines as the uncut segment. */
export function segmentRecords(exp: Experiment, state: RunState, window: BrWindow, losses: number[][], probes: number[][]): MetricRecord[] {
  const records: MetricRecord[] = [];
  for (const [iter, d, g] of losses) {
    const s = state.lossSum;
    state.lossSum = { d: s.d + d!, g: s.g + g!, n: s.n + 1 };
    if (isLogIter(exp, iter!)) {
      const m = state.lossSum;
      records.push({ iter: iter!, kind: "loss", d: m.d / m.n, g: m.g / m.n });
      state.lossSum = { d: 0, g: 0, n: 0 };
    }
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
