import { describe, expect, it } from "vitest";
import { ConfigError, resolveExperiment } from "../../src/config/experiment.js";
import { dropInapplicable, policyConflicts } from "../../src/config/method-policies.js";
import { MethodName } from "../../src/config/presets.js";

const paths = (method: MethodName, input: { generator?: unknown; discriminator?: unknown }) => policyConflicts(method, input).map((c) => c.path);

const base = { density: 0.1, iterations: 400, model: { name: "mlp2d" }, data: { name: "ring8" } };

describe("policyConflicts: a method decides which policies exist", () => {
  it("accepts tuning of the method's own policies", () => {
    expect(paths("adapt-relax", { generator: { dst: { every: 50 } }, discriminator: { controller: { every: 100, rule: "relaxed", capDst: null } } })).toEqual([]);
    expect(paths("adapt-strict", { discriminator: { controller: { rule: "strict", capDst: { deathRate: 0.3 } } } })).toEqual([]);
    expect(paths("dda", { discriminator: { controller: { window: 200 } } })).toEqual([]);
    expect(paths("sdst-strong-set", { generator: { dst: { every: 50 } } })).toEqual([]);
    // null where the method has no such policy says what the method already does
    expect(paths("static-balance", { generator: { dst: null }, discriminator: { controller: null } })).toEqual([]);
    expect(paths("dense", {})).toEqual([]);
    expect(paths("static-strong", { generator: { density: 0.2 }, discriminator: { density: 0.5 } })).toEqual([]);
  });

  it("refuses generator DST on a method without it, and turning it off on one with it", () => {
    for (const m of ["dense", "static-balance", "static-strong", "dda"] as const) expect(paths(m, { generator: { dst: { every: 50 } } }), m).toEqual(["generator.dst"]);
    for (const m of ["sdst-balance-set", "sdst-strong-rigl", "adapt-relax", "adapt-strict", "ddst-strict"] as const)
      expect(paths(m, { generator: { dst: null } }), m).toEqual(["generator.dst"]);
  });

  it("refuses a controller on a method without one, and removing it from one with it", () => {
    for (const m of ["dense", "static-balance", "static-strong", "sdst-balance-rigl", "sdst-strong-set"] as const)
      expect(paths(m, { discriminator: { controller: { every: 100 } } }), m).toEqual(["discriminator.controller"]);
    for (const m of ["dda", "adapt-relax", "adapt-strict", "ddst-relax"] as const) expect(paths(m, { discriminator: { controller: null } }), m).toEqual(["discriminator.controller"]);
  });

  it("lets the rule follow the method, and capDst only on the strict rule", () => {
    expect(paths("adapt-relax", { discriminator: { controller: { rule: "strict" } } })).toEqual(["discriminator.controller.rule"]);
    expect(paths("dda", { discriminator: { controller: { rule: "strict", capDst: {} } } })).toEqual(["discriminator.controller.rule", "discriminator.controller.capDst"]);
    expect(paths("adapt-strict", { discriminator: { controller: { rule: "relaxed" } } })).toEqual(["discriminator.controller.rule"]);
    expect(paths("ddst-relax", { discriminator: { controller: { capDst: { deathRate: 0.2 } } } })).toEqual(["discriminator.controller.capDst"]);
    expect(paths("adapt-relax", { discriminator: { controller: { rule: "sideways" } } })).toEqual([]); // the schema's to report
  });

  it("names the field, the method and what to do", () => {
    const [c] = policyConflicts("static-balance", { discriminator: { controller: { every: 100 } } });
    expect(c).toEqual({
      path: "discriminator.controller",
      message: "static-balance has no density controller (methods with one: dda, adapt-relax, adapt-strict); remove this block or choose one of those methods",
    });
    const [g] = policyConflicts("dda", { generator: { dst: {} } });
    expect(g!.message).toMatch(/^dda keeps the generator's masks fixed \(methods with generator DST: sdst-balance-set, sdst-balance-rigl, sdst-strong-set, sdst-strong-rigl, adapt-relax, adapt-strict\); remove this block/);
    const [r] = policyConflicts("adapt-relax", { discriminator: { controller: { rule: "strict" } } });
    expect(r!.message).toMatch(/adapt-relax follows the relaxed rule.*strict rule: adapt-strict\)/);
  });
});

describe("dropInapplicable", () => {
  it("removes exactly the conflicting fields from a copy and names them", () => {
    const input = {
      ...base,
      method: "adapt-relax",
      generator: { density: 0.2, dst: { every: 50 } },
      discriminator: { init: "uniform", controller: { every: 100, rule: "relaxed", capDst: null } },
    };
    const frozen = structuredClone(input);
    const s = dropInapplicable("static-balance", input);
    expect(s.dropped).toEqual(["generator.dst", "discriminator.controller"]);
    expect(s.input).toEqual({ ...base, method: "adapt-relax", generator: { density: 0.2 }, discriminator: { init: "uniform" } });
    expect(input).toEqual(frozen); // the input is left untouched

    expect(dropInapplicable("adapt-relax", input)).toEqual({ input, dropped: [] });
    const strict = dropInapplicable("adapt-strict", input);
    expect(strict.dropped).toEqual(["discriminator.controller.rule"]);
    expect(strict.input.discriminator).toEqual({ init: "uniform", controller: { every: 100, capDst: null } });
    const dda = dropInapplicable("dda", { ...input, discriminator: { controller: { every: 100, capDst: { deathRate: 0.1 } } } });
    expect(dda).toMatchObject({ dropped: ["generator.dst", "discriminator.controller.capDst"], input: { generator: { density: 0.2 }, discriminator: { controller: { every: 100 } } } });
    const off = dropInapplicable("sdst-strong-rigl", { ...base, generator: { dst: null }, discriminator: { controller: null } });
    expect(off).toEqual({ input: { ...base, generator: {}, discriminator: { controller: null } }, dropped: ["generator.dst"] });
  });

  it("leaves an input every method accepts", () => {
    const input = { ...base, method: "adapt-strict", generator: { dst: { every: 50 } }, discriminator: { controller: { every: 100, window: 100, cap: 0.4, capDst: { deathRate: 0.3 } } } };
    for (const method of MethodName.options) {
      const { input: kept } = dropInapplicable(method, input);
      expect(() => resolveExperiment({ ...kept, method, ...(method === "dense" ? { density: 1 } : {}) }), method).not.toThrow();
    }
  });
});

describe("resolveExperiment refuses policy conflicts", () => {
  it("with a ConfigError naming the field and the method", () => {
    try {
      resolveExperiment({ ...base, method: "static-balance", discriminator: { controller: { every: 200, window: 200 } } }, "ring8-adapt.json");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).issues.map((i) => i.path)).toEqual(["discriminator.controller"]);
      expect((e as Error).message).toMatch(/discriminator\.controller: static-balance has no density controller .*remove this block or choose one of those methods/);
    }
  });
  it("alongside the schema's own issues", () => {
    try {
      resolveExperiment({ ...base, density: 2, method: "dense", generator: { dst: { every: 50 } } });
      expect.unreachable();
    } catch (e) {
      expect((e as ConfigError).issues.map((i) => i.path)).toEqual(["density", "generator.dst"]);
    }
  });
});
