import { describe, expect, it } from "vitest";
import { FlopsAccount, perSampleMacs, samplesPerIteration } from "../../src/sparsity/flops.js";

// The paper's CIFAR-10 SNGAN per-sample dense forward MACs, measured by the worker (python/tests).
const G_MACS = 1_683_553_280;
const D_MACS = 272_498_816;
const paperBatch = { disBatch: 64, genBatch: 128, nCritic: 5 };

describe("training FLOPs, paper convention", () => {
  it("reproduces the paper's dense total of 2.67e17 for 100k iterations", () => {
    const acc = new FlopsAccount("paper", paperBatch);
    acc.add(100_000, { generator: G_MACS, discriminator: D_MACS });
    expect(acc.totals().total / 1e17).toBeCloseTo(2.67, 2);
  });
  it("counts n_critic twice for D", () => {
    expect(samplesPerIteration("paper", paperBatch)).toEqual({ generator: 64 * 5 + 3 * 128, discriminator: 5 * (3 * 64 * 5 + 128) });
  });
  it("scales only maskable weight terms by density", () => {
    const layers = [
      { net: "generator" as const, name: "a", shape: [10, 10], maskable: true, numel: 100, macs: 1000 },
      { net: "generator" as const, name: "a.bias", shape: [10], maskable: false, numel: 10, macs: 10 },
      { net: "discriminator" as const, name: "b", shape: [10, 10], maskable: true, numel: 100, macs: 500 },
    ];
    expect(perSampleMacs(layers, "generator", { a: 0.1 })).toBeCloseTo(110, 9);
    expect(perSampleMacs(layers, "generator")).toBe(1010);
    expect(perSampleMacs(layers, "discriminator", { b: 0.5 })).toBe(250);
  });
});

describe("training FLOPs, executed convention", () => {
  it("counts D's real and fake batches and G's backward through D (input gradient only: 2x), plus probes", () => {
    const b = { disBatch: 64, genBatch: 64, nCritic: 1 };
    const acc = new FlopsAccount("executed", b);
    acc.add(10, { generator: 1, discriminator: 1 }, 1);
    // A probe: G_post(z) through G and D (gen_batch each) and the real batch through D; G_pre(z) is the G step's.
    expect(acc.totals()).toEqual({ generator: 10 * (64 + 192) + 64, discriminator: 10 * (384 + 128) + 128, total: 10 * 256 + 64 + 10 * 512 + 128 });
  });
});
