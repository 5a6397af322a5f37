import { execa } from "execa";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir, waitFor, writeToyTable } from "./helpers.js";
import { startCluster } from "./slurm-cluster.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");

const cluster = await startCluster();
if ("skip" in cluster) console.warn(`SKIPPED test/integration/slurm.test.ts: ${cluster.skip}`);
afterAll(async () => {
  if (!("skip" in cluster)) await cluster.stop();
});

const env = "skip" in cluster ? {} : cluster.env;
const ddst = (args: string[]) => execa("node", [CLI, ...args], { env, reject: false });
const slurm = (cmd: string, args: string[]) => execa(cmd, args, { env, reject: false });

/** Two toy cells, long enough to be interrupted mid-training: the signals go out after a --status call, which
 * takes seconds on a loaded 2-core machine, and a cell signalled in its final evaluation just finishes. */
const ITERS = 1200;
const writeSpec = (dir: string) => writeToyTable(dir, { iterations: ITERS, checkpointEvery: 200, methods: ["static-balance", "adapt-relax"], seeds: [0] });

const ADAPT = "adapt-relax-d0.5-s0";
const STATIC = "static-balance-d0.5-s0";
const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).length : 0);

describe.skipIf("skip" in cluster)("ddst table --slurm on a one-node Slurm", () => {
  it("--dry-run writes a job array script that sbatch accepts, and submits nothing", async () => {
    const dir = tempDir();
    const spec = writeSpec(dir);
    const out = join(dir, "table");
    const r = await ddst(["table", spec, "--out", out, "--slurm", "--dry-run", "--gpus-per-cell", "0", "--cells-per-gpu", "2", "--partition", "debug", "--time", "10:00", "--sbatch-arg=--cpus-per-task=1"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const script = readFileSync(join(out, "slurm", "table.sbatch"), "utf8");
    expect(r.stdout).toContain(script.trim());
    for (const line of ["--array=0-0", "--requeue", "--signal=B:USR1@120", "--partition=debug", "--time=10:00", "--cpus-per-task=1", "--open-mode=append"])
      expect(script).toContain(`#SBATCH ${line}`);
    expect(script).toContain(`'static-balance-d0.5-s0,${ADAPT}' # task 0`);
    expect(script).toMatch(/--cells "\$cells" --devices cpu --jobs 2/);
    const test = await slurm("sbatch", ["--test-only", join(out, "slurm", "table.sbatch")]);
    expect(test.exitCode, test.stderr).toBe(0);
    expect(test.stderr).toMatch(/to start at/);
    expect(existsSync(join(out, "slurm", "submissions.jsonl"))).toBe(false);

    const bad = await ddst(["table", spec, "--out", out, "--slurm", "--gpus-per-cell", "2", "--time", "soon"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--time must be a Slurm time limit/);
    expect(bad.stderr).toMatch(/--gpus-per-cell must be 1 .* or 0/);
  });

  it("runs the cells as a job array; a requeued task and one warned of its time limit resume from their checkpoints; the table is built from the cells", async () => {
    const dir = tempDir();
    const spec = writeSpec(dir);
    const out = join(dir, "table");
    // The uninterrupted references of both cells, trained here meanwhile with the one thread an array task gets
    // (--cpus-per-task=1): CPU results depend on torch's thread count.
    const reference = execa("node", [CLI, "table", spec, "--out", join(dir, "reference"), "--cells", `${STATIC},${ADAPT}`, "--devices", "cpu", "--jobs", "2"], {
      env: { ...env, SLURM_CPUS_PER_TASK: "2" },
      reject: false,
    });

    const sub = await ddst(["table", spec, "--out", out, "--slurm", "--gpus-per-cell", "0", "--sbatch-arg=--cpus-per-task=1"]);
    expect(sub.exitCode, sub.stderr + sub.stdout).toBe(0);
    const job = /submitted job array (\d+): 2 task\(s\) for 2 cell\(s\)/.exec(sub.stdout)?.[1];
    expect(job, sub.stdout).toBeDefined();

    // Just submitted: a local table command refuses to train cells that went to Slurm.
    const local = await ddst(["table", spec, "--out", out]);
    expect(local.exitCode, local.stdout + local.stderr).toBe(2);
    expect(local.stderr).toMatch(/was submitted to Slurm and 2 of its 2 cells are not finished/);
    // While the array runs, --status names each cell's task.
    const metrics = (cell: string, table = out) => join(table, "cells", cell, "metrics.jsonl");
    expect(await waitFor(() => lines(metrics(ADAPT)) >= 2 && lines(metrics(STATIC)) >= 2, 60_000, 100)).toBe(true);
    const running = await ddst(["table", spec, "--out", out, "--status"]);
    expect(running.stdout).toMatch(new RegExp(`${ADAPT} +running +${job}_1 +\\d+/${ITERS}`));

    // Preemption: Slurm requeues task 1 (TERM to its processes, then the task pends again). Task 0 gets the
    // time-limit warning, USR1 to its batch shell alone as --signal=B:USR1 sends it: it checkpoints and requeues itself.
    const requeue = await slurm("scontrol", ["requeue", `${job}_1`]);
    expect(requeue.exitCode, requeue.stderr).toBe(0);
    const warn = await slurm("scancel", ["--batch", "--signal=USR1", `${job}_0`]);
    expect(warn.exitCode, warn.stderr).toBe(0);
    const pending = async (task: number) => String((await slurm("squeue", ["-h", "-j", `${job}_${task}`, "-o", "%T"])).stdout).trim();
    for (const task of [1, 0]) {
      for (let end = Date.now() + 60_000; (await pending(task)) !== "PENDING" && Date.now() < end; ) await new Promise((r) => setTimeout(r, 250));
      expect(await pending(task)).toBe("PENDING");
    }
    const queued = await ddst(["table", spec, "--out", out, "--status"]);
    expect(queued.stdout).toMatch(new RegExp(`${ADAPT} +queued +${job}_1 +\\d+/${ITERS} +pending`));
    expect(queued.stdout).toMatch(new RegExp(`${STATIC} +queued +${job}_0 +\\d+/${ITERS} +pending`));
    // Slurm holds a requeued job back for two minutes (BeginTime); the test does not wait that long. But not less
    // than two seconds either: slurmd revokes a killed job's credential with one-second resolution, and a relaunch
    // in the same second is refused ("Job N already killed, do not launch batch job": the task then ends at once,
    // exit 1, seen once on a loaded machine).
    await new Promise((r) => setTimeout(r, 2000));
    for (const task of [0, 1]) expect((await slurm("scontrol", ["update", `jobid=${job}_${task}`, "starttime=now"])).exitCode).toBe(0);

    const done = () => [STATIC, ADAPT].every((c) => existsSync(join(out, "cells", c, "summary.json")));
    expect(await waitFor(done, 90_000, 250)).toBe(true);
    const left = async () => String((await slurm("squeue", ["-h", "-j", job!])).stdout).trim();
    for (let end = Date.now() + 30_000; (await left()) !== "" && Date.now() < end; ) await new Promise((r) => setTimeout(r, 250));
    expect(await left()).toBe("");
    const log = (task: number) => readFileSync(join(out, "slurm", "logs", `${job}_${task}.out`), "utf8");
    expect(log(1)).toMatch(/CANCELLED AT .* DUE TO JOB REQUEUE/);
    expect(log(0)).toMatch(/time limit near; cells checkpointed, requeueing/);
    for (const [task, cell] of [[0, STATIC], [1, ADAPT]] as const) {
      expect(log(task)).toMatch(new RegExp(`interrupted ${cell} at iteration \\d+ \\(checkpoint written\\)`));
      expect(log(task)).toMatch(new RegExp(`start 2,[\\s\\S]*start ${cell} on cpu, resuming from iteration \\d+`));
    }
    const ref = await reference;
    expect(ref.exitCode, ref.stderr).toBe(0);
    for (const cell of [STATIC, ADAPT]) expect(readFileSync(metrics(cell), "utf8")).toBe(readFileSync(metrics(cell, join(dir, "reference")), "utf8"));

    const status = await ddst(["table", spec, "--out", out, "--status"]);
    expect(status.stdout).toMatch(new RegExp(`${STATIC} +done +${job}_0 +${ITERS}/${ITERS}`));
    expect(status.stdout).toMatch(new RegExp(`${ADAPT} +done +${job}_1 +${ITERS}/${ITERS}`));
    // After the array: the plain command writes the table from the cells, training nothing.
    const table = await ddst(["table", spec, "--out", out]);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toContain("2 finished, 0 to resume, 0 new");
    expect(table.stdout).not.toMatch(/^start /m);
    const result = JSON.parse(readFileSync(join(out, "table.json"), "utf8"));
    expect(result.entries.map((e: { method: string }) => e.method).sort()).toEqual(["adapt-relax", "static-balance"]);
  });
});
