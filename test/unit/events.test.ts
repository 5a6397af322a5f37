import { describe, expect, it } from "vitest";
import { resolveExperiment } from "../../src/config/experiment.js";
import { toyExperiment } from "../toy.js";
import { isControllerIter, isEvalIter, isGeneratorDstIter, nextEventIter } from "../../src/run/events.js";

const exp = (nCritic = 1) =>
  toyExperiment({
    train: { nCritic },
    generator: { dst: { every: 50 } },
    discriminator: { controller: { every: 100, window: 100 } },
    log: { every: 30 },
  });

describe("run-loop cadence", () => {
  it("stops at every G DST step, controller decision and log line, and at the end", () => {
    const e = exp();
    const stops: number[] = [];
    for (let t = 0; t < e.iterations; ) stops.push((t = nextEventIter(e, t)));
    expect(stops.slice(0, 6)).toEqual([30, 50, 60, 90, 100, 120]);
    expect(stops[stops.length - 1]).toBe(400);
    expect(stops.filter((t) => isGeneratorDstIter(e, t))).toEqual([50, 100, 150, 200, 250, 300, 350]);
    expect(stops.filter((t) => isControllerIter(e, t))).toEqual([100, 200, 300]);
  });
  it.each([1, 5])("decides at exactly the multiples of `every` iterations, whatever n_critic (%i)", (nCritic) => {
    const e = exp(nCritic);
    const stops: number[] = [];
    for (let t = 0; t < e.iterations; ) stops.push((t = nextEventIter(e, t)));
    expect(stops.filter((t) => isControllerIter(e, t))).toEqual([100, 200, 300]);
    const all = Array.from({ length: e.iterations }, (_, i) => i + 1).filter((t) => isControllerIter(e, t));
    expect(all).toEqual([100, 200, 300]); // never at the last iteration (400)
  });
});

describe("evaluation cadence", () => {
  it("evaluates every eval.every iterations and at the end", () => {
    const e = toyExperiment({
      method: "static-balance",
      density: 0.5,
      iterations: 250,
      log: { every: 1000 },
      eval: { every: 100, samples: 100 },
    });
    const stops: number[] = [];
    for (let t = 0; t < e.iterations; ) stops.push((t = nextEventIter(e, t)));
    expect(stops).toEqual([100, 200, 250]);
    expect(stops.filter((t) => isEvalIter(e, t))).toEqual([100, 200, 250]);
  });
  it("checks that the metrics fit the data", () => {
    const base = { method: "static-balance", density: 0.5, iterations: 10, model: { name: "mlp2d" } };
    expect(() => resolveExperiment({ ...base, data: { name: "ring8" }, eval: { metrics: ["classifier"] } })).toThrow(/eval.metrics/);
    expect(() => resolveExperiment({ ...base, data: { name: "cifar10", path: "/x" }, eval: {} })).toThrow(/eval.inception/);
  });
});
