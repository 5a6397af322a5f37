import { execa } from "execa";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildResult, type LayerInfo } from "../../src/protocol/messages.js";
import { erkDensities } from "../../src/sparsity/erk.js";
import { FlopsAccount, perSampleMacs } from "../../src/sparsity/flops.js";
import { ModelSpec, TrainSpec, trainArgs } from "../../src/vocabulary/networks.js";
import { Worker } from "../../src/worker/worker.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");

describe("the paper's SNGAN for CIFAR-10, measured by the worker", () => {
  let w: Worker;
  let layers: LayerInfo[];
  beforeAll(async () => {
    w = await Worker.start();
    const built = await w.ask(
      "build",
      { seed: 0, device: "cpu", model: ModelSpec.parse({ name: "sngan32" }), data: { name: "synthetic", shape: [3, 32, 32] }, train: trainArgs(TrainSpec.parse({ batchSize: 64, nCritic: 5, loss: "hinge", lrG: 2e-4, lrD: 2e-4, betas: [0, 0.9], ema: 0.999 })) },
      BuildResult,
    );
    layers = built.layers;
  });
  afterAll(async () => w?.stop());

  it("ddst inspect --json reports the paper's maskable counts and the measured MACs", async () => {
    const r = await execa("node", [CLI, "inspect", "sngan32", "--density-g", "0.1", "--json"]);
    const j = JSON.parse(r.stdout);
    expect(j.generator.maskableParams).toBe(4_266_752);
    expect(j.discriminator.maskableParams).toBe(1_052_544);
    expect(j.generator.macsDense).toBe(1_683_553_280);
    expect(j.discriminator.macsDense).toBe(272_498_816);
    expect(j.discriminator.macsSparse).toBeLessThan(j.discriminator.macsDense);
    // The density is a fraction of the maskable weights; the dense parameters (biases, norms) come on top.
    expect(j.generator.activeMaskable / j.generator.maskableParams).toBeCloseTo(0.1, 3);
    expect(j.generator.activeParams - j.generator.activeMaskable).toBe(j.generator.totalParams - j.generator.maskableParams);
    for (const net of [j.generator, j.discriminator])
      for (const l of net.layers) expect(Object.keys(l)).toEqual(expect.arrayContaining(["name", "shape", "maskable", "density", "macs"]));
  });

  it("reproduces the paper's normalized training FLOPs of Static-Balance (ERK, within 0.2 pp)", () => {
    const published: Record<number, number> = { 0.1: 8.97, 0.2: 17.08, 0.3: 26.25, 0.5: 47.25 };
    const batch = { disBatch: 64, genBatch: 128, nCritic: 5 };
    const maskable = (net: string) => layers.filter((l) => l.net === net && l.maskable);
    const dense = new FlopsAccount("paper", batch);
    dense.add(100_000, { generator: perSampleMacs(layers, "generator"), discriminator: perSampleMacs(layers, "discriminator") });
    for (const [d, pct] of Object.entries(published)) {
      const density = Number(d);
      const acc = new FlopsAccount("paper", batch);
      acc.add(100_000, {
        generator: perSampleMacs(layers, "generator", erkDensities(maskable("generator"), density)),
        discriminator: perSampleMacs(layers, "discriminator", erkDensities(maskable("discriminator"), density)),
      });
      expect(Math.abs((100 * acc.totals().total) / dense.totals().total - pct)).toBeLessThan(0.2);
    }
    expect(dense.totals().total / 1e17).toBeCloseTo(2.67, 2);
  });
});
