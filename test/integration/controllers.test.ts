import { execa } from "execa";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");
const run = (args: string[]) => execa("node", [CLI, "run", ...args], { reject: false });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const records = (dir: string): any[] =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

/** A toy experiment module with one controller of its own, written as a user would (no imports needed: a
 * controller is a plain object). */
function writeModule(dir: string, controller: string, iterations = 600, extra = ""): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "experiment.ts");
  writeFileSync(
    file,
    `const scripted = ${controller};
export default {
  name: "toy-controlled",
  method: "sdst-balance-rigl",
  density: 0.2,
  iterations: ${iterations},
  model: { name: "mlp2d", hidden: 64 },
  data: { name: "ring8" },
  train: { batchSize: 128, lrG: 0.002, lrD: 0.0005, betas: [0.5, 0.9] },
  generator: { dst: { every: 150 } },
  log: { every: 10 },
  checkpoint: { every: 200 },
  supervision: { threads: 1 },${extra}
  controllers: [scripted],
};
`,
  );
  return file;
}

/** Stateful: a counter in its state picks the next scripted action, so a resume must restore it exactly. */
const SCRIPTED = `{
  name: "scripted",
  every: 100,
  initialState: () => ({ calls: 0, seen: [] }),
  decide(view, state) {
    const plan = [
      [{ op: "setDensity", net: "discriminator", target: 0.3 }],
      [{ op: "setDensity", net: "discriminator", target: 0.15, growth: "global_random" }, { op: "setDensity", net: "generator", target: 0.35 }],
      [{ op: "dstStep", net: "discriminator", dropRate: 0.3, policy: { prune: "magnitude", growth: "random" } }],
      [],
      [{ op: "stop", reason: "seen enough" }],
    ][state.calls] ?? [];
    const seen = [...state.seen, Math.round(view.densities.discriminator.density * 1000) / 1000];
    return { actions: plan, state: { calls: state.calls + 1, seen }, note: { br: view.br.value, lossD: view.loss && view.loss.d, seen } };
  },
}`;

// Two runs at a time (one torch thread each, two cores): the tests share nothing.
describe.concurrent("an experiment's own controller", () => {
  it("reaches the worker: densities measured after each action are what it asked; stop ends the run; a stopped and resumed run equals the uninterrupted one", async () => {
    const dir = tempDir();
    const file = writeModule(dir, SCRIPTED);
    const whole = join(dir, "whole");
    const r = await run([file, "--out", whole]);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const recs = records(whole);
    const decisions = recs.filter((x) => x.kind === "decision");
    expect(decisions.map((d) => d.iter)).toEqual([100, 200, 300, 400, 500]);
    expect(decisions[0]).toMatchObject({ controller: "scripted", event: "cadence", actions: [{ op: "setDensity", net: "discriminator", target: 0.3, growth: "global_gradient" }] });
    // Each setDensity's density record (written after the call's actions) holds the measured densities.
    const density = (iter: number) => recs.find((x) => x.kind === "density" && x.iter === iter) as { generator: number; discriminator: number };
    expect(density(100).discriminator).toBeCloseTo(0.3, 3);
    expect(density(200).discriminator).toBeCloseTo(0.15, 3);
    expect(density(200).generator).toBeCloseTo(0.35, 3);
    const dst = recs.find((x) => x.kind === "dst" && x.net === "discriminator") as { iter: number; active: number; total: number; pruned: number };
    expect(dst.iter).toBe(300);
    expect(dst.active / dst.total).toBeCloseTo(0.15, 3); // a DST step keeps the count
    expect(dst.pruned).toBeGreaterThan(0);
    // The controller saw the measured densities after its own earlier actions.
    expect((decisions[3]!.note as { seen: number[] }).seen.slice(1, 3)).toEqual([0.3, 0.15]);
    expect(recs.filter((x) => x.kind === "stop")).toEqual([{ iter: 500, kind: "stop", controller: "scripted", reason: "seen enough" }]);
    const summary = JSON.parse(readFileSync(join(whole, "summary.json"), "utf8"));
    expect(summary).toMatchObject({ iterations: 500, stopped: { iter: 500, controller: "scripted", reason: "seen enough" } });
    expect(summary.final.densityD).toBeCloseTo(0.15, 3);
    const config = JSON.parse(readFileSync(join(whole, "config.json"), "utf8"));
    expect(config.controllers).toEqual([{ name: "scripted", module: file }]);
    // The built-in G DST step still ran at its own cadence, without a decision record of its own.
    expect(recs.filter((x) => x.kind === "dst" && x.net === "generator").map((x) => x.iter)).toEqual([150, 300, 450]);

    const parts = join(dir, "parts");
    const first = await run([file, "--out", parts, "--until", "250"]);
    expect(first.exitCode, first.stderr).toBe(0);
    const second = await run(["--resume", parts]);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(readFileSync(join(parts, "metrics.jsonl"), "utf8")).toBe(readFileSync(join(whole, "metrics.jsonl"), "utf8"));
    // A stopped run is finished: resuming it trains nothing.
    const again = await run(["--resume", parts]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/stopped by scripted at iteration 500 \(seen enough\)/);
  });

  it("an invalid action fails the run with exit 1 after a checkpoint, naming the controller and the iteration", async () => {
    const dir = tempDir();
    const file = writeModule(
      dir,
      `{ name: "overeager", every: 100, initialState: () => null,
         decide: (view) => view.iteration < 200 ? {} : { actions: [{ op: "setDensity", net: "discriminator", target: 1.5 }] } }`,
      400,
    );
    const out = join(dir, "run");
    const r = await run([file, "--out", out]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/controller 'overeager' at iteration 200: invalid answer .*actions\.0\.target: .*1/);
    expect(r.stderr).toMatch(/a checkpoint at iteration 200 was written/);
    expect(JSON.parse(readFileSync(join(out, "checkpoint.json"), "utf8")).iter).toBe(200);
    expect(JSON.parse(readFileSync(join(out, "failed.json"), "utf8")).error).toMatch(/overeager/);
  });

  it("a stop after an evaluation that changed G evaluates again: the final evaluation is of the G the run ends with", async () => {
    const dir = tempDir();
    const file = writeModule(
      dir,
      `{ name: "shrink-and-stop", every: 100, initialState: () => null,
         decide: () => ({ actions: [{ op: "stop", reason: "done" }, { op: "setDensity", net: "generator", target: 0.1 }] }) }`,
      400,
      "\n  eval: { every: 100, samples: 500 },",
    );
    const out = join(dir, "run");
    const r = await run([file, "--out", out]);
    expect(r.exitCode, r.stderr).toBe(0);
    // The records of what the actions did come before the stop, wherever the controller listed it.
    expect(records(out).map((x) => `${x.iter} ${x.kind}`).filter((s) => !/ (loss|br)$/.test(s))).toEqual([
      "0 density", "100 eval", "100 decision", "100 density", "100 stop", "100 eval", "100 density",
    ]);
    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    expect(summary.final.densityG).toBeCloseTo(0.1, 3);
    const evals = records(out).filter((x) => x.kind === "eval");
    expect(summary.eval.final).toEqual({ iter: 100, metrics: evals[1].metrics });
    // Each keeps its own picture.
    expect(evals.map((e) => e.picture)).toEqual(["samples/iter-000000100.png", "samples/iter-000000100-final.png"]);
    expect(existsSync(join(out, evals[1].picture))).toBe(true);
  });

  it("a controller that never answers fails the run at its timeout, and its timers do not keep the process alive", async () => {
    const dir = tempDir();
    const file = writeModule(
      dir,
      `{ name: "stuck", every: 100, timeoutMs: 500, initialState: () => null,
         decide: () => new Promise(() => { setInterval(() => {}, 1000); }) }`,
      200,
    );
    const out = join(dir, "run");
    const started = Date.now();
    const r = await execa("node", [CLI, "run", file, "--out", out], { reject: false, timeout: 60_000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/controller 'stuck' at iteration 100: no answer within 500 ms \(its timeoutMs\)/);
    expect(JSON.parse(readFileSync(join(out, "checkpoint.json"), "utf8")).iter).toBe(100);
    expect(Date.now() - started).toBeLessThan(45_000);
  });

  it("a module is held to the same checks on resume as at the start; its controllers cannot change the experiment; code outside controllers is named", async () => {
    const dir = tempDir();
    const counter = (every: string) => `{ name: "counter", every: ${every}, initialState: () => ({ n: 0 }), decide: (v, s) => ({ state: { n: s.n + 1 } }) }`;
    const file = writeModule(dir, counter("100"), 400);
    const out = join(dir, "run");
    const first = await run([file, "--out", out, "--until", "100"]);
    expect(first.exitCode, first.stderr).toBe(0);
    const config = readFileSync(join(out, "config.json"), "utf8");
    // Edited since: a cadence of 2.5 iterations is refused as it would be in a new run (the worker refused it, unnamed).
    writeModule(dir, counter("2.5"), 400);
    const edited = await run(["--resume", out]);
    expect(edited.exitCode).toBe(2);
    expect(edited.stderr).toMatch(/invalid experiment .*experiment\.ts:\n {2}- controllers\.0\.every: must be a positive integer of iterations, got 2\.5/);
    // Moved: the message says which field of config.json names it.
    rmSync(file);
    const moved = await run(["--resume", out]);
    expect(moved.exitCode).toBe(2);
    expect(moved.stderr).toMatch(/the run's controller 'counter' comes from .*experiment\.ts \(config\.json's controllers\.0\.module\), which cannot be loaded: .*\nrestore the module there, or, if it moved, write its new path into controllers\.0\.module/);
    expect(readFileSync(join(out, "config.json"), "utf8")).toBe(config);
    // initialState is handed a frozen copy of the experiment, as decide is: what it writes there (ignored, the
    // module being sloppy-mode code) trains nothing, and the checkpoint's record of the config stays config.json's.
    const sneaky = writeModule(join(dir, "sneaky"), `{ name: "sneaky", every: 100, initialState: (exp) => { try { exp.train.lrD = 0.05; } catch {} return null; }, decide: () => ({}) }`, 200);
    const sneakyOut = join(dir, "sneaky-run");
    expect((await run([sneaky, "--out", sneakyOut, "--until", "100"])).exitCode).toBe(0);
    const resumed = await run(["--resume", sneakyOut]);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(sneakyOut, "checkpoint.json"), "utf8")).config.train.lrD).toBe(0.0005);
    // A controller put where data belongs.
    const misplaced = writeModule(join(dir, "misplaced"), counter("100"), 400, "\n  discriminator: { controller: scripted },");
    const m = await run([misplaced, "--out", join(dir, "misplaced-run"), "--set", "train.lrD=0.001"]);
    expect(m.exitCode).toBe(2);
    expect(m.stderr).toMatch(/discriminator\.controller\.initialState: a function: code is only allowed in `controllers`/);
  });

  it("a stop between log iterations ends with the losses since the last record; the records' FLOPs sum to the run's", async () => {
    const dir = tempDir();
    const file = writeModule(
      dir,
      `{ name: "stopper", every: 50, initialState: () => null,
         decide: (v) => v.iteration === 50 ? { actions: [{ op: "setDensity", net: "generator", target: 0.3 }] } : v.iteration === 150 ? { actions: [{ op: "stop", reason: "enough" }] } : {} }`,
      400,
      "\n  log: { every: 20 },",
    );
    const out = join(dir, "run");
    const r = await run([file, "--out", out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const losses = records(out).filter((x) => x.kind === "loss");
    expect(losses.at(-1).iter).toBe(150);
    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    const summed = losses.reduce((a: number, x: { iter: number; flopsPerIteration: number }, i: number) => a + x.flopsPerIteration * (x.iter - (i ? losses[i - 1].iter : 0)), 0);
    expect(Math.abs(summed / summary.flops.total - 1)).toBeLessThan(1e-12);
  });

  it("a JSON experiment cannot carry controllers: exit 2 naming the field", async () => {
    const dir = tempDir();
    const file = join(dir, "x.json");
    writeFileSync(file, JSON.stringify({ method: "static-balance", density: 0.5, iterations: 10, model: { name: "mlp2d" }, data: { name: "ring8" }, controllers: [{ name: "x" }] }));
    const r = await run([file, "--out", join(dir, "out")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/controllers\.0: a controller is an object with a name, initialState\(\) and decide\(\)/);
  });
});
