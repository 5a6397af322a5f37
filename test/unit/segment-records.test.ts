import { describe, expect, it } from "vitest";
import { BrWindow } from "../../src/controller/br-window.js";
import type { RunState } from "../../src/run/run-state.js";
import { closeLossInterval, segmentRecords } from "../../src/run/segment-records.js";
import { toyExperiment } from "../toy.js";

const exp = toyExperiment({ log: { every: 20 } });
const rows = Array.from({ length: 20 }, (_, i) => [661 + i, 1 + 0.01 * i, 2 - 0.01 * i]);
const losses = (from: number, to: number) => rows.filter(([t]) => t! >= from && t! <= to);
const probes = (iters: number[]) => iters.map((t) => [t, -1 + t / 1000, -0.9 + t / 1000, 0.7]);
const fresh = () => ({ state: { lossSum: { d: 0, g: 0, n: 0 } } as RunState, window: new BrWindow(10) });

describe("a segment's records", () => {
  it("come in iteration order, a probe before the loss of its iteration, so a segment cut by an interruption writes the same lines as the whole one", () => {
    const whole = fresh();
    const one = segmentRecords(exp, whole.state, whole.window, losses(661, 680), probes([670, 680]), 3e7);
    expect(one.map((r) => `${r.kind}@${r.iter}`)).toEqual(["br@670", "br@680", "loss@680"]);
    const cut = fresh();
    const two = [
      ...segmentRecords(exp, cut.state, cut.window, losses(661, 674), probes([670]), 3e7),
      ...segmentRecords(exp, cut.state, cut.window, losses(675, 680), probes([680]), 3e7),
    ];
    expect(two).toEqual(one);
  });

  it("give each loss record the mean FLOPs per iteration of its interval: exactly the rate where it held throughout", () => {
    const one = fresh();
    const steady = segmentRecords(exp, one.state, one.window, losses(661, 680), [], 0.1 + 0.2);
    expect(steady).toMatchObject([{ kind: "loss", iter: 680, flopsPerIteration: 0.1 + 0.2 }]);
    // A density change at 670 (an event between segments): 9 iterations at 2e7, then 11 at 4e7 (661..669, 670..680).
    const mixed = fresh();
    const records = [
      ...segmentRecords(exp, mixed.state, mixed.window, losses(661, 669), [], 2e7),
      ...segmentRecords(exp, mixed.state, mixed.window, losses(670, 680), [], 4e7),
    ];
    expect(records).toHaveLength(1);
    expect((records[0] as { flopsPerIteration: number }).flopsPerIteration).toBeCloseTo((9 * 2e7 + 11 * 4e7) / 20, 6);
    expect(mixed.state.lossSum).toEqual({ d: 0, g: 0, n: 0, rates: [] });
    // A checkpoint of a ddst before rates were kept: the iterations so far take the rate in force.
    const old = fresh();
    old.state.lossSum = { d: 10, g: 20, n: 10 };
    const after = segmentRecords(exp, old.state, old.window, losses(671, 680), [], 5e7);
    expect(after).toMatchObject([{ kind: "loss", iter: 680, flopsPerIteration: 5e7 }]);
  });

  it("close the interval where a controller stopped the run, between log iterations", () => {
    const run = fresh();
    expect(segmentRecords(exp, run.state, run.window, losses(661, 670), [], 2e7)).toEqual([]);
    const last = closeLossInterval(run.state, 670);
    expect(last).toMatchObject({ iter: 670, kind: "loss", flopsPerIteration: 2e7 });
    expect(last.d).toBeCloseTo(rows.slice(0, 10).reduce((a, r) => a + r[1]!, 0) / 10, 12);
    expect(run.state.lastLoss).toEqual({ iter: 670, d: last.d, g: last.g });
  });
});
