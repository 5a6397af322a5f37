import { describe, expect, it } from "vitest";
import { DivergedError, firstNonFinite } from "../../src/run/divergence.js";

describe("divergence", () => {
  it("finds the first iteration with a non-finite loss or probe value, naming each", () => {
    expect(firstNonFinite([[1, 0.5, 0.7], [2, 0.4, 0.6]], [[2, 0.1, 0.2, 0.3]])).toBeNull();
    expect(firstNonFinite([[1, 0.5, 0.7], [2, NaN, Infinity], [3, NaN, NaN]], [])).toEqual({ iter: 2, values: ["the D loss is NaN", "the G loss is Infinity"] });
    // A probe can go first: logits overflow before the losses do.
    expect(firstNonFinite([[10, 0.5, 0.7], [20, NaN, 0.1]], [[10, -Infinity, 0, 1]])).toEqual({ iter: 10, values: ["D(G(z)) before G's step is -Infinity"] });
    expect(firstNonFinite([[10, NaN, 0.7]], [[10, 0, 0, NaN]])).toEqual({ iter: 10, values: ["the D loss is NaN", "D(x) is NaN"] });
  });

  it("says where the records and the checkpoint stop and what to change", () => {
    const e = new DivergedError({ iter: 57, values: ["the D loss is NaN"] }, 50, 40);
    expect(e.message).toMatch(/^training diverged at iteration 57: the D loss is NaN\. metrics\.jsonl goes up to iteration 50, the last checkpoint is of iteration 40 .*lower learning rates/);
  });
});
