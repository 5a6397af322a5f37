import { describe, expect, it } from "vitest";
import { BrWindow } from "../../src/controller/br-window.js";
import type { RunState } from "../../src/run/run-state.js";
import { segmentRecords } from "../../src/run/segment-records.js";
import { toyExperiment } from "../toy.js";

const exp = toyExperiment({ log: { every: 20 } });
const rows = Array.from({ length: 20 }, (_, i) => [661 + i, 1 + 0.01 * i, 2 - 0.01 * i]);
const losses = (from: number, to: number) => rows.filter(([t]) => t! >= from && t! <= to);
const probes = (iters: number[]) => iters.map((t) => [t, -1 + t / 1000, -0.9 + t / 1000, 0.7]);
const fresh = () => ({ state: { lossSum: { d: 0, g: 0, n: 0 } } as RunState, window: new BrWindow(10) });

describe("a segment's records", () => {
  it("come in iteration order, a probe before the loss of its iteration, so a segment cut by an interruption writes the same lines as the whole one", () => {
    const whole = fresh();
    const one = segmentRecords(exp, whole.state, whole.window, losses(661, 680), probes([670, 680]));
    expect(one.map((r) => `${r.kind}@${r.iter}`)).toEqual(["br@670", "br@680", "loss@680"]);
    const cut = fresh();
    const two = [
      ...segmentRecords(exp, cut.state, cut.window, losses(661, 674), probes([670])),
      ...segmentRecords(exp, cut.state, cut.window, losses(675, 680), probes([680])),
    ];
    expect(two).toEqual(one);
  });
});
