import { describe, expect, it } from "vitest";
import type { MethodName } from "../../src/config/presets.js";
import { decisionsAfter } from "../../src/run/decisions.js";
import { deathRate } from "../../src/sparsity/schedule.js";
import { toyExperiment } from "../toy.js";

const exp = (method: MethodName, nCritic = 5, density = 0.3) => toyExperiment({ method, density, iterations: 10_000, train: { nCritic } });
const full = (value: number) => ({ full: true, value });

describe("decisions after an iteration", () => {
  it("runs G's DST step every 500 iterations on its cosine schedule, before D's decision", () => {
    const e = exp("adapt-relax");
    expect(decisionsAfter(e, 499, full(0.9), 0.3).actions).toEqual([]);
    const at500 = decisionsAfter(e, 500, full(0.9), 0.3);
    expect(at500.actions).toEqual([{ op: "dstStep", net: "generator", policy: e.generator.dst, dropRate: deathRate("cosine", 0.5, 0.005, 500, 10_000) }]);
    expect(at500.controller).toBeNull();
    const at1000 = decisionsAfter(e, 1000, full(0.9), 0.3);
    expect(at1000.actions.map((a) => `${a.op}:${a.net}`)).toEqual(["dstStep:generator", "setDensity:discriminator"]);
    expect(at1000.actions[1]).toMatchObject({ target: 0.35, growth: "global_gradient" });
    expect(at1000.controller).toEqual({ iter: 1000, kind: "controller", br: 0.9, lower: 0.45, upper: 0.55, decision: "increase", densityD: 0.35 });
    expect(at1000.densityD).toBe(0.35);
  });

  it("decides nothing for D until the BR window is full, and holds inside the band", () => {
    const e = exp("adapt-relax");
    expect(decisionsAfter(e, 1000, { full: false, value: 0.9 }, 0.3).controller).toBeNull();
    const hold = decisionsAfter(e, 1000, full(0.5), 0.3);
    expect(hold.actions.map((a) => a.op)).toEqual(["dstStep"]);
    expect(hold.controller?.decision).toBe("hold");
    expect(decisionsAfter(e, 1000, full(0.45), 0.3).actions[1]).toMatchObject({ op: "setDensity", target: 0.25 });
  });

  it("runs D's own DST step at the cap under the strict rule, its drop rate counted in D steps", () => {
    const e = exp("adapt-strict", 5, 0.5);
    const d = decisionsAfter(e, 2000, full(0.55), 0.5);
    const capDst = e.discriminator.controller!.capDst!;
    expect(d.actions).toEqual([
      { op: "dstStep", net: "generator", policy: e.generator.dst, dropRate: deathRate("cosine", 0.5, 0.005, 2000, 10_000) },
      { op: "dstStep", net: "discriminator", policy: capDst, dropRate: deathRate("cosine", 0.5, 0.005, 2000 * 5, 10_000 * 5) },
    ]);
    expect(d.controller?.decision).toBe("dst");
    expect(d.densityD).toBe(0.5);
  });

  it("leaves static methods alone", () => {
    const e = exp("static-balance");
    for (const t of [500, 1000, 2000]) expect(decisionsAfter(e, t, full(0.9), 0.3)).toEqual({ actions: [], controller: null, densityD: 0.3 });
  });
});
