import { describe, expect, it } from "vitest";
import { deathRate } from "../../src/sparsity/schedule.js";

describe("death-rate schedules", () => {
  it("cosine anneals from the initial rate to the floor", () => {
    expect(deathRate("cosine", 0.5, 0.005, 0, 1000)).toBeCloseTo(0.5, 12);
    expect(deathRate("cosine", 0.5, 0.005, 500, 1000)).toBeCloseTo(0.2525, 12);
    expect(deathRate("cosine", 0.5, 0.005, 1000, 1000)).toBeCloseTo(0.005, 12);
    expect(deathRate("cosine", 0.5, 0.005, 250, 1000)).toBeCloseTo(0.005 + 0.5 * 0.495 * (1 + Math.SQRT1_2), 12);
  });
  it("linear and constant", () => {
    expect(deathRate("linear", 0.5, 0.1, 500, 1000)).toBeCloseTo(0.3, 12);
    expect(deathRate("constant", 0.3, 0.005, 900, 1000)).toBe(0.3);
  });
  it("clamps past the end", () => {
    expect(deathRate("cosine", 0.5, 0.005, 2000, 1000)).toBeCloseTo(0.005, 12);
  });
});
