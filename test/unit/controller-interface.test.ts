import { describe, expect, it } from "vitest";
import { builtInControllers } from "../../src/controller/built-in.js";
import { callController, controllerEvent, ControllerError, frozenCopy, type Controller, type ControllerView } from "../../src/controller/controller.js";
import { toyExperiment } from "../toy.js";

const exp = toyExperiment({ method: "adapt-relax", density: 0.3, iterations: 10_000 });
const view = (over: Partial<ControllerView> = {}): ControllerView =>
  frozenCopy({
    iteration: 1000,
    iterations: 10_000,
    event: "cadence" as const,
    experiment: exp,
    br: { value: 0.9, full: true, count: 100, size: 100, latest: 0.8 },
    loss: { iter: 1000, d: 1.2, g: 0.3 },
    densities: {
      generator: { density: 0.3, target: 0.3, layers: [] },
      discriminator: { density: 0.3, target: 0.3, layers: [{ name: "fc1", density: 0.3, active: 3, total: 10 }] },
    },
    evaluations: [],
    flops: { total: 1e12, ratio: 0.4 },
    ...over,
  });
const controller = (decide: Controller["decide"], extra: Partial<Controller> = {}): Controller => ({ name: "c", every: 10, initialState: () => null, decide, ...extra });

describe("calling a controller", () => {
  it("checks the answer against the closed set and fills the defaults", async () => {
    const d = await callController(controller(() => ({ actions: [{ op: "setDensity", net: "discriminator", target: 0.4 }], state: { n: 1 } })), view(), null);
    expect(d).toEqual({ actions: [{ op: "setDensity", net: "discriminator", target: 0.4, growth: "global_gradient", prune: "global_magnitude" }], state: { n: 1 } });
    expect((await callController(controller(() => undefined as never), view(), null)).actions).toEqual([]);
  });

  it("names the controller and the iteration when it throws, answers outside the set, or takes too long", async () => {
    await expect(callController(controller(() => { throw new Error("boom"); }), view(), null)).rejects.toThrow(/controller 'c' at iteration 1000: it threw: Error: boom/);
    await expect(callController(controller(() => ({ actions: [{ op: "grow" }] }) as never), view(), null)).rejects.toThrow(/invalid answer .*actions\.0\.op/);
    await expect(callController(controller(() => ({ state: { x: Number.NaN } })), view(), null)).rejects.toThrow(/state: must be plain JSON/);
    // The answer is quoted as given: JSON would show NaN as null and drop a function, hiding the culprit.
    await expect(callController(controller(() => ({ state: { x: Number.NaN } })), view(), null)).rejects.toThrow('invalid answer {"state":{"x":NaN}}');
    await expect(callController(controller(() => ({ state: { f: () => 1 } }) as never), view(), null)).rejects.toThrow('invalid answer {"state":{"f":[function]}}');
    await expect(callController(controller(() => ({ actions: [], extra: 1 }) as never), view(), null)).rejects.toThrow(/Unrecognized key/);
    // Whatever it throws (not an Error, an object whose toString throws), and code of its own that throws while
    // its answer is read.
    await expect(callController(controller(() => { throw null; }), view(), null)).rejects.toThrow(/controller 'c' at iteration 1000: it threw: null/);
    const hostile = { toString() { throw new Error("no"); } };
    await expect(callController(controller(() => { throw hostile; }), view(), null)).rejects.toThrow(/it threw: \[object Object\]/);
    const getter = { get actions(): never { throw new Error("getter boom"); } };
    await expect(callController(controller(() => getter), view(), null)).rejects.toThrow(/controller 'c' at iteration 1000: reading its answer threw: Error: getter boom/);
    // A state too large to keep in every checkpoint.
    await expect(callController(controller(() => ({ state: { log: "x".repeat(10_000_001) } })), view(), null)).rejects.toThrow(/state: more than 10 million characters as JSON/);
    const slow = controller(() => new Promise(() => undefined), { timeoutMs: 50 });
    await expect(callController(slow, view(), null)).rejects.toBeInstanceOf(ControllerError);
    await expect(callController(slow, view(), null)).rejects.toThrow(/no answer within 50 ms/);
  });

  it("refuses a state or note that JSON cannot carry back (a cycle, nesting too deep, a class) and keeps -0 as JSON does", async () => {
    const cyclic: Record<string, unknown> = { n: 1 };
    cyclic.self = { up: cyclic };
    await expect(callController(controller(() => ({ state: cyclic }) as never), view(), null)).rejects.toThrow(/controller 'c' at iteration 1000: invalid answer .*state: must be plain JSON .*: self\.up: refers to itself \(a cycle\)/);
    let deep: unknown = 0;
    for (let i = 0; i < 20_000; i++) deep = [deep];
    await expect(callController(controller(() => ({ state: deep }) as never), view(), null)).rejects.toThrow(/state: must be plain JSON .*: nested deeper than 1000 levels/);
    await expect(callController(controller(() => ({ note: { at: new Date(0) } }) as never), view(), null)).rejects.toThrow(/note\.at: must be plain JSON .*: a Date, not a plain object/);
    await expect(callController(controller(() => ({ state: { u: undefined } }) as never), view(), null)).rejects.toThrow(/state: must be plain JSON .*: u: undefined/);
    // A state read back from a checkpoint has 0 where -0 was: so has the one kept in memory.
    const d = await callController(controller(() => ({ state: { z: -0, list: [-0, 1] } })), view(), null);
    expect(Object.is((d.state as { z: number }).z, 0)).toBe(true);
    expect(Object.is((d.state as { list: number[] }).list[0], 0)).toBe(true);
    // Shared (not cyclic) parts are fine.
    const part = { a: 1 };
    expect((await callController(controller(() => ({ state: { x: part, y: part } })), view(), null)).state).toEqual({ x: part, y: part });
  });

  it("quotes a thrown error with the controller's own stack frames, not ddst's", async () => {
    const err = await callController(controller(function userDecide() { throw new Error("boom"); }), view(), null).catch((e: Error) => e);
    const frames = String((err as Error).message).split("\n").filter((l) => /^\s+at /.test(l));
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.some((l) => l.includes("userDecide"))).toBe(true);
    expect(frames.some((l) => l.includes("/src/controller/") || l.includes("node:internal"))).toBe(false);
  });

  it("hands out a frozen view and a copy of the state: a controller cannot change the run", async () => {
    const state = { seen: [1] };
    await expect(callController(controller((v) => { (v.br as { value: number }).value = 0; return {}; }), view(), null)).rejects.toThrow(/read only|read-only|Cannot assign/);
    await callController(controller((_v, s) => { (s as { seen: number[] }).seen.push(2); return {}; }), view(), state);
    expect(state.seen).toEqual([1]);
  });

  it("is called at its cadence and, if it asks, after evaluations; never after the last iteration", () => {
    expect(controllerEvent({ every: 100 }, 200, 1000, false)).toBe("cadence");
    expect(controllerEvent({ every: 100 }, 250, 1000, true)).toBeNull();
    expect(controllerEvent({ every: 100, atEvaluations: true }, 250, 1000, true)).toBe("evaluation");
    expect(controllerEvent({ every: 100, atEvaluations: true }, 200, 1000, true)).toBe("cadence");
    expect(controllerEvent({ every: 100 }, 1000, 1000, false)).toBeNull();
  });

  it("the paper's rules are controllers on the same interface", async () => {
    const [g, d] = builtInControllers(exp);
    expect([g!.name, d!.name]).toEqual(["generator-dst", "balance-rule"]);
    const decision = await callController(d!, view(), null);
    expect(decision.actions).toEqual([{ op: "setDensity", net: "discriminator", target: 0.35, growth: "global_gradient", prune: "global_magnitude" }]);
    expect(decision.band).toEqual({ br: 0.9, lower: 0.45, upper: 0.55, decision: "increase", densityD: 0.35 });
    expect((await callController(d!, view({ br: { value: 0.9, full: false, count: 3, size: 100, latest: 0.9 } }), null)).actions).toEqual([]);
    expect(builtInControllers(toyExperiment({ method: "static-balance", density: 0.3 }))).toEqual([]);
  });
});
