import { execa } from "execa";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { MetricRecord, Summary } from "../../src/run/records.js";
import { durableToy, isAlive, oneTorchThread, spawnCli, tempDir, waitFor } from "./helpers.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");
const EXP = durableToy("resume-toy");

// The tests run side by side (each with runs of its own, nearly all CPU in one worker at a time): one torch
// thread per worker, so that they share the cores instead of spinning against each other (see oneTorchThread).
oneTorchThread();

const metrics = (dir: string) => readFileSync(join(dir, "metrics.jsonl"), "utf8");
const records = (dir: string) => metrics(dir).trim().split("\n").map((l) => MetricRecord.parse(JSON.parse(l)));

describe.concurrent("durable runs", () => {
  let file: string;
  /** The uninterrupted run's metrics, needed by the tests only at their end: the run goes on beside them. */
  let reference: Promise<string>;
  beforeAll(() => {
    file = join(tempDir(), "exp.json");
    writeFileSync(file, JSON.stringify(EXP));
    const out = join(tempDir(), "ref");
    reference = execa("node", [CLI, "run", file, "--out", out], { reject: false }).then((r) => {
      if (r.exitCode !== 0) throw new Error(`the reference run failed (exit ${r.exitCode}): ${r.stderr}`);
      return metrics(out);
    });
    reference.catch(() => undefined); // reported by the tests that await it, not as an unhandled rejection
  });

  it("stopped with --until and resumed, gives the uninterrupted run's metrics bitwise", async () => {
    const out = join(tempDir(), "split");
    const a = await execa("node", [CLI, "run", file, "--out", out, "--until", "150"], { reject: false });
    expect(a.exitCode, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/continue with: node \S*cli\.js run --resume/);
    expect(existsSync(join(out, "summary.json"))).toBe(false);
    // What a save cut short by a second signal leaves: gone at the next checkpoint, the named files kept.
    writeFileSync(join(out, "checkpoints", "iter-000000140.pt.tmp"), "half a checkpoint");
    const b = await execa("node", [CLI, "run", "--resume", out], { reject: false });
    expect(b.exitCode, b.stderr).toBe(0);
    expect(metrics(out)).toBe(await reference);
    expect(readdirSync(join(out, "checkpoints")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const again = await execa("node", [CLI, "run", "--resume", out], { reject: false });
    expect(again.exitCode).toBe(0);
    expect(metrics(out)).toBe(await reference);
  });

  it("Ctrl-C writes a checkpoint and exits 130; resuming gives the same metrics", async () => {
    const out = join(tempDir(), "sigint");
    const { child, firstWorker } = spawnCli(CLI, ["run", file, "--out", out]);
    let lines = 0;
    child.stdout?.on("data", (d: Buffer) => (lines += (d.toString().match(/iter /g) ?? []).length));
    const pid = await firstWorker();
    expect(await waitFor(() => lines >= 3, 60_000)).toBe(true);
    child.kill("SIGINT");
    const r = await child;
    expect(r.exitCode, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/--resume/);
    expect(await waitFor(() => !isAlive(pid), 3000)).toBe(true);
    const pointer = JSON.parse(readFileSync(join(out, "checkpoint.json"), "utf8"));
    expect(pointer.iter).toBeGreaterThan(0);
    const b = await execa("node", [CLI, "run", "--resume", out], { reject: false });
    expect(b.exitCode, b.stderr).toBe(0);
    expect(metrics(out)).toBe(await reference);
  });

  it("restarts a killed worker from the last checkpoint and records no iteration twice", async () => {
    const out = join(tempDir(), "restart");
    const { child, pids } = spawnCli(CLI, ["run", file, "--out", out]);
    // Kill the first worker once it has passed its first periodic checkpoint (iteration 100).
    expect(await waitFor(() => existsSync(join(out, "checkpoint.json")) && JSON.parse(readFileSync(join(out, "checkpoint.json"), "utf8")).iter >= 100, 60_000, 10)).toBe(true);
    process.kill(pids[0]!, "SIGKILL");
    const r = await child;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(pids.length).toBe(2);
    const recs = records(out);
    const restarts = recs.filter((x) => x.kind === "restart");
    expect(restarts).toHaveLength(1);
    expect(restarts[0]).toMatchObject({ attempt: 1, reason: "the PyTorch worker was killed by SIGKILL." });
    expect([100, 200]).toContain((restarts[0] as { fromCheckpoint: number }).fromCheckpoint);
    const losses = recs.filter((x) => x.kind === "loss").map((x) => x.iter);
    expect(losses).toEqual(Array.from({ length: 30 }, (_, i) => (i + 1) * 10));
    // Apart from the restart record, the run is the uninterrupted one.
    const withoutRestart = recs.filter((x) => x.kind !== "restart").map((x) => JSON.stringify(x)).join("\n") + "\n";
    expect(withoutRestart).toBe(await reference);
    const summary = Summary.parse(JSON.parse(readFileSync(join(out, "summary.json"), "utf8")));
    expect(summary.restarts).toBe(1);
  });

  it("gives up after supervision.maxRestarts", async () => {
    const out = join(tempDir(), "giveup");
    const f = join(tempDir(), "exp.json");
    writeFileSync(f, JSON.stringify({ ...EXP, iterations: 1_000_000, supervision: { maxRestarts: 0 } }));
    const { child, firstWorker } = spawnCli(CLI, ["run", f, "--out", out]);
    const pid = await firstWorker();
    expect(await waitFor(() => existsSync(join(out, "checkpoint.json")), 60_000)).toBe(true);
    process.kill(pid, "SIGKILL");
    const r = await child;
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/maxRestarts is 0/);
  });
});
