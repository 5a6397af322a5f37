import { describe, expect, it } from "vitest";
import { erkDensities, layersLeftEmpty, startingMasks, uniformDensities } from "../../src/sparsity/erk.js";

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

describe("ERK allocation", () => {
  const layers = [
    { name: "in", shape: [128, 2] },
    { name: "mid", shape: [128, 128] },
    { name: "conv", shape: [64, 128, 3, 3] },
    { name: "out", shape: [1, 128] },
  ];

  it("places exactly density x total active weights", () => {
    for (const d of [0.05, 0.1, 0.3, 0.5, 0.9]) {
      const dens = erkDensities(layers, d);
      const total = layers.reduce((a, l) => a + numel(l.shape), 0);
      const active = layers.reduce((a, l) => a + dens[l.name]! * numel(l.shape), 0);
      expect(active / total).toBeCloseTo(d, 9);
      for (const v of Object.values(dens)) expect(v).toBeLessThanOrEqual(1);
    }
  });

  it("gives each sparse layer eps * sum(dims) / prod(dims)", () => {
    const dens = erkDensities(layers, 0.1);
    const sparse = layers.filter((l) => dens[l.name]! < 1);
    const eps = sparse.map((l) => dens[l.name]! / (l.shape.reduce((a, b) => a + b, 0) / numel(l.shape)));
    for (const e of eps) expect(e).toBeCloseTo(eps[0]!, 9);
  });

  it("makes layers dense that would exceed 1 and re-solves for the rest", () => {
    const dens = erkDensities(layers, 0.1);
    expect(dens.in).toBe(1);
    expect(dens.out).toBe(1);
    expect(dens.mid!).toBeLessThan(1);
  });

  it("is all-dense at density 1 and rejects densities outside (0, 1]", () => {
    expect(Object.values(erkDensities(layers, 1))).toEqual([1, 1, 1, 1]);
    expect(() => erkDensities(layers, 0)).toThrow(/density/);
    expect(() => erkDensities(layers, 1.5)).toThrow(/density/);
    expect(uniformDensities(layers, 0.2)).toEqual({ in: 0.2, mid: 0.2, conv: 0.2, out: 0.2 });
  });
});

describe("layers left without weights", () => {
  const table = [
    { net: "generator", name: "big", shape: [1000, 1000], maskable: true },
    { net: "generator", name: "small", shape: [10, 2], maskable: true },
    { net: "discriminator", name: "d", shape: [100, 100], maskable: true },
    { net: "generator", name: "bias-like", shape: [10], maskable: false },
  ];
  const masks = (g: number, d: number, init: "erk" | "uniform" = "uniform") =>
    startingMasks(table, { generator: { init, density: g }, discriminator: { init, density: d } });

  it("names the layers whose active count rounds to 0, as the worker rounds (half up)", () => {
    expect(layersLeftEmpty(table, masks(0.1, 0.1))).toEqual([]);
    expect(layersLeftEmpty(table, masks(0.01, 0.1))).toEqual([{ net: "generator", name: "small", weights: 20, density: 0.01 }]);
    expect(layersLeftEmpty(table, masks(0.025, 0.1))).toEqual([]); // 0.5 rounds up to 1
    expect(layersLeftEmpty(table, masks(0.1, 1e-5)).map((l) => l.name)).toEqual(["d"]);
    expect(layersLeftEmpty(table, masks(1e-9, 0.1, "erk")).map((l) => l.name)).toEqual(["big", "small"]);
  });
});
