import { execa } from "execa";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MetricRecord, Summary } from "../../src/run/records.js";
import { isAlive, spawnCli, tempDir, waitFor } from "./helpers.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");
const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "ring8-adapt.json");

const readRecords = (dir: string) =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => MetricRecord.parse(JSON.parse(l)));

describe("ddst run", () => {
  it("runs the ADAPT toy example for 400 iterations and writes config, metrics, pictures and summary", async () => {
    const out = join(tempDir(), "run");
    const r = await execa("node", [CLI, "run", EXAMPLE, "--iterations", "400", "--set", "model.hidden=128", "--out", out], { reject: false });
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
    expect(summary.eval?.final?.iter).toBe(400);
    // kl ranks toy evaluations; a generator with no high-quality sample yet has none to rank by.
    expect(summary.eval?.primary).toBe("kl" in summary.eval!.final!.metrics ? "kl" : null);
    expect(summary.final.densityG).toBeCloseTo(0.1, 2);
    expect(summary.final.densityD).toBeCloseTo(controller[0]!.densityD, 2);
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
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/nowhere: expected a directory holding cifar-10-batches-bin or cifar-10-batches-py/);
    expect(existsSync(out)).toBe(false);
  });

  it("refuses to write into a non-empty run directory", async () => {
    const out = tempDir();
    writeFileSync(join(out, "keep.txt"), "precious");
    const r = await execa("node", [CLI, "run", EXAMPLE, "--out", out], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/not empty/);
    expect(readFileSync(join(out, "keep.txt"), "utf8")).toBe("precious");
  });

  it("refuses a broken DDST_PYTHON by name, creating nothing", async () => {
    const out = join(tempDir(), "run");
    const r = await execa("node", [CLI, "run", EXAMPLE, "--out", out], { reject: false, env: { DDST_PYTHON: "/nonexistent/python" } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/\/nonexistent\/python \(DDST_PYTHON\): not found/);
    expect(existsSync(out)).toBe(false);
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
});
