import { execa } from "execa";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MetricRecord, Summary } from "../../src/run/records.js";
import { COMMANDS } from "../../src/commands/usage.js";
import { toyExperiment } from "../toy.js";
import { isAlive, oneTorchThread, spawnCli, tempDir, waitFor } from "./helpers.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");
const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "ring8-adapt.json");

// The tests share nothing and run three at a time: most of them wait on a worker starting or on the CLI, and the
// longest trains in one worker. One torch thread per worker keeps the workers from spinning against each other.
oneTorchThread();

const readRecords = (dir: string) =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => MetricRecord.parse(JSON.parse(l)));

describe.concurrent("ddst run", () => {
  it("runs the ADAPT toy example for 400 iterations and writes config, metrics, pictures and summary", async () => {
    const out = join(tempDir(), "run");
    // Logged every 30 iterations: the DST steps (every 100) and the decision at 200 fall inside loss intervals.
    const r = await execa("node", [CLI, "run", EXAMPLE, "--iterations", "400", "--set", "model.hidden=128", "--set", "log.every=30", "--out", out], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/controller: BR/);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config).toMatchObject({ method: "adapt-relax", iterations: 400, discriminator: { controller: { rule: "relaxed" } } });
    const records = readRecords(out);
    const kinds = new Set(records.map((x) => x.kind));
    for (const k of ["loss", "br", "controller", "density", "dst", "eval"]) expect(kinds).toContain(k);
    const evals = records.filter((x) => x.kind === "eval");
    expect(evals.map((x) => x.iter)).toEqual([400]);
    expect(Object.keys(evals[0]!.kind === "eval" ? evals[0]!.metrics : {})).toEqual(expect.arrayContaining(["modes", "highQuality"]));
    expect(existsSync(join(out, "samples", "iter-000000400.png"))).toBe(true);
    for (const x of records) expect(Number.isInteger(x.iter)).toBe(true);
    const controller = records.filter((x) => x.kind === "controller");
    // Window of 200 iterations, decisions every 200: the first decision comes at 200, then 400 is the end.
    expect(controller.map((x) => x.iter)).toEqual([200]);
    const summary = Summary.parse(JSON.parse(readFileSync(join(out, "summary.json"), "utf8")));
    expect(summary).toMatchObject({ method: "adapt-relax", iterations: 400, seed: 0, device: "cpu" });
    // device "auto" (the default) is resolved when the worker starts, printed and recorded
    expect(r.stderr).toMatch(/device auto: cpu \(torch sees no GPU\)/);
    expect(config.device).toBe("cpu");
    // and the run is listed and shown as finished
    const ls = await execa("node", [CLI, "ls", join(out, "..")], { reject: false });
    expect(ls.exitCode, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^run +run +adapt-relax +0\.1 +400\/400 +finished +kl (\d\.\d{4}|n\/a)$/m);
    const show = await execa("node", [CLI, "show", out], { reject: false });
    expect(show.stdout).toMatch(/status: finished, iteration 400 of 400\n/);
    expect(show.stdout).toMatch(/training FLOPs: .*% of dense/);
    expect(summary.eval?.final?.iter).toBe(400);
    // kl ranks toy evaluations, named even when a generator with no high-quality sample yet has no value for it.
    expect(summary.eval?.primary).toBe("kl");
    expect(summary.final.densityG).toBeCloseTo(0.1, 2);
    expect(summary.final.densityD).toBeCloseTo(controller[0]!.densityD, 2);
    // The loss records' FLOPs per iteration, times their intervals, are the run's FLOPs (what the report plots).
    const losses = records.filter((x) => x.kind === "loss");
    const summed = losses.reduce((a, x, i) => a + x.flopsPerIteration! * (x.iter - (i ? losses[i - 1]!.iter : 0)), 0);
    expect(losses.at(-1)!.iter).toBe(400);
    expect(Math.abs(summed / summary.flops.total - 1)).toBeLessThan(1e-12);
    // The plan the ratio's dense run is counted over: the report's dense line, whatever config.json says later.
    expect(summary.flops.planned).toBe(400);
  });

  it("gives identical metrics for the same seed on CPU, and different ones for another seed", async () => {
    const runs = await Promise.all(
      ["7", "7", "8"].map(async (seed) => {
        const out = join(tempDir(), "run");
        const r = await execa("node", [CLI, "run", EXAMPLE, "--iterations", "120", "--seed", seed, "--set", "model.hidden=64", "--set", "eval.every=60", "--out", out], { reject: false });
        expect(r.exitCode, r.stderr).toBe(0);
        return readFileSync(join(out, "metrics.jsonl"), "utf8");
      }),
    );
    expect(runs[0]).toBe(runs[1]);
    expect(runs[0]).not.toBe(runs[2]);
  });

  it("rejects an invalid experiment with exit code 2, naming each field, creating nothing", async () => {
    const dir = tempDir();
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ method: "adapt-relax", density: 1.5, iterations: 10, model: { name: "mlp2d" }, colour: 1 }));
    const out = join(dir, "out");
    const r = await execa("node", [CLI, "run", bad, "--out", out], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/density/);
    expect(r.stderr).toMatch(/colour/);
    expect(r.stderr).toMatch(/data/);
    expect(existsSync(out)).toBe(false);
    const table = await execa("node", [CLI, "flops", join(import.meta.dirname, "..", "..", "tables", "mnist-mini.json")], { reject: false });
    expect(table.exitCode).toBe(2);
    expect(table.stderr).toMatch(/this is a table file \(base, methods, densities, seeds\), not an experiment: run it with `ddst table /);
    const zero = await execa("node", [CLI, "run", EXAMPLE, "--out", out, "--iterations", "0"], { reject: false });
    expect(zero.exitCode).toBe(2);
    expect(zero.stderr).toMatch(/--iterations must be a positive integer, got '0'/);
    const report = await execa("node", [CLI, "report", dir, "--out", join(dir, "nowhere", "r.html")], { reject: false });
    expect(report.exitCode).toBe(2);
    expect(report.stderr).toMatch(/cannot write the report to .*nowhere\/r\.html: .*nowhere is not a directory; choose another --out/);
    expect(existsSync(out)).toBe(false);
  });

  it("refuses a method that does not have the policies the experiment tunes (exit 2, naming field and method)", async () => {
    const out = join(tempDir(), "out");
    const r = await execa("node", [CLI, "run", EXAMPLE, "--set", "method=static-balance", "--out", out], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/discriminator\.controller: static-balance has no density controller \(methods with one: dda, adapt-relax, adapt-strict\); remove this block/);
    expect(r.stderr).toMatch(/generator\.dst: static-balance/);
    expect(existsSync(out)).toBe(false);
  });

  it("names a missing data directory and leaves no half-made run behind", async () => {
    const dir = tempDir();
    const exp = join(dir, "cifar.json");
    writeFileSync(exp, JSON.stringify({ method: "static-balance", density: 0.5, iterations: 10, model: { name: "dcgan32" }, data: { name: "cifar10", path: "${CIFAR_TEST_DIR}" } }));
    const out = join(dir, "out");
    const unset = await execa("node", [CLI, "run", exp, "--out", out], { reject: false, env: { CIFAR_TEST_DIR: "" } });
    expect(unset.exitCode).toBe(2);
    expect(unset.stderr).toMatch(/data.path uses \$\{CIFAR_TEST_DIR\}/);
    const missing = await execa("node", [CLI, "run", exp, "--out", out], { reject: false, env: { CIFAR_TEST_DIR: join(dir, "nowhere") } });
    expect(missing.exitCode).toBe(2); // found before the worker starts (src/run/preflight.ts)
    expect(missing.stderr).toMatch(/data\.path: .*nowhere: no such file or directory/);
    mkdirSync(join(dir, "empty"));
    const empty = await execa("node", [CLI, "run", exp, "--out", out], { reject: false, env: { CIFAR_TEST_DIR: join(dir, "empty") } });
    expect(empty.exitCode).toBe(2); // the worker's refusal to build: bad input too
    expect(empty.stderr).toMatch(/empty\/cifar-10-batches-bin: expected CIFAR-10 as cifar-10-batches-bin or cifar-10-batches-py .*found none of them/);
    expect(existsSync(out)).toBe(false);
    // Into a directory the user made (here `--out .`): the same cause is named, and the directory stays, empty.
    const mine = join(dir, "mine");
    mkdirSync(mine);
    const here = await execa("node", [CLI, "run", exp, "--out", "."], { reject: false, cwd: mine, env: { CIFAR_TEST_DIR: join(dir, "empty") } });
    expect(here.exitCode).toBe(2);
    expect(here.stderr).toMatch(/found none of them/);
    expect(readdirSync(mine)).toEqual([]);
  });

  it("refuses to write into a non-empty run directory", async () => {
    const out = tempDir();
    writeFileSync(join(out, "keep.txt"), "precious");
    const r = await execa("node", [CLI, "run", EXAMPLE, "--out", out], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/not empty/);
    expect(readFileSync(join(out, "keep.txt"), "utf8")).toBe("precious");
  });

  it("refuses a broken DDST_PYTHON by name, creating nothing (bad input: exit 2)", async () => {
    const out = join(tempDir(), "run");
    const r = await execa("node", [CLI, "run", EXAMPLE, "--out", out], { reject: false, env: { DDST_PYTHON: "/nonexistent/python" } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/\/nonexistent\/python \(DDST_PYTHON\): not found/);
    expect(existsSync(out)).toBe(false);
    // A directory, or a file that is not executable: said as such.
    const dir = tempDir();
    writeFileSync(join(dir, "python"), "");
    for (const [python, said] of [[dir, "a directory, not an interpreter"], [join(dir, "python"), "not executable \\(chmod \\+x it"]] as const) {
      const bad = await execa("node", [CLI, "run", EXAMPLE, "--out", out], { reject: false, env: { DDST_PYTHON: python } });
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toMatch(new RegExp(`${python} \\(DDST_PYTHON\\): ${said}`));
    }
    const doctor = await execa("node", [CLI, "doctor"], { reject: false, env: { DDST_PYTHON: "/nonexistent/python" } });
    expect(doctor.exitCode).toBe(1);
    expect(doctor.stdout).toMatch(/DDST_PYTHON is set but unusable/);
  });

  it("stops the worker on SIGTERM and leaves no orphan", async () => {
    const out = join(tempDir(), "run");
    const { child, firstWorker } = spawnCli(CLI, ["run", EXAMPLE, "--iterations", "1000000", "--out", out]);
    const pid = await firstWorker();
    await new Promise((r) => setTimeout(r, 500));
    child.kill("SIGTERM");
    const r = await child;
    expect(r.exitCode).toBe(143);
    expect(await waitFor(() => !isAlive(pid), 3000)).toBe(true);
    expect(existsSync(join(out, "config.json"))).toBe(true);
  });

  it("reports a worker killed mid-run with its last words and a non-zero exit", async () => {
    const out = join(tempDir(), "run");
    // No restarts: the death itself is what is reported.
    const { child, firstWorker } = spawnCli(CLI, ["run", EXAMPLE, "--iterations", "1000000", "--set", "supervision.maxRestarts=0", "--out", out]);
    const pid = await firstWorker();
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    process.kill(pid, "SIGKILL");
    const r = await child;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/killed by SIGKILL/);
    expect(r.stderr).toMatch(/ddst-worker ready/);
  });

  it("answers --help for every command, --version, and refuses a zero benchmark", async () => {
    for (const cmd of Object.keys(COMMANDS)) {
      const r = await execa("node", [CLI, cmd, "--help"], { reject: false });
      expect(r.exitCode, `${cmd}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage:\\n {2}ddst ${cmd}`));
    }
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { version: string };
    const v = await execa("node", [CLI, "--version"], { reject: false });
    expect(v.stdout).toBe(`ddst ${pkg.version} (worker protocol 5)`);
    // A module whose top-level await never settles: Node would exit (13) without a word.
    const tla = join(tempDir(), "waits.mjs");
    writeFileSync(tla, "await new Promise(() => {});\nexport default {};\n");
    const waits = await execa("node", [CLI, "run", tla], { reject: false });
    expect([waits.exitCode, waits.stderr]).toEqual([2, `ddst: ${tla}: the module never finished loading (a top-level await that never settles)`]);
    // A module that exits by itself while loading is not said to hang.
    const exits = join(tempDir(), "exits.mjs");
    writeFileSync(exits, "process.exit(0);\nexport default {};\n");
    const exited = await execa("node", [CLI, "run", exits], { reject: false });
    expect([exited.exitCode, exited.stderr]).toEqual([0, ""]);
    const b = await execa("node", [CLI, "bench", "--iters", "0"], { reject: false });
    expect(b.exitCode).toBe(2);
    expect(b.stderr).toMatch(/--iters must be a positive integer/);
  });

  it("lists runs by status: running, interrupted, failed, unstarted", async () => {
    const root = tempDir();
    const exp = toyExperiment({ name: "toy" });
    const state = { iter: 100, densityD: 0.1, window: { size: 10, ratios: [] }, lossSum: { d: 0, g: 0, n: 0 }, flops: { paper: { generator: 0, discriminator: 0 }, executed: { generator: 0, discriminator: 0 } }, restarts: 0, wallSeconds: 1, eval: { final: null, best: null }, metricsBytes: 0 };
    const make = (name: string, files: Record<string, unknown>) => {
      mkdirSync(join(root, name));
      for (const [f, v] of Object.entries({ "config.json": exp, ...files })) writeFileSync(join(root, name, f), typeof v === "string" ? v : JSON.stringify(v));
    };
    const pointer = { iter: 100, worker: "checkpoints/iter-000000100.pt", state };
    // Running: its progress is its newest record (130), not its checkpoint's (100); a record being written is no record.
    const recs = [100, 110, 120, 130].map((iter) => JSON.stringify({ iter, kind: "loss", d: 1, g: 1 })).join("\n");
    make("a-running", { "checkpoint.json": pointer, "run.lock": `${process.pid} ${hostname()}\n`, "metrics.jsonl": `${recs}\n{"iter":14` });
    make("b-interrupted", { "checkpoint.json": pointer });
    make("c-failed", { "checkpoint.json": pointer, "failed.json": { error: "the PyTorch worker was killed by SIGKILL", iter: 100, at: "2026-01-01T00:00:00Z" } });
    make("d-unstarted", {});
    make("e-damaged", { "config.json": '{"name": "toy", "meth' });
    make("e-lost-pointer", { "checkpoint.json": '{"iter": 100, "wor' });
    // Files there that cannot be read (a directory in a file's place; permissions do the same for other users than
    // root) are no missing files: a run not yet finished, a run not there.
    mkdirSync(join(root, "e-unreadable-config", "config.json"), { recursive: true });
    make("e-unreadable-summary", { "checkpoint.json": pointer });
    mkdirSync(join(root, "e-unreadable-summary", "summary.json"));
    // A table of 2 x 2 cells: one interrupted, one damaged (its config.json cut), two not started (no directories).
    mkdirSync(join(root, "f-table", "cells", "adapt-relax-d0.1-s0"), { recursive: true });
    writeFileSync(join(root, "f-table", "table-spec.json"), JSON.stringify({ source: "t.json", spec: { name: "tt", base: "b.json", methods: ["adapt-relax", "dense"], densities: [0.1], seeds: [0, 1] } }));
    for (const [f, v] of Object.entries({ "config.json": exp, "checkpoint.json": pointer })) writeFileSync(join(root, "f-table", "cells", "adapt-relax-d0.1-s0", f), JSON.stringify(v));
    mkdirSync(join(root, "f-table", "cells", "adapt-relax-d0.1-s1"));
    writeFileSync(join(root, "f-table", "cells", "adapt-relax-d0.1-s1", "config.json"), "{");
    mkdirSync(join(root, "f-table-damaged"));
    writeFileSync(join(root, "f-table-damaged", "table-spec.json"), '{"source": "t.json", "spe');
    make("h-\u001b[2Jescape", { "checkpoint.json": pointer }); // a name that would clear the terminal
    mkdirSync(join(root, "not-a-run"));
    symlinkSync(join(root, "nowhere"), join(root, "g-dangling")); // a link that leads nowhere is no run, and no crash
    const ls = await execa("node", [CLI, "ls", root], { reject: false });
    expect(ls.exitCode, ls.stderr).toBe(0);
    const rows = ls.stdout.split("\n").slice(1).map((l) => l.split(/ {2,}/));
    expect(rows.slice(0, 4).map((r) => [r[0], r[4], r[5]])).toEqual([
      ["a-running", "130/400", `running (pid ${process.pid})`],
      ["b-interrupted", "100/400", "interrupted"],
      ["c-failed", "100/400", "failed"],
      ["d-unstarted", "0/400", "unstarted"],
    ]);
    // Empty columns: the rest of these lines is matched whole.
    expect(rows.slice(4).map((r) => r.join("  "))).toEqual([
      "e-damaged  run  ?  damaged: config.json unreadable",
      "e-lost-pointer  run  adapt-relax  0.1  0/400  damaged: checkpoint.json unreadable, so --resume cannot continue it",
      `e-unreadable-config  run  ?  damaged: ${join(root, "e-unreadable-config", "config.json")} cannot be read (EISDIR): fix its permissions or put the right file back`,
      `e-unreadable-summary  run  adapt-relax  0.1  0/400  damaged: ${join(root, "e-unreadable-summary", "summary.json")} cannot be read (EISDIR): fix its permissions or put the right file back`,
      "f-table  table  tt  0/4 cells  1 interrupted, 1 damaged, 2 not started",
      `f-table-damaged  table  ${join(root, "f-table-damaged")}  0/0 cells  damaged: ${join(root, "f-table-damaged", "table-spec.json")} unreadable`,
      "h-\\x1b[2Jescape  run  adapt-relax  0.1  100/400  interrupted",
    ]);
    // A table directory itself: the table, then its cells; a run directory itself: its line.
    const table = await execa("node", [CLI, "ls", join(root, "f-table")], { reject: false });
    expect(table.stdout.split("\n").slice(1).map((l) => l.split(/ {2,}/).slice(0, 2).join(" "))).toEqual([
      `${join(root, "f-table")} table`,
      "adapt-relax-d0.1-s0 run",
      "adapt-relax-d0.1-s1 run",
    ]);
    expect((await execa("node", [CLI, "ls", join(root, "c-failed")], { reject: false })).stdout).toMatch(/c-failed +run +adapt-relax .* failed/);
    const resume = await execa("node", [CLI, "run", "--resume", join(root, "e-lost-pointer")], { reject: false });
    expect(resume.exitCode).toBe(2);
    expect(resume.stderr).toMatch(/checkpoint.json cannot be read as a checkpoint pointer \(.*\): it holds the run's own state .*restore it from a copy, or start the run anew/);
    const damaged = await execa("node", [CLI, "show", join(root, "e-damaged")], { reject: false });
    expect(damaged.exitCode).toBe(2);
    expect(damaged.stderr).toMatch(/e-damaged\/config.json cannot be read as a ddst experiment \(cut short or edited\)/);
    const empty = tempDir();
    const fresh = await execa("node", [CLI, "ls"], { reject: false, cwd: empty });
    expect([fresh.exitCode, fresh.stdout]).toEqual([0, "no ddst runs or tables here yet: runs/ does not exist (ddst ls DIR lists another directory)"]);
    const unreadable = await execa("node", [CLI, "show", join(root, "e-unreadable-config")], { reject: false });
    expect(unreadable.exitCode).toBe(2);
    expect(unreadable.stderr).toContain(`${join(root, "e-unreadable-config", "config.json")} cannot be read (EISDIR)`);
    const show = await execa("node", [CLI, "show", join(root, "c-failed")], { reject: false });
    expect(show.stdout).toMatch(/failed after the checkpoint at 100: the PyTorch worker was killed by SIGKILL/);
    const interrupted = await execa("node", [CLI, "show", join(root, "b-interrupted")], { reject: false });
    expect(interrupted.stdout).toMatch(/continue with: node \S*cli\.js run --resume/);
    const none = await execa("node", [CLI, "show", join(root, "not-a-run")], { reject: false });
    expect(none.exitCode).toBe(2);
  });
});
