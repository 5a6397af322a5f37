import { describe, expect, it } from "vitest";
import { ControllerPolicy } from "../../src/config/policies.js";
import { BrWindow, probeRatio } from "../../src/controller/br-window.js";
import { decideDensity } from "../../src/controller/density-rule.js";

const relaxed = ControllerPolicy.parse({});
const strict = ControllerPolicy.parse({ rule: "strict", cap: 0.5, capDst: {} });

describe("BR window", () => {
  it("computes a probe's ratio as in the paper", () => {
    expect(probeRatio({ iter: 10, fakePre: -1, fakePost: 0, real: 1 })).toBeCloseTo(0.5, 12);
    expect(probeRatio({ iter: 10, fakePre: 0.2, fakePost: 0.2, real: 2.2 })).toBe(0);
  });
  it("is not full until it holds `size` probes, and averages the ratios (mean of ratios)", () => {
    const w = new BrWindow(3);
    w.push({ iter: 10, fakePre: 0, fakePost: 1, real: 2 }); // 0.5
    w.push({ iter: 20, fakePre: 0, fakePost: 1, real: 4 }); // 0.25
    expect(w.full).toBe(false);
    w.push({ iter: 30, fakePre: 0, fakePost: 3, real: 4 }); // 0.75
    expect(w.full).toBe(true);
    expect(w.value).toBeCloseTo(0.5, 12);
    w.push({ iter: 40, fakePre: 0, fakePost: 4, real: 4 }); // 1 ; oldest (0.5) leaves
    expect(w.value).toBeCloseTo((0.25 + 0.75 + 1) / 3, 12);
  });
  it("skips probes whose denominator is zero", () => {
    const w = new BrWindow(2);
    expect(Number.isFinite(w.push({ iter: 10, fakePre: 1, fakePost: 2, real: 1 }))).toBe(false);
    expect(w.count).toBe(0);
    expect(Number.isNaN(w.value)).toBe(true);
  });
  it("round-trips its state", () => {
    const w = new BrWindow(2);
    w.push({ iter: 10, fakePre: 0, fakePost: 1, real: 2 });
    expect(BrWindow.restore(w.state()).value).toBe(w.value);
  });
});

describe("relaxed density rule", () => {
  it("holds strictly inside the bounds; the edges decide (BR <= B- decreases, BR >= B+ increases)", () => {
    expect(decideDensity(relaxed, 0.5, 0.3)).toEqual({ decision: "hold", densityD: 0.3 });
    expect(decideDensity(relaxed, 0.4500001, 0.3).decision).toBe("hold");
    expect(decideDensity(relaxed, 0.5499999, 0.3).decision).toBe("hold");
    expect(decideDensity(relaxed, 0.45, 0.3)).toEqual({ decision: "decrease", densityD: 0.25 });
    expect(decideDensity(relaxed, 0.55, 0.3)).toEqual({ decision: "increase", densityD: 0.35 });
  });
  it("D too strong (BR < B-) loses a step, D too weak (BR > B+) gains one", () => {
    expect(decideDensity(relaxed, 0.1, 0.3)).toEqual({ decision: "decrease", densityD: 0.25 });
    expect(decideDensity(relaxed, 0.9, 0.3)).toEqual({ decision: "increase", densityD: 0.35 });
  });
  it("stops at the floor and at 1", () => {
    expect(decideDensity(relaxed, 0.1, 0.07)).toEqual({ decision: "decrease", densityD: 0.05 });
    expect(decideDensity(relaxed, 0.1, 0.05)).toEqual({ decision: "hold", densityD: 0.05 });
    expect(decideDensity(relaxed, 0.9, 0.98)).toEqual({ decision: "increase", densityD: 1 });
    expect(decideDensity(relaxed, 0.9, 1)).toEqual({ decision: "hold", densityD: 1 });
  });
  it("does not drift by float noise over many steps", () => {
    let d = 0.1;
    for (let i = 0; i < 18; i++) d = decideDensity(relaxed, 0.9, d).densityD;
    expect(d).toBe(1);
    for (let i = 0; i < 19; i++) d = decideDensity(relaxed, 0.1, d).densityD;
    expect(d).toBe(0.05);
  });
  it("holds on a non-finite BR", () => {
    expect(decideDensity(relaxed, Number.NaN, 0.3).decision).toBe("hold");
  });
});

describe("strict density rule", () => {
  it("grows up to the cap, then runs D's DST step", () => {
    expect(decideDensity(strict, 0.9, 0.45)).toEqual({ decision: "increase", densityD: 0.5 });
    expect(decideDensity(strict, 0.9, 0.5)).toEqual({ decision: "dst", densityD: 0.5 });
    expect(decideDensity(strict, 0.55, 0.5)).toEqual({ decision: "dst", densityD: 0.5 }); // BR == B+ at the cap
  });
  it("still decreases and holds like the relaxed rule", () => {
    expect(decideDensity(strict, 0.1, 0.5)).toEqual({ decision: "decrease", densityD: 0.45 });
    expect(decideDensity(strict, 0.5, 0.5).decision).toBe("hold");
    expect(decideDensity(strict, 0.45, 0.5)).toEqual({ decision: "decrease", densityD: 0.45 });
  });
});

describe("controller on a synthetic BR sequence", () => {
  it("decides nothing until the window is full, then follows the rule", () => {
    // Probes every 10 iterations, window 5 probes, decisions every 50 iterations.
    const w = new BrWindow(5);
    let d = 0.3;
    const decisions: string[] = [];
    const brAt = (iter: number) => (iter <= 100 ? 0.2 : iter <= 200 ? 0.5 : 0.8);
    for (let iter = 10; iter <= 300; iter += 10) {
      const br = brAt(iter);
      w.push({ iter, fakePre: 0, fakePost: br, real: 1 });
      if (iter % 50 === 0 && iter >= 30) {
        if (!w.full) {
          decisions.push("none");
          continue;
        }
        const dec = decideDensity(relaxed, w.value, d);
        d = dec.densityD;
        decisions.push(dec.decision);
      }
    }
    expect(decisions).toEqual(["decrease", "decrease", "hold", "hold", "increase", "increase"]);
    expect(d).toBeCloseTo(0.3, 12);
  });
});
