// The types an experiment module is written against. `npm test` type-checks this file (tsconfig.check.json), so
// each @ts-expect-error below fails the suite if the mistake it marks stops being a type error.
import { describe, expect, it } from "vitest";
import { defineController, defineExperiment } from "../../src/index.js";

const base = { method: "adapt-relax", density: 0.1, iterations: 10, model: { name: "mlp2d" }, data: { name: "ring8" } } as const;

describe("experiment module types", () => {
  it("catch a misspelt top-level key, and a controller state of the wrong shape", () => {
    // @ts-expect-error: no such key (a typo of `iterations`)
    const typo = defineExperiment({ ...base, iteration: 5 });
    const counter = defineController<{ k: number }>({
      name: "counter",
      every: 5,
      initialState: () => ({ k: 0 }),
      // @ts-expect-error: the state must keep its type
      decide: (_view, state) => ({ state: { k: String(state.k) } }),
    });
    const ok = defineController<{ k: number }>({ name: "ok", every: 5, initialState: () => ({ k: 0 }), decide: (_v, s) => ({ state: { k: s.k + 1 } }) });
    // Identities at run time: the checks are the types' (and the run's, which refuses both at load).
    expect(defineExperiment({ ...base, controllers: [ok] })).toEqual({ ...base, controllers: [ok] });
    expect(typo).toMatchObject({ iteration: 5 });
    expect(counter.name).toBe("counter");
  });
});
