import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MethodName } from "../../src/config/presets.js";
import { MetricRecord } from "../../src/run/records.js";
import { runExperiment } from "../../src/run/run-experiment.js";
import { toyExperiment } from "../toy.js";
import { limit, oneTorchThread, tempDir } from "./helpers.js";

// Each test is one short run, nearly all of it CPU in its worker (start-up, then training): two at a time, one
// torch thread each, keeps both cores busy without the runs spinning against each other.
oneTorchThread();
const oneWorkerPerCore = limit(2);

/** Every row of the paper as a short toy run: each produces the records its method implies. */
const toy = (method: MethodName) =>
  toyExperiment({
    method,
    density: method === "dense" ? 1 : 0.3,
    iterations: 200,
    model: { name: "mlp2d", hidden: 64 },
    train: { batchSize: 64, nCritic: 2, lrG: 0.002, lrD: 0.0005, betas: [0.5, 0.9] },
    generator: { dst: method.startsWith("sdst") || method.startsWith("adapt") || method.startsWith("ddst") ? { every: 25 } : null },
    discriminator: method === "dda" || method.includes("adapt") || method.includes("ddst") ? { controller: { every: 50, window: 40, probeEvery: 10 } } : {},
    log: { every: 20 },
    checkpoint: { every: 100 },
  });

describe.concurrent("every preset on the toy data", () => {
  for (const method of MethodName.options) {
    it(method, async () => {
      const exp = toy(method);
      const out = join(tempDir(), method);
      const summary = await oneWorkerPerCore(() => runExperiment(exp, { out }));
      const records = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => MetricRecord.parse(JSON.parse(l)));
      const kinds = (k: string) => records.filter((r) => r.kind === k);
      expect(kinds("loss")).toHaveLength(10);
      expect(kinds("br").length).toBe(20);
      const gDst = kinds("dst").filter((r) => r.kind === "dst" && r.net === "generator");
      expect(gDst.length > 0).toBe(exp.generator.dst !== null);
      const controller = kinds("controller");
      if (exp.discriminator.controller) {
        // Every 50 iterations whatever n_critic (2 here), never at the last; the window (4 probes) is full from 40.
        expect(controller.map((r) => r.iter)).toEqual([50, 100, 150]);
      } else {
        expect(controller).toHaveLength(0);
        expect(summary.final.densityD).toBeCloseTo(exp.discriminator.density, 2);
      }
      expect(summary.final.densityG).toBeCloseTo(exp.generator.density, 2);
      expect(summary.flops.ratio).toBeGreaterThan(0);
      expect(summary.flops.ratio).toBeLessThanOrEqual(1 + 1e-9);
      if (method === "dense") expect(summary.flops.ratio).toBeCloseTo(1, 9);
    });
  }
});

describe.concurrent("the strict rule at the cap", () => {
  it("grows D to d_max, then runs D's own DST step instead", async () => {
    // Bounds below any BR: every decision asks for more density.
    const exp = toyExperiment({
      method: "adapt-strict",
      density: 0.3,
      iterations: 200,
      model: { name: "mlp2d", hidden: 64 },
      train: { batchSize: 64, lrG: 0.002, lrD: 0.0005, betas: [0.5, 0.9] },
      generator: { dst: { every: 50 } },
      discriminator: { controller: { lower: -1001, upper: -1000, cap: 0.4, every: 40, window: 40 } },
      log: { every: 20 },
    });
    const out = join(tempDir(), "strict");
    const summary = await oneWorkerPerCore(() => runExperiment(exp, { out }));
    const records = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => MetricRecord.parse(JSON.parse(l)));
    const decisions = records.filter((r) => r.kind === "controller").map((r) => (r.kind === "controller" ? [r.decision, r.densityD] : []));
    expect(decisions).toEqual([["increase", 0.35], ["increase", 0.4], ["dst", 0.4], ["dst", 0.4]]);
    const dDst = records.filter((r) => r.kind === "dst" && r.net === "discriminator");
    expect(dDst).toHaveLength(2);
    for (const r of dDst) if (r.kind === "dst") expect(r.pruned).toBe(r.grown);
    expect(summary.final.densityD).toBeCloseTo(0.4, 3);
  });
});
