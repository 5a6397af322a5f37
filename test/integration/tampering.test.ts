import { execa } from "execa";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readRecords } from "../../src/analysis/read-records.js";
import { findPython } from "../../src/worker/discover.js";
import { durableToy, hugePoints, npyImages, oneTorchThread, tempDir, waitFor } from "./helpers.js";

/** What a run directory does with values and files it must not trust: training gone to NaN, a config.json or a
 * checkpoint changed by hand, a report pointed at the run's own files, a machine without Python, two processes
 * racing for a stale lock. Each is refused by name, and nothing already written is lost or rewritten. */

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");
oneTorchThread();
const EXP = { ...durableToy("tamper-toy"), eval: null };
const cli = (args: string[], env?: Record<string, string>) => execa("node", [CLI, ...args], { reject: false, env });
const read = (dir: string, f: string) => readFileSync(join(dir, f), "utf8");

describe.concurrent("tampering", () => {
  let file: string;
  /** A run stopped at iteration 100 (checkpoints at 0 and 100); each test disturbs a copy of it. */
  let base: Promise<string>;
  beforeAll(() => {
    file = join(tempDir(), "exp.json");
    writeFileSync(file, JSON.stringify(EXP));
    const out = join(tempDir(), "base");
    base = cli(["run", file, "--out", out, "--until", "100"]).then((r) => {
      if (r.exitCode !== 0) throw new Error(`the base run failed (exit ${r.exitCode}): ${r.stderr}`);
      return out;
    });
    base.catch(() => undefined); // reported by the tests that await it
  });
  const copyOfBase = async (name: string) => {
    const out = join(tempDir(), name);
    cpSync(await base, out, { recursive: true });
    return out;
  };
  /** A 12-iteration DCGAN-28 run of `data` evaluated by `evaluation` at its end, refused before training: exit 2,
   * no run directory. -> its stderr. */
  const refusedBeforeTraining = async (dir: string, data: object, evaluation: object) => {
    const f = join(dir, "exp.json");
    writeFileSync(f, JSON.stringify({
      name: "refused",
      method: "static-balance",
      density: 0.5,
      iterations: 12,
      model: { name: "dcgan28", width: 8, latentDim: 16 },
      data,
      train: { batchSize: 8, nCritic: 1 },
      eval: { every: 0, samples: 8, batchSize: 8, ...evaluation },
    }));
    const out = join(dir, "run");
    const r = await cli(["run", f, "--out", out]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(existsSync(out)).toBe(false);
    return r.stderr;
  };
  /** The run directory's files, to check that a refusal changed none of them. */
  const snapshot = (dir: string) => ["config.json", "checkpoint.json", "metrics.jsonl"].map((f) => read(dir, f));

  it("training that goes to NaN stops at the iteration where it did; every record written can be read", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "huge.npy"), hugePoints());
    const f = join(dir, "diverge.json");
    writeFileSync(f, JSON.stringify({ ...EXP, method: "static-balance", discriminator: undefined, generator: undefined, data: { name: "npy", path: join(dir, "huge.npy") } }));
    const out = join(dir, "run");
    const r = await cli(["run", f, "--out", out]);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/training diverged at iteration 1: the D loss is NaN.*metrics\.jsonl goes up to iteration 0, the last checkpoint is of iteration 0/);
    expect(read(out, "metrics.jsonl")).not.toMatch(/null/);
    expect(readRecords(out).length).toBeGreaterThan(0); // checked against the record schema
    expect(JSON.parse(read(out, "failed.json")).error).toMatch(/diverged at iteration 1/);
  });

  it("an Inception file that is not one is refused before training, exit 2, leaving nothing behind", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "digits.npy"), npyImages(16, 28));
    writeFileSync(join(dir, "inception.pth"), Buffer.from("not a torch file at all"));
    const stderr = await refusedBeforeTraining(dir, { name: "npy", path: join(dir, "digits.npy") }, { metrics: ["fid"], inception: join(dir, "inception.pth") });
    expect(stderr).toMatch(/eval: .*inception\.pth.*\(found by a trial evaluation before training\)/s);
  });

  it("an Inception file of the right shapes holding NaN is refused before training: its features give no FID", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "digits.npy"), npyImages(16, 28));
    const weights = join(dir, "nan-inception.pth");
    const write = [
      "import sys, torch",
      "from ddst_worker.metrics.inception import FIDInceptionV3",
      "sd = FIDInceptionV3().state_dict()",
      "torch.save({k: v.fill_(float('nan')) if v.is_floating_point() else v for k, v in sd.items()}, sys.argv[1])",
    ].join("\n");
    const made = await execa((await findPython()).path, ["-c", write, weights], { reject: false, env: { PYTHONPATH: join(import.meta.dirname, "..", "..", "python") } });
    expect(made.exitCode, made.stderr).toBe(0);
    const stderr = await refusedBeforeTraining(dir, { name: "npy", path: join(dir, "digits.npy") }, { metrics: ["fid"], inception: weights });
    expect(stderr).toMatch(/eval: a trial evaluation before training gave no FID: the Inception network's features are not finite, so .*nan-inception\.pth holds weights of the right shapes but not usable ones/);
  });

  it("classifier metrics on MNIST files without the test split are refused before training, exit 2, leaving nothing behind", async () => {
    const dir = tempDir();
    const idx = (magic: number, dims: number[], data: Buffer) => {
      const head = Buffer.alloc(4 + 4 * dims.length);
      head.writeUInt32BE(magic, 0);
      dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
      return Buffer.concat([head, data]);
    };
    mkdirSync(join(dir, "mnist"));
    writeFileSync(join(dir, "mnist", "train-images-idx3-ubyte"), idx(0x803, [16, 28, 28], Buffer.alloc(16 * 784, 7)));
    writeFileSync(join(dir, "mnist", "train-labels-idx1-ubyte"), idx(0x801, [16], Buffer.from(Array.from({ length: 16 }, (_, i) => i % 10))));
    const stderr = await refusedBeforeTraining(dir, { name: "mnist", path: join(dir, "mnist") }, { metrics: ["classifier"] });
    expect(stderr).toMatch(/eval: the classifier metrics train a domain classifier on the train split and measure its accuracy on the test split: .*t10k-images-idx3-ubyte.*\(found by a trial evaluation before training\)/s);
  });

  it("a final evaluation that fails keeps the training: a resume only evaluates, and then the run is finished", async () => {
    const dir = tempDir();
    const f = join(dir, "eval.json");
    writeFileSync(f, JSON.stringify({ ...EXP, name: "eval-fails", eval: { every: 0, samples: 200 } }));
    const out = join(dir, "run");
    const run = cli(["run", f, "--out", out]);
    // A file where the sample pictures go: the final evaluation cannot write its picture.
    expect(await waitFor(() => existsSync(join(out, "config.json")), 30_000)).toBe(true);
    writeFileSync(join(out, "samples"), "in the way");
    const r = await run;
    expect(r.exitCode, r.stderr).toBe(1);
    expect(JSON.parse(read(out, "checkpoint.json")).iter).toBe(300); // before: 200, and a resume trained 201-300 again
    rmSync(join(out, "samples"));
    const resumed = await cli(["run", "--resume", out]);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(resumed.stderr).not.toMatch(/removed/);
    expect(readRecords(out).filter((x) => x.kind === "eval").map((x) => x.iter)).toEqual([300]);
    expect(JSON.parse(read(out, "summary.json")).eval.final.iter).toBe(300);
  });

  it("a periodic evaluation that fails keeps the training before it: a resume evaluates there first, and the run ends as if undisturbed", async () => {
    const dir = tempDir();
    const f = join(dir, "eval.json");
    // At 150: an evaluation, then a DST step of G (every 50); checkpoints every 100.
    writeFileSync(f, JSON.stringify({ ...EXP, name: "periodic-eval-fails", eval: { every: 150, samples: 200 } }));
    const straight = cli(["run", f, "--out", join(dir, "straight")]);
    const out = join(dir, "run");
    const run = cli(["run", f, "--out", out]);
    expect(await waitFor(() => existsSync(join(out, "config.json")), 30_000)).toBe(true);
    writeFileSync(join(out, "samples"), "in the way"); // the evaluation at 150 cannot write its picture
    const r = await run;
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/a checkpoint at iteration 150 was written before this evaluation; --resume evaluates there first and continues/);
    expect(JSON.parse(read(out, "checkpoint.json")).iter).toBe(150); // before: 100, and a resume trained 101-150 again
    rmSync(join(out, "samples"));
    const resumed = await cli(["run", "--resume", out]);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(resumed.stderr).not.toMatch(/removed/);
    expect((await straight).exitCode).toBe(0);
    expect(read(out, "metrics.jsonl")).toBe(read(join(dir, "straight"), "metrics.jsonl"));
    expect(readRecords(out).filter((x) => x.kind === "eval").map((x) => x.iter)).toEqual([150, 300]);
  });

  it("a config.json edited after the checkpoint is refused naming the field; supervision and checkpoint may change", async () => {
    const out = await copyOfBase("edited");
    const config = JSON.parse(read(out, "config.json"));
    writeFileSync(join(out, "config.json"), JSON.stringify({ ...config, method: "dense", discriminator: { ...config.discriminator, controller: { ...config.discriminator.controller, lower: -1 } } }, null, 2));
    const before = snapshot(out);
    const r = await cli(["run", "--resume", out]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/config\.json was edited after the checkpoint of iteration 100 \(discriminator\.controller\.lower: 0\.45 -> -1; method: "adapt-relax" -> "dense"\)/);
    expect(r.stdout).not.toMatch(/worker: pid/);
    expect(snapshot(out)).toEqual(before);
    expect(existsSync(join(out, "failed.json"))).toBe(false);
    // A field left out that takes its default (a config.json of an older ddst) is no edit; supervision may change.
    const { ema: _ema, ...olderTrain } = config.train;
    // How often it logs changes no training: the loss record at 110 averages the iterations since the last one (100).
    writeFileSync(join(out, "config.json"), JSON.stringify({ ...config, train: olderTrain, supervision: { ...config.supervision, hangTimeoutSeconds: 900 }, log: { ...config.log, every: 5 } }, null, 2));
    const allowed = await cli(["run", "--resume", out, "--until", "110"]);
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(readRecords(out).filter((r) => r.kind === "loss" && r.iter > 100).map((r) => r.iter)).toEqual([105, 110]);
  });

  it("a config.json edited after its checkpoint is shown as edited, beside what was trained", async () => {
    const out = await copyOfBase("relabelled");
    const config = JSON.parse(read(out, "config.json"));
    writeFileSync(join(out, "config.json"), JSON.stringify({ ...config, method: "static-balance", discriminator: { ...config.discriminator, controller: null } }, null, 2));
    const show = await cli(["show", out]);
    expect(show.stdout).toMatch(/^tamper-toy: adapt-relax \(d_G 0\.2\)/);
    expect(show.stdout).toMatch(/status: interrupted; config\.json edited since its checkpoint, iteration 100 of 300/);
    expect(show.stdout).toMatch(/config\.json was edited after its checkpoint \(discriminator\.controller: .*method: "adapt-relax" -> "static-balance"\); shown here is what was trained/);
    const ls = await cli(["ls", join(out, "..")]);
    expect(ls.stdout).toMatch(/relabelled +run +adapt-relax +0\.2 +100\/300 +interrupted; config\.json edited since its checkpoint/);
  });

  it("a decision that empties some of D's layers (not all) is named as it happens", async () => {
    const out = join(tempDir(), "emptied");
    const r = await cli(["run", file, "--out", out, "--until", "70", "--set", 'discriminator.controller={"every":60,"window":50,"floor":0.003,"lower":0.98,"upper":0.99,"step":0.5}']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/ddst: iteration 60: controller 'balance-rule' left layers net\.2, net\.4 of the discriminator with no active weight/);
  });

  it("a controller floor so low that D is left without a weight stops the run at that decision", async () => {
    const out = join(tempDir(), "floor");
    const r = await cli(["run", file, "--out", out, "--set", 'discriminator.controller={"every":60,"window":50,"floor":1e-6,"lower":0.98,"upper":0.99,"step":0.5}']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/controller 'balance-rule' at iteration \d+: density [\d.e-]+ left the discriminator with no active weight, so this run cannot continue past it .*: start a new run with a higher discriminator\.controller\.floor/);
    expect(read(out, "metrics.jsonl")).not.toMatch(/"discriminator":0[,}]/);
  });

  it("a checkpoint file replaced by one of another iteration is refused, naming both", async () => {
    const out = await copyOfBase("swapped");
    cpSync(join(out, "checkpoints", "iter-000000000.pt"), join(out, "checkpoints", "iter-000000100.pt"));
    const before = snapshot(out);
    const r = await cli(["run", "--resume", out]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/iter-000000100\.pt holds iteration 0, but checkpoint\.json records it as iteration 100: the file was replaced: restore the right file, or remove it and resume: the run then falls back to its checkpoint of iteration 0/);
    expect(snapshot(out)).toEqual(before);
    // One of another run (another seed): named as such, with what differs.
    const other = join(tempDir(), "other");
    expect((await cli(["run", file, "--out", other, "--seed", "7", "--until", "0"])).exitCode).toBe(0);
    cpSync(join(other, "checkpoints", "iter-000000000.pt"), join(out, "checkpoints", "iter-000000100.pt"));
    const foreign = await cli(["run", "--resume", out]);
    expect(foreign.exitCode, foreign.stderr).toBe(2);
    expect(foreign.stderr).toMatch(/iter-000000100\.pt was written by another run \(seed is 7 there, 0 here\): the file was replaced: restore the right file, or remove it and resume: the run then falls back to its checkpoint of iteration 0/);
    expect(snapshot(out)).toEqual(before);
  });

  it("a checkpoint.json edited by hand is refused naming what is wrong: no record is dropped, no file outside the run touched", async () => {
    const out = await copyOfBase("pointer");
    const pointer = JSON.parse(read(out, "checkpoint.json"));
    const victim = join(tempDir(), "victim.txt");
    writeFileSync(victim, "notes\n");
    const refused = async (edit: (p: typeof pointer) => void, message: RegExp) => {
      const edited = structuredClone(pointer);
      edit(edited);
      writeFileSync(join(out, "checkpoint.json"), JSON.stringify(edited));
      const before = snapshot(out);
      const r = await cli(["run", "--resume", out]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(snapshot(out)).toEqual(before);
    };
    await refused((p) => (p.state.metricsBytes = 0), /checkpoint of iteration 100 ends .*metrics\.jsonl at byte 0, but a record of iteration 0 comes after that: resuming would drop it for good\. checkpoint\.json was edited; restore it/);
    await refused((p) => (p.state.metricsBytes = -5), /checkpoint\.json cannot be read as a checkpoint pointer \(state\.metricsBytes: Too small/);
    await refused((p) => (p.state.densityD = 5), /checkpoint\.json cannot be read as a checkpoint pointer \(state\.densityD: Too big/);
    await refused((p) => (p.worker = relative(out, victim)), /checkpoint\.json cannot be read as a checkpoint pointer \(worker: not a checkpoint of this run \(checkpoints\/iter-<iteration>\.pt\)\)/);
    expect(readFileSync(victim, "utf8")).toBe("notes\n");
  });

  it("a resume on a machine without a usable Python exits 2 and changes nothing", async () => {
    const out = await copyOfBase("nopython");
    const before = snapshot(out);
    const r = await cli(["run", "--resume", out, "--iterations", "400"], { DDST_PYTHON: "/nonexistent/python" });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/no Python that can import torch/);
    expect(snapshot(out)).toEqual(before); // config.json still says 300 iterations
    expect(existsSync(join(out, "failed.json"))).toBe(false);
  });

  it("a report never replaces a run's own files or anything that is not an HTML page", async () => {
    const out = await copyOfBase("report");
    const before = snapshot(out);
    for (const target of ["config.json", "metrics.jsonl"]) {
      const r = await cli(["report", out, "--out", join(out, target)]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/a report is an HTML file; give a name ending in \.html/);
    }
    // A page of the user's, even a proper HTML page, and a link to elsewhere are left as they are.
    const mine = "<!doctype html><p>my notes</p>";
    writeFileSync(join(out, "notes.html"), mine);
    const notes = await cli(["report", out, "--out", join(out, "notes.html")]);
    expect(notes.exitCode).toBe(2);
    expect(notes.stderr).toMatch(/notes\.html exists and is not a ddst report; it is left as it is/);
    expect(read(out, "notes.html")).toBe(mine);
    symlinkSync(join(out, "elsewhere.jsonl"), join(out, "link.html"));
    const link = await cli(["report", out, "--out", join(out, "link.html")]);
    expect(link.exitCode).toBe(2);
    expect(link.stderr).toMatch(/link\.html is a symbolic link; it is left as it is/);
    expect(existsSync(join(out, "elsewhere.jsonl"))).toBe(false);
    expect(snapshot(out)).toEqual(before);
    // --png: a picture of the user's that has a plot's name, or a link there, is left as it is, and so is the page.
    const pics = join(out, "pics");
    mkdirSync(pics);
    const picture = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from("my own picture")]);
    writeFileSync(join(pics, "mine-loss.png"), picture);
    const png = await cli(["report", out, "--out", join(pics, "mine.html"), "--png"]);
    expect(png.exitCode).toBe(2);
    expect(png.stderr).toMatch(/--png: .*mine-loss\.png exists and is not a plot of a ddst report; it is left as it is/);
    symlinkSync(join(out, "elsewhere.png"), join(pics, "mine-br.png"));
    rmSync(join(pics, "mine-loss.png"));
    expect((await cli(["report", out, "--out", join(pics, "mine.html"), "--png"])).stderr).toMatch(/mine-br\.png is a symbolic link; it is left as it is/);
    expect(readdirSync(pics)).toEqual(["mine-br.png"]);
    rmSync(join(pics, "mine-br.png"));
    for (let i = 0; i < 2; i++) expect((await cli(["report", out, "--out", join(pics, "mine.html"), "--png"])).exitCode).toBe(0); // its own plots, again
    expect(readdirSync(pics).sort()).toEqual(["mine-br.png", "mine-density.png", "mine-flops.png", "mine-loss.png", "mine.html"]);
    for (let i = 0; i < 2; i++) expect((await cli(["report", out])).exitCode).toBe(0); // its own page, again
    // Beside the run's own page, an unmarked PNG is a plot of an older ddst only if it is not newer than that page.
    const page = statSync(join(out, "report.html")).mtime;
    writeFileSync(join(out, "report-loss.png"), picture);
    utimesSync(join(out, "report-loss.png"), page, new Date(page.getTime() + 5000));
    expect((await cli(["report", out, "--png"])).stderr).toMatch(/report-loss\.png exists and is not a plot of a ddst report/);
    utimesSync(join(out, "report-loss.png"), page, new Date(page.getTime() - 5000));
    expect((await cli(["report", out, "--png"])).exitCode).toBe(0);
    expect((await cli(["report", out, "--out", join(out, "notes2.html")])).exitCode).toBe(0);
    expect((await cli(["report", out, "--out", join(out, "notes2.html")])).exitCode).toBe(0); // a ddst report elsewhere, again
  });

  it("a run is never made inside another run's directory; --resume of a file says what it wants", async () => {
    const out = await copyOfBase("outer");
    const inner = await cli(["run", file, "--out", join(out, "samples", "inner")]);
    expect(inner.exitCode).toBe(2);
    expect(inner.stderr).toMatch(new RegExp(`samples/inner is inside the run ${out}; choose an --out outside it`));
    expect(existsSync(join(out, "samples", "inner"))).toBe(false);
    const onFile = await cli(["run", "--resume", join(out, "config.json")]);
    expect(onFile.exitCode).toBe(2);
    expect(onFile.stderr).toMatch(/config\.json is a file; --resume takes the directory of a run/);
  });

  it("a run that stopped before its first checkpoint is named as such, by a new run into it and by --resume", async () => {
    // What a run killed during start-up leaves: config.json, iteration 0's record and worker file, no checkpoint.json.
    const out = await copyOfBase("unstarted");
    rmSync(join(out, "checkpoint.json"));
    rmSync(join(out, "checkpoints", "iter-000000100.pt"));
    writeFileSync(join(out, "metrics.jsonl"), read(out, "metrics.jsonl").split("\n")[0] + "\n");
    for (const args of [["run", file, "--out", out], ["run", "--resume", out]]) {
      const r = await cli(args);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/stopped before its first checkpoint, so nothing of it was trained; remove it and (run|start the run) again/);
    }
    // With more than that in it, it is not called empty of training.
    writeFileSync(join(out, "summary.json"), "{}");
    const r = await cli(["run", file, "--out", out]);
    expect(r.stderr).toMatch(/already exists and is not empty/);
  });

  it("a finished run taken further is no longer shown with its old end as final", async () => {
    const out = await copyOfBase("extended");
    expect((await cli(["run", "--resume", out, "--iterations", "100"])).exitCode).toBe(0); // finished at 100
    expect(existsSync(join(out, "summary.json"))).toBe(true);
    const further = await cli(["run", "--resume", out, "--iterations", "150", "--until", "120"]);
    expect(further.exitCode, further.stderr).toBe(0);
    expect(existsSync(join(out, "summary.json"))).toBe(false);
    const show = await cli(["show", out]);
    expect(show.stdout).toMatch(/interrupted, iteration 120 of 150/);
    expect(show.stdout).not.toMatch(/final/);
  });

  it("a density that leaves a layer without a single active weight is refused before anything is kept", async () => {
    const out = join(tempDir(), "empty");
    const r = await cli(["run", file, "--out", out, "--set", "density=1e-9"]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/the starting density leaves \d+ layers? with no active weight, e\.g\. generator \S+ \(\d+ weights at density .*\): raise the density/);
    expect(existsSync(out)).toBe(false);
  });

  it("a takeover guard left behind (another host's, dated in the future) delays a takeover by seconds, not forever", async () => {
    const dir = tempDir();
    const lock = join(dir, "run.lock");
    const module = join(import.meta.dirname, "..", "..", "dist", "run", "dir-lock.js");
    writeFileSync(lock, `999999999 ${hostname()}\n`); // stale
    writeFileSync(join(dir, ".run.lock.takeover"), "4242 another-host\n"); // its holder cannot be checked from here
    utimesSync(join(dir, ".run.lock.takeover"), new Date(Date.now() + 3600_000), new Date(Date.now() + 3600_000));
    const t0 = Date.now();
    const r = await execa("node", ["-e", `import(${JSON.stringify(module)}).then(({ takeLock }) => { takeLock(${JSON.stringify(lock)}, () => new Error("held")); console.log("took") })`], { timeout: 20_000 });
    expect(r.stdout).toBe("took");
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(readFileSync(lock, "utf8")).toMatch(/^\d+ /);
  });

  it("processes taking over one stale lock together: exactly one of them holds it", async () => {
    const lock = join(tempDir(), "run.lock");
    const module = join(import.meta.dirname, "..", "..", "dist", "run", "dir-lock.js");
    // Each process spins until the same moment, takes the lock or is refused, and stays (holding it) until the
    // test closes its input: a holder that exited would leave a stale lock for a latecomer to take.
    const taker = `import(${JSON.stringify(module)}).then(({ takeLock }) => { const at = Number(process.argv[1]); while (Date.now() < at) {}
      try { takeLock(${JSON.stringify(lock)}, () => new Error("held")); console.log("took"); } catch { console.log("refused"); }
      process.stdin.resume(); process.stdin.on("end", () => process.exit(0)); })`;
    for (let trial = 0; trial < 8; trial++) {
      writeFileSync(lock, `999999999 ${hostname()}\n`); // a pid that cannot run: stale
      const at = String(Date.now() + 700);
      const takers = Array.from({ length: 4 }, () => execa("node", ["-e", taker, at], { stdin: "pipe" }));
      const answers = await Promise.all(takers.map((t) => new Promise<string>((done) => t.stdout!.once("data", (d: Buffer) => done(d.toString().trim())))));
      for (const t of takers) t.stdin!.end();
      await Promise.all(takers);
      expect(answers.filter((a) => a === "took"), `trial ${trial}: ${answers.join(", ")}`).toHaveLength(1);
    }
  });
});
