import { execa } from "execa";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { liveHolder } from "../../src/run/dir-lock.js";
import type { RunStatus } from "../../src/run/run-status.js";
import { cellStatus, lastError, statusText } from "../../src/slurm/cell-status.js";
import { currentSlurmJob } from "../../src/slurm/job-id.js";
import { gpuRequest, signalLead, SlurmOptions, timeLimitSeconds } from "../../src/slurm/options.js";
import { parseSacct, parseSqueue } from "../../src/slurm/queue.js";
import { groupCells, sbatchScript, shellQuote, type ArrayJob } from "../../src/slurm/sbatch-script.js";
import { appendSubmission, lastTaskOfCells, readSubmissions } from "../../src/slurm/submissions.js";
import { toyExperiment } from "../toy.js";

const options = (extra: Partial<SlurmOptions> = {}): SlurmOptions => SlurmOptions.parse({ gpusPerCell: 1, cellsPerGpu: 1, sbatchArgs: [], ...extra });

const job = (extra: Partial<ArrayJob> = {}): ArrayJob => ({
  name: "cifar",
  tableFile: "/shared/tables/cifar.json",
  out: "/shared/runs/it's-here",
  node: "/usr/bin/node",
  cli: "/opt/ddst/dist/cli.js",
  python: "/opt/ddst/.venv/bin/python",
  tasks: [["a-s0", "b-s0"], ["c-s0"]],
  env: {},
  slurm: options(),
  ...extra,
});

describe("Slurm time limits and options", () => {
  it("reads every --time format Slurm accepts", () => {
    expect(timeLimitSeconds("30")).toBe(1800);
    expect(timeLimitSeconds("30:15")).toBe(1815);
    expect(timeLimitSeconds("2:00:00")).toBe(7200);
    expect(timeLimitSeconds("1-0")).toBe(86400);
    expect(timeLimitSeconds("1-2:30")).toBe(86400 + 2 * 3600 + 1800);
    expect(timeLimitSeconds("1-2:30:05")).toBe(86400 + 2 * 3600 + 1805);
    for (const bad of ["", "1h", "1:2:3:4", "-5", "1-", "abc"]) expect(timeLimitSeconds(bad)).toBeNull();
  });

  it("warns two minutes before the limit, or a fifth of a short one", () => {
    expect(signalLead(undefined)).toBe(120);
    expect(signalLead("24:00:00")).toBe(120);
    expect(signalLead("5")).toBe(60);
    expect(signalLead("0:10")).toBe(5);
  });

  it("refuses GPUs per cell other than 0 and 1, bad limits and multi-line arguments, naming the flag", () => {
    const issues = (x: object) => SlurmOptions.safeParse({ gpusPerCell: 1, cellsPerGpu: 1, sbatchArgs: [], ...x }).error?.issues.map((i) => i.message) ?? [];
    expect(issues({ gpusPerCell: 2 })).toEqual([expect.stringMatching(/--gpus-per-cell must be 1 .* or 0/)]);
    expect(issues({ cellsPerGpu: 0 })).toEqual(["--cells-per-gpu must be at least 1"]);
    expect(issues({ time: "0" })).toEqual([expect.stringMatching(/--time must be a Slurm time limit/)]);
    expect(issues({ partition: "gpu\n#SBATCH --exclusive" })).toEqual([expect.stringMatching(/--partition must be a Slurm name/)]);
    expect(issues({ account: "my lab" })).toEqual([expect.stringMatching(/--account must be a Slurm name/)]);
    expect(issues({ sbatchArgs: ["mem=4G"] })).toEqual([expect.stringMatching(/--sbatch-arg takes an sbatch option/)]);
    // What the script sets itself and relies on (its signal, array, logs, requeue) cannot be given twice.
    expect(issues({ sbatchArgs: ["--signal=USR1@60"] })).toEqual(["--sbatch-arg --signal=USR1@60: ddst sets this option itself (ddst signals the task before --time runs out, to checkpoint and requeue it)"]);
    expect(issues({ sbatchArgs: ["-o", "--array=0-3", "-t10", "--no-requeue", "--sig=B:USR1@10", "--part=gpu"] })).toHaveLength(6);
    expect(issues({ sbatchArgs: ["--time-min=10", "--ntasks-per-node=2", "--exclusive", "-N2", "--mem=4G"] })).toEqual([]);
    expect(issues({ sbatchArgs: ["--export=NONE"] })).toEqual([expect.stringMatching(/--export=NONE: ddst sets this option itself \(a task needs the submitting environment/)]);
  });

  it("takes the user's naming of the task's one GPU (a type), and refuses more GPUs, two requests, or one on a CPU partition", () => {
    const issues = (x: object) => SlurmOptions.safeParse({ gpusPerCell: 1, cellsPerGpu: 1, sbatchArgs: [], ...x }).error?.issues.map((i) => i.message) ?? [];
    for (const arg of ["--gres=gpu:a100:1", "--gres=gpu", "--gres=gpu:h100", "--gpus=1", "--gpus=a100:1", "--gpus-per-task=1", "-G1", "-G 1", "--gres=shard:2"])
      expect(issues({ sbatchArgs: [arg] }), arg).toEqual([]);
    expect(issues({ sbatchArgs: ["--gres=gpu:a100:2"] })).toEqual([expect.stringMatching(/--gres=gpu:a100:2: a task trains its cells on one GPU \(--cells-per-gpu says how many share it\); ask for one/)]);
    expect(issues({ sbatchArgs: ["--gpus=a100"] })).toHaveLength(1); // no count
    expect(issues({ sbatchArgs: ["--gres=gpu:1", "-G1"] })).toEqual([expect.stringMatching(/--gres=gpu:1 and -G1 both ask for the task's GPU; give one/)]);
    expect(issues({ gpusPerCell: 0, sbatchArgs: ["--gres=gpu:1"] })).toEqual([expect.stringMatching(/--gpus-per-cell 0 trains on the CPU, so a GPU would sit idle/)]);
    expect(gpuRequest("--gres=gpu:a100:1,shard:2")).toBe(1);
    expect(gpuRequest("--mem=4G")).toBeNull();
    const gpuLines = (args: string[]) => sbatchScript(job({ slurm: options({ sbatchArgs: args }) })).split("\n").filter((l) => /gres|gpus/.test(l));
    expect(gpuLines([])).toEqual(["#SBATCH --gres=gpu:1"]);
    expect(gpuLines(["--gres=gpu:a100:1"])).toEqual(["#SBATCH --gres=gpu:a100:1"]); // the user's, not a second one
  });
});

describe("the job-array script", () => {
  it("groups cells in order, K to a task", () => {
    expect(groupCells(["a", "b", "c", "d", "e"], 2)).toEqual([["a", "b"], ["c", "d"], ["e"]]);
    expect(groupCells(["a"], 4)).toEqual([["a"]]);
  });

  it("asks for one GPU per task, requeues, warns before the limit, and quotes every path", () => {
    const s = sbatchScript(job({ slurm: options({ partition: "gpu", time: "12:00:00", account: "lab", sbatchArgs: ["--mem=32G"] }) }));
    const directives = s.split("\n").filter((l) => l.startsWith("#SBATCH")).map((l) => l.slice(8));
    expect(directives).toEqual([
      "--job-name=ddst-cifar",
      "--array=0-1",
      "--ntasks=1",
      "--gres=gpu:1",
      "--requeue",
      "--signal=B:USR1@120",
      "--output=/shared/runs/it's-here/slurm/logs/%A_%a.out",
      "--open-mode=append",
      "--partition=gpu",
      "--account=lab",
      "--time=12:00:00",
      "--mem=32G",
    ]);
    expect(s).toContain(`TABLE_DIR='/shared/runs/it'\\''s-here'`);
    expect(s).toContain(`'a-s0,b-s0' # task 0\n  'c-s0' # task 1\n)`);
    expect(s).toContain(`--cells "$cells" --devices cuda --jobs 2 &`);
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
    const cpu = sbatchScript(job({ slurm: options({ gpusPerCell: 0 }), tasks: [["a", "b"]] }));
    expect(cpu).not.toContain("--gres");
    expect(cpu).toContain("#SBATCH --cpus-per-task=2\n"); // a core per cell, unless the user names a count
    expect(cpu).toContain("--devices cpu --jobs 2 &");
    for (const arg of ["--cpus-per-task=8", "-c4", "-c 4"])
      expect(sbatchScript(job({ slurm: options({ gpusPerCell: 0, sbatchArgs: [arg] }) }))).not.toContain("--cpus-per-task=2");
    expect(() => sbatchScript(job({ out: "/shared/my runs" }))).toThrow(/holds a space or a %/);
    // The variables the cells' paths name travel in the script (a site's SBATCH_EXPORT=NONE passes none on).
    const withEnv = sbatchScript(job({ env: { CIFAR10_DIR: "/data/it's cifar" } }));
    expect(withEnv).toContain(`[ -n "\${CIFAR10_DIR:-}" ] || CIFAR10_DIR='/data/it'\\''s cifar'; export CIFAR10_DIR\n`);
  });

  it("is a script bash accepts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-sbatch-"));
    const file = join(dir, "t.sbatch");
    writeFileSync(file, sbatchScript(job()));
    const r = await execa("bash", ["-n", file], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    // Its exported variables: the submitting value where the task has none, the task's own where it has one.
    const script = sbatchScript(job({ env: { DATA_DIR: "/data/it's here" } }));
    const lines = script.split("\n").filter((l) => l.includes("DATA_DIR")).join("\n");
    const run = (env: Record<string, string>) => execa("bash", ["-c", `${lines}\nprintf %s "$DATA_DIR"`], { env, extendEnv: false });
    expect((await run({})).stdout).toBe("/data/it's here");
    expect((await run({ DATA_DIR: "/scratch/job" })).stdout).toBe("/scratch/job");
  });
});

describe("what Slurm says", () => {
  it("parses squeue and sacct lines of array tasks", () => {
    expect(parseSqueue("12_0|RUNNING|node3\n12_1|PENDING|(Priority)\n\n")).toEqual(
      new Map([
        ["12_0", { state: "RUNNING", reason: "node3" }],
        ["12_1", { state: "PENDING", reason: "Priority" }],
      ]),
    );
    expect(parseSacct("12_0|COMPLETED|0:0\n12_1|CANCELLED by 0|0:15\n12_1.batch|CANCELLED|0:15\n")).toEqual(
      new Map([
        ["12_0", { state: "COMPLETED", exitCode: "0:0" }],
        ["12_1", { state: "CANCELLED", exitCode: "0:15" }],
      ]),
    );
  });

  it("knows the job it runs in", () => {
    expect(currentSlurmJob({ SLURM_ARRAY_JOB_ID: "7", SLURM_ARRAY_TASK_ID: "3", SLURM_JOB_ID: "9" })).toBe("7_3");
    expect(currentSlurmJob({ SLURM_JOB_ID: "9" })).toBe("9");
    expect(currentSlurmJob({})).toBeNull();
  });
});

describe("submissions", () => {
  it("remembers which task each cell was last submitted in; a torn last line is ignored, a bad earlier one named", () => {
    const out = mkdtempSync(join(tmpdir(), "ddst-subs-"));
    mkdirSync(join(out, "slurm"));
    appendSubmission(out, { job: "10", at: "t", tasks: [["a"], ["b"]], script: "s" });
    appendSubmission(out, { job: "11", at: "t", tasks: [["b"]], script: "s" });
    expect(lastTaskOfCells(readSubmissions(out))).toEqual(new Map([["a", "10_0"], ["b", "11_0"]]));
    writeFileSync(join(out, "slurm", "submissions.jsonl"), `{"job":"10","at":"t","tasks":[["a"]],"script":"s"}\n{"job":"1`);
    expect(readSubmissions(out).map((s) => s.job)).toEqual(["10"]);
    writeFileSync(join(out, "slurm", "submissions.jsonl"), `garbage\n{"job":"10","at":"t","tasks":[["a"]],"script":"s"}\n`);
    expect(() => readSubmissions(out)).toThrow(/submissions.jsonl, line 1, is not a ddst submission record/);
  });
});

describe("a cell's state on the cluster", () => {
  const experiment = toyExperiment({ iterations: 100 });
  const run = (kind: RunStatus["kind"], iter: number, extra: object = {}) => ({ dir: "d", experiment, iter, planned: 100, summary: null, kind, ...extra }) as RunStatus;

  it("takes the queue's word while a task is queued or running, and the cell's files after", () => {
    const L = { path: "L", text: "ddst: array task 5_0 on n1, start 1: c\nstart c on cuda:0\n" };
    expect(cellStatus("c", null, "5_0", { state: "PENDING", reason: "Priority" }, undefined, null)).toMatchObject({ state: "queued", detail: "pending (Priority)" });
    expect(cellStatus("c", run("interrupted", 40), "5_0", { state: "RUNNING", reason: "node1" }, undefined, L)).toMatchObject({ state: "running", progress: "40/100", detail: "on node1" });
    expect(cellStatus("c", run("finished", 100), "5_0", undefined, undefined, null).state).toBe("done");
    const failed = cellStatus("c", run("failed", 40, { failure: { error: "worker died\nstack", iter: 40, at: "t" } }), "5_0", undefined, undefined, L);
    expect(failed).toMatchObject({ state: "failed", detail: "worker died; log L" });
    expect(cellStatus("c", run("interrupted", 40), "5_0", undefined, { state: "TIMEOUT", exitCode: "0:15" }, L)).toMatchObject({ state: "failed", detail: "Slurm: TIMEOUT (exit 0:15); log L; --slurm submits it again" });
    // Failed in a task that goes on with its other cells (--cells-per-gpu 2): failed, not "running".
    const inTask = (slurmTask: string) => run("failed", 40, { failure: { error: "worker died.", iter: 40, at: "t", slurmTask } });
    expect(cellStatus("c", inTask("5_0"), "5_0", { state: "RUNNING", reason: "node1" }, undefined, L)).toMatchObject({
      state: "failed",
      detail: "worker died; log L; its task is still running (its other cells); --slurm submits it again",
    });
    // A failure of an earlier task, the cell submitted again and its new task starting: running, not failed.
    expect(cellStatus("c", inTask("4_0"), "5_0", { state: "RUNNING", reason: "node1" }, undefined, L).state).toBe("running");
    // Failed before its first checkpoint (no directory left) while its task goes on: only the log says so.
    const failedEarly = { path: "L", text: `${L.text}FAILED c: data.path: /x: no such file or directory\nstart d on cuda:0\n` };
    expect(cellStatus("c", null, "5_0", { state: "RUNNING", reason: "node1" }, undefined, failedEarly)).toMatchObject({
      state: "failed",
      detail: "data.path: /x: no such file or directory; log L; its task is still running (its other cells); --slurm submits it again",
    });
    // ... not another cell's failure, nor one of the task's earlier start (requeued since).
    expect(cellStatus("d", null, "5_0", { state: "RUNNING", reason: "node1" }, undefined, failedEarly).state).toBe("running");
    expect(cellStatus("c", null, "5_0", { state: "RUNNING", reason: "node1" }, undefined, { path: "L", text: `${failedEarly.text}${L.text}` }).state).toBe("running");
    // Diverged in a task still running: diverged (never submitted again), not running.
    const diverged = run("diverged", 40, { failure: { error: "training diverged at iteration 40: D loss NaN. More", iter: 40, at: "t", divergedAt: 40, slurmTask: "5_0" } });
    expect(cellStatus("c", diverged, "5_0", { state: "RUNNING", reason: "node1" }, undefined, L)).toMatchObject({ state: "diverged", detail: "training diverged at iteration 40: D loss NaN; not submitted again (remove d to train it once more)" });
    // A task gone before the cell started, its log saying why.
    expect(cellStatus("c", null, "5_0", undefined, undefined, { path: "L", text: "ddst: array task 5_0 on n1, start 1: c\nddst: no such file\n" })).toMatchObject({
      state: "failed",
      detail: "never started: no such file; log L; --slurm submits it again once that is mended",
    });
    expect(cellStatus("c", run("interrupted", 40), "5_0", undefined, undefined, L).state).toBe("stopped");
    // A log is read only where the cell's state needs it: not for a finished cell, nor a queued one.
    const unread = { path: "L", get text(): string { throw new Error("read"); } };
    expect(cellStatus("c", run("finished", 100), "5_0", { state: "RUNNING", reason: "node1" }, undefined, unread).state).toBe("done");
    expect(cellStatus("c", null, "5_0", { state: "PENDING", reason: "Priority" }, undefined, unread).state).toBe("queued");
    expect(cellStatus("c", null, null, undefined, undefined, null).state).toBe("new");
    const text = statusText([cellStatus("c", null, null, undefined, undefined, null), cellStatus("d", run("finished", 100), "5_1", undefined, undefined, null)]);
    expect(text).toMatch(/^ {2}d +done +5_1 +100\/100$/m);
    expect(text).toMatch(/1 done, 1 new$/);
  });

  it("finds the last error ddst wrote to a task's log, not the script's own lines", () => {
    const log = "ddst: array task 5_0 on n1, start 1: a,b\nddst: invalid experiment /t.json (cell a):\n  - data.path: /x: no such file or directory\nddst: time limit near; requeueing 5_0\n";
    expect(lastError(log)).toBe("invalid experiment /t.json (cell a): - data.path: /x: no such file or directory");
    expect(lastError("ddst: array task 5_0 on n1\nstart a on cpu\n")).toBeNull();
    // An earlier start's error is not the latest start's.
    expect(lastError("ddst: array task 5_0 on n1, start 1\nddst: old error\nddst: array task 5_0 on n1, start 2\nstart a on cpu\n")).toBeNull();
  });
});

describe("run.lock left by a Slurm job on another node", () => {
  it("is taken over by the same array task after a requeue, and respected otherwise", () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-lock-"));
    const file = join(dir, "run.lock");
    writeFileSync(file, `4242 some-other-node 77_3@0\n`);
    const saved = { ...process.env };
    try {
      // Another task's lock, or this task's from a start that is not earlier (two steps of one job): squeue is
      // asked; where it cannot answer (here: no squeue on PATH), the lock stands.
      process.env.PATH = dir;
      Object.assign(process.env, { SLURM_ARRAY_JOB_ID: "77", SLURM_ARRAY_TASK_ID: "3", SLURM_JOB_ID: "80", SLURM_RESTART_COUNT: "0" });
      expect(liveHolder(file)).toEqual({ pid: 4242, host: "some-other-node", job: "77_3", restart: 0 });
      process.env.SLURM_RESTART_COUNT = "1";
      expect(liveHolder(file)).toBeNull();
      process.env.SLURM_ARRAY_TASK_ID = "4";
      expect(liveHolder(file)).toEqual({ pid: 4242, host: "some-other-node", job: "77_3", restart: 0 });
      writeFileSync(file, `4242 some-other-node\n`);
      expect(liveHolder(file)).toEqual({ pid: 4242, host: "some-other-node" });
      expect(hostname()).not.toBe("some-other-node");
    } finally {
      process.env = saved;
    }
  });
});
