import { execa } from "execa";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Summary } from "../../src/run/records.js";
import { hugePoints, tempDir, waitFor, writeToyTable } from "./helpers.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");

const METHODS = ["static-balance", "adapt-relax"];
const SEEDS = [0, 1];

/** A 2-method x 1-density x 2-seed toy table; the base tunes ADAPT's controller, which static-balance lacks. */
const writeSpec = (dir: string, iterations = 400) =>
  writeToyTable(dir, { iterations, checkpointEvery: 100, methods: METHODS, seeds: SEEDS, paper: { "adapt-relax@0.5": 1.5 } });

const cellDir = (out: string, method: string, seed: number) => join(out, "cells", `${method}-d0.5-s${seed}`);
const fingerprint = (dir: string) =>
  ["summary.json", "metrics.jsonl"].map((f) => ({ text: readFileSync(join(dir, f), "utf8"), mtime: statSync(join(dir, f)).mtimeMs }));

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1));

/** A table of two cells run whole (one job at a time), held still (SIGSTOP) once it has read the cells and started
 * the first: what another command does meanwhile meets it at the second cell's turn. */
async function heldAtFirstCell() {
  const dir = tempDir();
  const spec = writeToyTable(dir, { iterations: 60, checkpointEvery: 20, methods: ["static-balance"], seeds: [0, 1] });
  const out = join(dir, "table");
  const whole = execa("node", [CLI, "table", spec, "--out", out, "--jobs", "1"], { reject: false });
  let log = "";
  whole.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  expect(await waitFor(() => /^start static-balance-d0\.5-s0/m.test(log), 60_000, 20)).toBe(true);
  process.kill(whole.pid!, "SIGSTOP");
  return { spec, out, whole, log: () => log };
}

describe("ddst table", () => {
  it("runs cells two at a time, continues after an interruption without re-training finished cells, and reports their numbers", async () => {
    const dir = tempDir();
    const spec = writeSpec(dir);
    const out = join(dir, "table");

    // Interrupt once a cell has finished and a later one has started.
    const first = execa("node", [CLI, "table", spec, "--out", out, "--jobs", "2", "--status-every", "1"], { reject: false });
    let log = "";
    first.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    const starts = () => (log.match(/^start /gm) ?? []).length;
    expect(await waitFor(() => /^done /m.test(log) && starts() >= 3, 90_000)).toBe(true);
    // A second command on the same table while the first runs is refused, naming the first.
    const second = await execa("node", [CLI, "table", spec, "--out", out, "--jobs", "2"], { reject: false });
    expect(second.exitCode).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`being run by another ddst table \\(pid ${first.pid}\\)`));
    first.kill("SIGINT");
    const r1 = await first;
    expect(r1.exitCode, r1.stderr + log).toBe(130);
    expect(log).toMatch(/static-balance ignores the base experiment's discriminator.controller/);
    expect(log).toMatch(/table toy: \d\/4 done, \d running, \d queued/);

    const cells = METHODS.flatMap((m) => SEEDS.map((s) => ({ m, s, dir: cellDir(out, m, s) })));
    const finished = cells.filter((c) => existsSync(join(c.dir, "summary.json")));
    const interrupted = cells.filter((c) => !existsSync(join(c.dir, "summary.json")) && existsSync(join(c.dir, "checkpoint.json")));
    expect(finished.length).toBeGreaterThanOrEqual(1);
    expect(interrupted.length).toBeGreaterThanOrEqual(1);
    const before = new Map(finished.map((c) => [c.dir, fingerprint(c.dir)]));

    const r2 = await execa("node", [CLI, "table", spec, "--out", out, "--jobs", "2"], { reject: false });
    expect(r2.exitCode, r2.stderr + r2.stdout).toBe(0);
    expect(r2.stdout).toContain(`${finished.length} finished, ${interrupted.length} to resume`);
    for (const c of finished) {
      expect(r2.stdout).not.toContain(`start ${c.m}-d0.5-s${c.s}`);
      expect(fingerprint(c.dir)).toEqual(before.get(c.dir));
    }
    for (const c of interrupted) expect(r2.stdout).toMatch(new RegExp(`start ${c.m}-d0.5-s${c.s} on cpu, resuming from iteration \\d+`));

    // The table's numbers are the cells' own, computed here independently of the table code.
    const table = JSON.parse(readFileSync(join(out, "table.json"), "utf8"));
    const csv = readFileSync(join(out, "table.csv"), "utf8").trim().split("\n");
    const md = readFileSync(join(out, "table.md"), "utf8");
    for (const m of METHODS) {
      const summaries = SEEDS.map((s) => Summary.parse(JSON.parse(readFileSync(join(cellDir(out, m, s), "summary.json"), "utf8"))));
      const entry = table.entries.find((e: { method: string }) => e.method === m);
      const flops = summaries.map((x) => x.flops.ratio);
      expect(entry.seeds).toEqual(SEEDS);
      expect(entry.flops.mean).toBeCloseTo(mean(flops), 12);
      expect(entry.flops.std).toBeCloseTo(std(flops), 12);
      expect(entry.densityD.mean).toBeCloseTo(mean(summaries.map((x) => x.final.densityD)), 12);
      const metric = table.metric as string | null;
      const values = metric ? summaries.map((x) => x.eval?.final?.metrics[metric]).filter((v): v is number => v !== undefined) : [];
      expect(entry.metric.values).toEqual(values);
      if (values.length) expect(entry.metric.mean).toBeCloseTo(mean(values), 12);
      expect(entry.paper).toBe(m === "adapt-relax" ? 1.5 : null);
      const line = csv.find((l) => l.startsWith(`${m},0.5,`))!;
      expect(Number(line.split(",")[8])).toBeCloseTo(mean(flops), 12);
      expect(md).toContain(`${(100 * mean(flops)).toFixed(2)}%`);
    }
    expect(md).toContain("[1.50]");

    // A changed table file that would change finished cells is refused before anything runs, naming them.
    const changed = writeSpec(dir, 800);
    const r3 = await execa("node", [CLI, "table", changed, "--out", out, "--plan"], { reject: false });
    expect(r3.exitCode).toBe(2);
    expect(r3.stderr).toMatch(/cell static-balance-d0.5-s0: .* another configuration .*iterations: 400 -> 800/);
  });

  // The rest are independent of each other and mostly worker starts: three at a time (vitest's maxConcurrency).
  it.concurrent("--plan lists the cells with known FLOPs and a time estimate, training nothing", async () => {
    const dir = tempDir();
    const spec = writeSpec(dir);
    const out = join(dir, "table");
    const r = await execa("node", [CLI, "table", spec, "--out", out, "--plan", "--jobs", "2"], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/static-balance-d0.5-s0 +new +\d+\.\d\d% of dense/);
    expect(r.stdout).toMatch(/adapt-relax-d0.5-s1 +new +known after the run/);
    expect(r.stdout).toMatch(/timing \(5 iterations after a warm-up, on cpu, 1 thread\): static-balance [\d.e-]+ s\/it, adapt-relax [\d.e-]+ s\/it/);
    expect(r.stdout).toMatch(/estimated training time left: \S+ with 2 at a time/);
    expect(existsSync(join(out, "cells"))).toBe(false);
    // --plan-iterations 0: the FLOPs alone, nothing timed (a paper table on a CPU would take minutes per method).
    const flopsOnly = await execa("node", [CLI, "table", spec, "--out", out, "--plan", "--plan-iterations", "0"], { reject: false });
    expect(flopsOnly.exitCode, flopsOnly.stderr).toBe(0);
    expect(flopsOnly.stdout).toMatch(/static-balance-d0.5-s0 +new +\d+\.\d\d% of dense/);
    expect(flopsOnly.stdout).not.toMatch(/timing|estimated/);
    // A density so low that a layer keeps no weight: the cell would be refused when it starts, and the plan says so.
    const table = JSON.parse(readFileSync(spec, "utf8"));
    writeFileSync(spec, JSON.stringify({ ...table, densities: [1e-6], paper: {} }));
    const tiny = await execa("node", [CLI, "table", spec, "--out", out, "--plan", "--plan-iterations", "0"], { reject: false });
    expect(tiny.stdout, tiny.stderr).toMatch(/static-balance-d\S+-s0 +new +refused when it starts: d_G \S+ leaves \d+ layers? without an active weight/);
  });

  it.concurrent("refuses a missing data file or an absent GPU before any cell starts, leaving nothing behind", async () => {
    const dir = tempDir();
    const spec = writeSpec(dir);
    const table = JSON.parse(readFileSync(spec, "utf8"));
    writeFileSync(spec, JSON.stringify({ ...table, base: { ...table.base, data: { name: "npy", path: join(dir, "missing.npy") }, eval: null } }));
    const out = join(dir, "table");
    const r = await execa("node", [CLI, "table", spec, "--out", out, "--jobs", "2"], { reject: false });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/\(cell static-balance-d0.5-s0\)[\s\S]*data\.path: .*missing\.npy: no such file or directory/);
    expect(r.stdout).not.toMatch(/start /);
    expect(existsSync(out)).toBe(false);
    // Where the cells stand needs no data.
    const status = await execa("node", [CLI, "table", spec, "--out", out, "--status"], { reject: false });
    expect(status.exitCode, status.stderr).toBe(0);
    if (existsSync("/dev/nvidia0")) return; // the GPU check needs a machine without one
    writeFileSync(spec, JSON.stringify(table));
    const gpu = await execa("node", [CLI, "table", spec, "--out", out, "--devices", "cuda"], { reject: false });
    expect(gpu.exitCode, gpu.stderr).toBe(2);
    expect(gpu.stderr).toMatch(/devices cuda: the torch of .* sees no GPU on this machine; use --devices cpu/);
    expect(existsSync(join(out, "cells"))).toBe(false);
  });

  it.concurrent("an sbatch that answers without a job id: exit 1, saying an array may be queued and to look before submitting again", async () => {
    const dir = tempDir();
    const spec = writeToyTable(dir, { iterations: 20, checkpointEvery: 10, methods: ["static-balance"], seeds: [0] });
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bin", "sbatch"), '#!/bin/sh\necho "Submitted batch job"\n', { mode: 0o755 });
    const r = await execa("node", [CLI, "table", spec, "--out", join(dir, "table"), "--slurm"], { reject: false, env: { PATH: `${join(dir, "bin")}:${process.env.PATH}` } });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/sbatch exited 0 but printed 'Submitted batch job' where a job id was expected, so an array may be queued .*look with squeue -u \$USER before submitting again/);
    expect(existsSync(join(dir, "table", "slurm", "submissions.jsonl"))).toBe(false);
  });

  it.concurrent("does not train a diverged cell again: table.md counts it, --status and ls name it", async () => {
    const dir = tempDir();
    const spec = writeToyTable(dir, { iterations: 100, checkpointEvery: 50, methods: ["static-balance"], seeds: [0, 1] });
    const table = JSON.parse(readFileSync(spec, "utf8"));
    writeFileSync(join(dir, "huge.npy"), hugePoints());
    // Its path through a variable, as a table moved between machines names it (the pre-flight reads the file too).
    writeFileSync(spec, JSON.stringify({ ...table, base: { ...table.base, data: { name: "npy", path: "${HUGE_DIR}/huge.npy" }, eval: null } }));
    const env = { HUGE_DIR: dir };
    const out = join(dir, "table");
    const first = await execa("node", [CLI, "table", spec, "--out", out, "--jobs", "2"], { reject: false, env });
    expect(first.exitCode, first.stderr).toBe(1);
    expect(first.stderr).toMatch(/2 cells diverged \(table\.md counts them[^\n]*\n {2}- static-balance-d0\.5-s0: training diverged at iteration 1: the D loss is NaN/);
    expect(first.stderr).toMatch(/the table does not train them again/);
    expect(first.stderr).not.toMatch(/retries/);
    const md = readFileSync(join(out, "table.md"), "utf8");
    expect(md).toContain("Training diverged (went to NaN or infinity) in static-balance at d_G 0.5 (seeds 0, 1).");
    expect(md).toContain("| static-balance | n/a (0/2; 2 diverged) |");
    const cell = cellDir(out, "static-balance", 0);
    const before = readFileSync(join(cell, "metrics.jsonl"), "utf8");

    const again = await execa("node", [CLI, "table", spec, "--out", out, "--jobs", "2"], { reject: false, env });
    expect(again.exitCode, again.stderr).toBe(1);
    expect(again.stdout).toContain("0 finished, 2 diverged (not tried again), 0 to resume, 0 new");
    expect(again.stdout).not.toMatch(/^start /m);
    expect(readFileSync(join(cell, "metrics.jsonl"), "utf8")).toBe(before);
    const status = await execa("node", [CLI, "table", spec, "--out", out, "--status"], { reject: false, env });
    expect(status.stdout).toMatch(/static-balance-d0\.5-s0 +diverged .*training diverged at iteration 1: the D loss is NaN[^;]*; not submitted again/);
    expect(status.stdout).toMatch(/2 diverged$/m);
    const ls = await execa("node", [CLI, "ls", dir], { reject: false, env });
    expect(ls.stdout).toMatch(/table +toy +0\/2 cells +2 diverged/);
    // Removing a cell's directory trains it once more (and it diverges again, as it must).
    rmSync(cell, { recursive: true });
    const retried = await execa("node", [CLI, "table", spec, "--out", out], { reject: false, env });
    expect(retried.stdout).toContain("1 diverged (not tried again), 0 to resume, 1 new");
    expect(retried.stdout).toMatch(/^start static-balance-d0\.5-s0/m);
  });

  it.concurrent("continues finished cells to a raised iteration count only when told to (--extend)", async () => {
    const dir = tempDir();
    const spec = writeToyTable(dir, { iterations: 60, checkpointEvery: 20, methods: ["static-balance"], seeds: [0] });
    const out = join(dir, "table");
    const first = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(first.exitCode, first.stderr).toBe(0);
    const table = JSON.parse(readFileSync(spec, "utf8"));
    writeFileSync(spec, JSON.stringify({ ...table, base: { ...table.base, iterations: 100 } }));
    const refused = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/\(iterations: 60 -> 100\)\. Restore the table file, or write this table to another --out; or add --extend to continue the cell from its checkpoint \(iteration 60\) to 100 iterations/);
    const extended = await execa("node", [CLI, "table", spec, "--out", out, "--extend"], { reject: false });
    expect(extended.exitCode, extended.stderr).toBe(0);
    expect(extended.stdout).toContain("0 finished, 1 to resume, 0 new");
    expect(extended.stdout).toMatch(/^start static-balance-d0\.5-s0 on cpu, resuming from iteration 60/m);
    const cell = cellDir(out, "static-balance", 0);
    expect(Summary.parse(JSON.parse(readFileSync(join(cell, "summary.json"), "utf8"))).iterations).toBe(100);
    expect(JSON.parse(readFileSync(join(cell, "config.json"), "utf8")).iterations).toBe(100);
    // Extended, the cell is the table's: the command without --extend takes it as finished.
    const after = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(after.exitCode, after.stderr).toBe(0);
    expect(after.stdout).toContain("1 finished, 0 to resume, 0 new");
    // Fewer iterations than a cell was trained for cannot be had, --extend or not.
    writeFileSync(spec, JSON.stringify({ ...table, base: { ...table.base, iterations: 80 } }));
    const shorter = await execa("node", [CLI, "table", spec, "--out", out, "--extend"], { reject: false });
    expect(shorter.exitCode).toBe(2);
    expect(shorter.stderr).toMatch(/\(iterations: 100 -> 80\)\. Restore the table file, or write this table to another --out; it is past 80 iterations \(at 100\): remove .* to train it anew\./);
  });

  it.concurrent("takes a queued cell as it is at its turn: one trained meanwhile by a --cells command is not started again", async () => {
    // Held still once it has read the cells and started the first; the second is trained beside it meanwhile.
    const { spec, out, whole, log } = await heldAtFirstCell();
    const beside = await execa("node", [CLI, "table", spec, "--out", out, "--cells", "static-balance-d0.5-s1"], { reject: false });
    process.kill(whole.pid!, "SIGCONT");
    expect(beside.exitCode, beside.stderr).toBe(0);
    const cell = cellDir(out, "static-balance", 1);
    const before = fingerprint(cell);
    const r = await whole;
    expect(r.exitCode, r.stderr + log()).toBe(0);
    expect(log()).toMatch(/^done {2}static-balance-d0\.5-s1: .*\(trained meanwhile by another ddst\)$/m);
    expect(log()).not.toMatch(/^start static-balance-d0\.5-s1/m);
    expect(fingerprint(cell)).toEqual(before);
    expect(JSON.parse(readFileSync(join(out, "table.json"), "utf8")).entries[0].seeds).toEqual([0, 1]);
  });

  it.concurrent("leaves a cell that a --cells command beside it is training to that command: not a failure", async () => {
    const { spec, out, whole, log } = await heldAtFirstCell();
    // The second cell, held still while it trains (its run.lock taken) until the whole table has had its turn at it.
    const beside = execa("node", [CLI, "table", spec, "--out", out, "--cells", "static-balance-d0.5-s1"], { reject: false });
    const lock = join(cellDir(out, "static-balance", 1), "run.lock");
    expect(await waitFor(() => existsSync(lock), 60_000, 20)).toBe(true);
    process.kill(beside.pid!, "SIGSTOP");
    process.kill(whole.pid!, "SIGCONT");
    const r = await whole;
    process.kill(beside.pid!, "SIGCONT");
    expect(r.exitCode, r.stderr + log()).toBe(1); // the table is not complete
    expect(log()).toMatch(new RegExp(`^busy static-balance-d0\\.5-s1: being trained by another ddst \\(pid ${beside.pid}\\); left to it$`, "m"));
    expect(log()).not.toMatch(/FAILED/);
    expect(r.stderr).toMatch(/1 cell was being trained by another ddst and left to it \(no failure; the table is not complete\):\n {2}- static-balance-d0\.5-s1 \(pid \d+\)\nthe table files count it once finished: run the same command again then \(.*remove .*run\.lock\)/);
    expect((await beside).exitCode).toBe(0);
    const again = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, "table.json"), "utf8")).entries[0].seeds).toEqual([0, 1]);
  });

  it.concurrent("a cell that failed in a Slurm task still running is submitted again; one whose old failure its new task has yet to take up is not", async () => {
    // Slurm's view through stand-ins: squeue shows task 200_0 running; sacct finds no accounting.
    const dir = tempDir();
    const bin = join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "squeue"), "#!/bin/sh\necho '200_0|RUNNING|node1'\n", { mode: 0o755 });
    writeFileSync(join(bin, "sacct"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    const env = { PATH: `${bin}:${process.env.PATH}` };
    const spec = writeToyTable(dir, { iterations: 40, checkpointEvery: 20, methods: ["static-balance"], seeds: [0] });
    const out = join(dir, "table");
    expect((await execa("node", [CLI, "table", spec, "--out", out], { reject: false })).exitCode).toBe(0);
    const cell = cellDir(out, "static-balance", 0);
    rmSync(join(cell, "summary.json")); // back to a cell with training left to do, as a failed one is
    mkdirSync(join(out, "slurm"), { recursive: true });
    writeFileSync(join(out, "slurm", "submissions.jsonl"), JSON.stringify({ job: "200", at: "t", tasks: [["static-balance-d0.5-s0"]], script: "s" }) + "\n");
    const failedIn = (slurmTask: string) => writeFileSync(join(cell, "failed.json"), JSON.stringify({ error: "the PyTorch worker was killed by SIGKILL.", iter: 40, at: "t", slurmTask }));
    const cli = (...args: string[]) => execa("node", [CLI, "table", spec, "--out", out, ...args], { reject: false, env });
    failedIn("200_0"); // in the task that still runs (its other cells)
    expect((await cli("--status")).stdout).toMatch(/static-balance-d0\.5-s0 +failed +200_0 .*killed by SIGKILL; .*its task is still running \(its other cells\); --slurm submits it again/);
    expect((await cli("--slurm", "--gpus-per-cell", "0", "--dry-run")).stdout).toContain("0 queued or running in Slurm (job 200), 1 to submit");
    failedIn("100_0"); // in an earlier task: 200_0 was submitted for it and has yet to take it up
    expect((await cli("--status")).stdout).toMatch(/static-balance-d0\.5-s0 +running +200_0/);
    expect((await cli("--slurm", "--gpus-per-cell", "0", "--dry-run")).stdout).toContain("1 queued or running in Slurm (job 200), 0 to submit");
    // Failed before its first checkpoint (its directory removed) while 200_0 goes on: the task's log says so.
    rmSync(cell, { recursive: true });
    const log = join(out, "slurm", "logs", "200_0.out");
    writeFileSync(log, "ddst: array task 200_0 on node1, start 1, t: static-balance-d0.5-s0\nstart static-balance-d0.5-s0 on cpu\nFAILED static-balance-d0.5-s0: invalid experiment: data.path: /gone: no such file or directory\n");
    expect((await cli("--status")).stdout).toMatch(/static-balance-d0\.5-s0 +failed +200_0 .*data\.path: \/gone: no such file or directory; log .*200_0\.out; its task is still running/);
    expect((await cli("--slurm", "--gpus-per-cell", "0", "--dry-run")).stdout).toContain("0 queued or running in Slurm (job 200), 1 to submit");
  });

  it.concurrent("a cell evaluated before eval.batchNorm existed is not mixed with new ones; the table file can say to go on as it began", async () => {
    const dir = tempDir();
    const spec = writeToyTable(dir, { iterations: 40, checkpointEvery: 20, methods: ["static-balance"], seeds: [0] });
    const out = join(dir, "table");
    expect((await execa("node", [CLI, "table", spec, "--out", out], { reject: false })).exitCode).toBe(0);
    // As an earlier ddst wrote the cell: no eval.batchNorm in config.json, nor in its checkpoint's config.
    const cell = cellDir(out, "static-balance", 0);
    // (and its evaluations 500 samples at a time, that ddst's default, which the config.json kept)
    const edit = (file: string, at: (j: Record<string, unknown>) => { eval: Record<string, unknown> }) => {
      const j = JSON.parse(readFileSync(join(cell, file), "utf8"));
      delete at(j).eval.batchNorm;
      at(j).eval.batchSize = 500;
      writeFileSync(join(cell, file), JSON.stringify(j));
    };
    edit("config.json", (j) => j as { eval: Record<string, unknown> });
    edit("checkpoint.json", (j) => j.config as { eval: Record<string, unknown> });
    const refused = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/eval\.batchNorm: "running" -> "batch"; eval\.batchSize: 500 -> 100.*trained by an earlier ddst \(its evaluations sampled by BatchNorm's running averages, 500 at a time\): to finish the table as it began, add "eval\.batchNorm": "running", "eval\.batchSize": 500 to the table file's "set"/);
    writeFileSync(spec, JSON.stringify({ ...JSON.parse(readFileSync(spec, "utf8")), set: { "eval.batchNorm": "running", "eval.batchSize": 500 } }));
    const r = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("1 finished, 0 to resume, 0 new");
  });

  it.concurrent("another run's summary.json in a cell is refused, not counted; removed, the cell's own is written again; so is a deleted table-spec.json; a damaged config.json is restored from the checkpoint's", async () => {
    const dir = tempDir();
    const spec = writeToyTable(dir, { iterations: 40, checkpointEvery: 20, methods: ["static-balance"], seeds: [0, 1] });
    const out = join(dir, "table");
    expect((await execa("node", [CLI, "table", spec, "--out", out], { reject: false })).exitCode).toBe(0);
    const own = readFileSync(join(cellDir(out, "static-balance", 1), "summary.json"), "utf8");
    writeFileSync(join(cellDir(out, "static-balance", 1), "summary.json"), readFileSync(join(cellDir(out, "static-balance", 0), "summary.json")));
    const r = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/static-balance-d0\.5-s1\/summary\.json is another run's \(toy-static-balance-d0\.5-s0: static-balance, seed 0\), not this cell's: put this cell's own back, or remove it/);
    rmSync(join(cellDir(out, "static-balance", 1), "summary.json"));
    const again = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(again.exitCode, again.stderr).toBe(0);
    const rewritten = JSON.parse(readFileSync(join(cellDir(out, "static-balance", 1), "summary.json"), "utf8"));
    expect(rewritten).toMatchObject({ seed: 1, final: JSON.parse(own).final, flops: JSON.parse(own).flops });
    // A finished table whose table-spec.json was deleted is still this table's (its report and plots beside it):
    // the command writes it again.
    writeFileSync(join(out, "report.html"), "<!doctype html>");
    writeFileSync(join(out, "report-cells-br.png"), "");
    rmSync(join(out, "table-spec.json"));
    const respec = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(respec.exitCode, respec.stderr).toBe(0);
    expect(respec.stdout).toContain("2 finished, 0 to resume, 0 new");
    expect(existsSync(join(out, "table-spec.json"))).toBe(true);
    // A damaged config.json: the checkpoint's copy of the configuration keeps the cell's training.
    const config = join(cellDir(out, "static-balance", 0), "config.json");
    writeFileSync(config, '{"broken');
    const damaged = await execa("node", [CLI, "table", spec, "--out", out], { reject: false });
    expect(damaged.exitCode).toBe(2);
    expect(damaged.stderr).toMatch(/cannot read .*config\.json: .*checkpoint\.json keeps the configuration the cell was trained under \(its "config"\): write that into config\.json to keep the cell's training/);
    writeFileSync(config, JSON.stringify(JSON.parse(readFileSync(join(cellDir(out, "static-balance", 0), "checkpoint.json"), "utf8")).config));
    expect((await execa("node", [CLI, "table", spec, "--out", out], { reject: false })).stdout).toContain("2 finished, 0 to resume, 0 new");
  });

  it.concurrent("rejects a bad table file with exit 2 naming the field", async () => {
    const dir = tempDir();
    const file = join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ name: "t", base: "missing.json", methods: ["dense"], densities: [0.1, 0.1], seeds: [0], paper: { "dense@0.3": 1 } }));
    const r = await execa("node", [CLI, "table", file], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/invalid table .*bad.json/);
    expect(r.stderr).toMatch(/densities: 0.1 is listed twice/);
    expect(r.stderr).toMatch(/paper\.dense@0.3: .*names no cell/);
    writeFileSync(file, JSON.stringify({ name: "t", base: "missing.json", methods: ["dense"], densities: [0.1], seeds: [0] }));
    const missing = await execa("node", [CLI, "table", file], { reject: false });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/missing\.json[\s\S]*cannot read the file/);
  });

  it.concurrent("refuses an --out that is not a table directory, before writing anything there", async () => {
    const dir = tempDir();
    const spec = writeSpec(dir);
    const notes = join(dir, "notes");
    mkdirSync(notes);
    writeFileSync(join(notes, "table.md"), "my notes\n");
    for (const args of [[], ["--plan"], ["--status"]]) {
      const r = await execa("node", [CLI, "table", spec, "--out", notes, ...args], { reject: false });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/notes is a directory holding table\.md, not a ddst table directory/);
    }
    expect(readdirSync(notes)).toEqual(["table.md"]);
    expect(readFileSync(join(notes, "table.md"), "utf8")).toBe("my notes\n");
  });

  it.concurrent("refuses densities that leave a layer without an active weight before any cell starts, leaving nothing behind", async () => {
    const dir = tempDir();
    const spec = writeToyTable(dir, { iterations: 40, checkpointEvery: 20, methods: ["static-balance"], seeds: [0, 1] });
    const table = JSON.parse(readFileSync(spec, "utf8"));
    writeFileSync(spec, JSON.stringify({ ...table, densities: [0.5, 1e-7] }));
    const out = join(dir, "table");
    const r = await execa("node", [CLI, "table", spec, "--out", out, "--jobs", "2"], { reject: false });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /densities: static-balance at d_G 1e-7 \(d_D 1e-7; cells static-balance-d1e-7-s0, static-balance-d1e-7-s1\) leaves \d+ layers without an active weight \(generator net\.0: \d+ weights at density [^)]*\), which a run refuses when it starts/,
    );
    expect(r.stderr).not.toMatch(/d_G 0\.5/);
    expect(r.stdout).not.toMatch(/^start /m);
    expect(existsSync(out)).toBe(false);
    // Nor are they submitted to Slurm, where each array task would refuse them again at every start.
    const slurm = await execa("node", [CLI, "table", spec, "--out", out, "--slurm", "--gpus-per-cell", "0", "--dry-run"], { reject: false });
    expect(slurm.exitCode, slurm.stderr).toBe(2);
    expect(slurm.stderr).toMatch(/static-balance at d_G 1e-7 .* which a run refuses when it starts/);
    expect(existsSync(join(out, "slurm", "table.sbatch"))).toBe(false);
  });
});
