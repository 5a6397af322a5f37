import { execa, type ResultPromise } from "execa";
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Dealer } from "zeromq";
import { beforeAll, describe, expect, it } from "vitest";
import { rowsOf } from "../../src/protocol/frames.js";
import { DstStepResult, HelloResult, StatsResult } from "../../src/protocol/messages.js";
import { findPython } from "../../src/worker/discover.js";
import { socketBase } from "../../src/worker/socket-dir.js";
import { Worker } from "../../src/worker/worker.js";
import { durableToy, isAlive, oneTorchThread, tempDir, toyBuild, waitFor } from "./helpers.js";

/** The ways clusters, terminals and hostile neighbours stop or disturb a run, one test each, with real workers
 * at toy sizes. A run interrupted or refused here must lose nothing already written and, resumed, give the
 * uninterrupted run's metrics byte for byte. */

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");
// Three tests at a time, each with workers of its own: one torch thread per worker (see oneTorchThread).
oneTorchThread();
const EXP = durableToy("fault-toy");

const run = (args: string[], env?: Record<string, string>) => execa("node", [CLI, "run", ...args], { reject: false, env });
const metrics = (dir: string) => readFileSync(join(dir, "metrics.jsonl"), "utf8");
/** A run's records split: its restart records, and the rest as metrics.jsonl would hold them without a restart. */
function restartsApart(dir: string): { restarts: Record<string, unknown>[]; rest: string } {
  const records = metrics(dir).split("\n").filter(Boolean);
  return {
    restarts: records.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.kind === "restart"),
    rest: records.filter((l) => JSON.parse(l).kind !== "restart").join("\n") + "\n",
  };
}
const pointerIter = (dir: string) => (JSON.parse(readFileSync(join(dir, "checkpoint.json"), "utf8")) as { iter: number }).iter;

/** An interpreter wrapper that starts the worker with `module` (written into `dir` from `source`) imported first, to patch it:
 * how faults the CPU never meets (a failed capture, a compiler crash) are put in. */
async function patchedWorker(dir: string, module: string, source: readonly string[]): Promise<string> {
  writeFileSync(join(dir, `${module}.py`), source.join("\n"));
  const python = (await findPython()).path;
  const wrapper = join(dir, "python");
  const load = `import runpy, ${module}; runpy.run_module('ddst_worker', run_name='__main__', alter_sys=True)`;
  writeFileSync(
    wrapper,
    `#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = ddst_worker ]; then shift 2; PYTHONPATH=${dir}:$PYTHONPATH exec ${python} -c "${load}" "$@"; fi\nexec ${python} "$@"\n`,
    { mode: 0o755 },
  );
  return wrapper;
}

/** The CLI in a process group of its own, as a shell, `timeout` or Slurm starts it, reporting its worker's pid. */
function spawnGroup(args: string[], env?: Record<string, string>) {
  const child: ResultPromise = execa("node", [CLI, "run", ...args], { reject: false, detached: true, env });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  const worker = async () => {
    expect(await waitFor(() => /worker: pid \d+/.test(out), 60_000)).toBe(true);
    return Number(/worker: pid (\d+)/.exec(out)![1]);
  };
  const iterations = () => (out.match(/iter /g) ?? []).length;
  return { child, worker, iterations, output: () => out };
}

// Concurrent (vitest's maxConcurrency): most of each test is a worker starting, and the tests share nothing.
describe.concurrent("faults", () => {
  let file: string;
  /** The uninterrupted run's metrics. Only tests 2 and 8c need them, at their end: the run goes on beside the
   * first tests instead of holding all of them back. */
  let reference: Promise<string>;
  let referenceDir: string;
  beforeAll(() => {
    file = join(tempDir(), "exp.json");
    writeFileSync(file, JSON.stringify(EXP));
    const out = join(tempDir(), "ref");
    referenceDir = out;
    reference = run([file, "--out", out]).then((r) => {
      if (r.exitCode !== 0) throw new Error(`the reference run failed (exit ${r.exitCode}): ${r.stderr}`);
      return metrics(out);
    });
    reference.catch(() => undefined); // reported by the tests that await it, not as an unhandled rejection
  });

  /** A run stopped at `until` (a checkpoint there), for the tests that disturb a resume. */
  const stoppedAt = async (until: number, name: string) => {
    const out = join(tempDir(), name);
    const r = await run([file, "--out", out, "--until", String(until)]);
    expect(r.exitCode, r.stderr).toBe(0);
    return out;
  };

  it.each([
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const)("1. %s to the whole process group writes a checkpoint and exits %i", async (sig, code) => {
    const out = join(tempDir(), "group");
    const g = spawnGroup([file, "--out", out]);
    const worker = await g.worker();
    expect(await waitFor(() => g.iterations() >= 3, 60_000)).toBe(true);
    process.kill(-g.child.pid!, sig); // the group: the worker gets it too, and leaves the stopping to the CLI
    const r = await g.child;
    expect(r.exitCode, String(r.stderr)).toBe(code);
    expect(r.stderr).toMatch(/--resume/);
    expect(await waitFor(() => !isAlive(worker), 3000)).toBe(true);
    // The interrupt checkpoint (resuming from one is bitwise: resume.test.ts), not just the periodic one at 0.
    expect(pointerIter(out)).toBeGreaterThan(0);
  });

  it("a step that cannot be captured as a CUDA graph, then a network that cannot be compiled: the run goes on without each from its last checkpoint, config.json says so", async () => {
    // A worker whose steps cannot be captured and whose networks cannot be compiled (on the CPU neither is
    // done, so the failures are put in): an interpreter wrapper that loads the worker with Session.op_build
    // patched. The capture fails first; the worker built without graphs then fails to compile.
    const dir = tempDir();
    const cannotCapture = [
      "from ddst_worker.errors import WorkerError",
      "from ddst_worker.session import Session",
      "class CannotCapture:",
      "    def d(self, *inputs):",
      "        raise WorkerError('internal', 'capturing the D step as a CUDA graph failed (InjectedError: put in by a test)', {'reason': 'capture', 'step': 'D step', 'error': 'InjectedError'})",
      "    g = d",
      "def cannot_compile(x):",
      "    raise WorkerError('internal', 'compiling the discriminator with torch.compile failed (InjectedError: put in by a test); train without it', {'reason': 'compile', 'net': 'the discriminator', 'error': 'InjectedError'})",
      "built = Session.op_build",
      "def op_build(self, args):",
      "    reply = built(self, args)",
      "    if args['train']['cudaGraphs']:",
      "        self.gan.graphs = CannotCapture()",
      "    if args['train']['compile']:",
      "        self.gan.compiled = (self.gan.G, cannot_compile)",
      "    return reply",
      "Session.op_build = op_build",
    ];
    const wrapper = await patchedWorker(dir, "cannot_capture", cannotCapture);
    const out = join(dir, "run");
    const r = await run([file, "--out", out, "--set", "train.cudaGraphs=true", "--set", "train.compile=true"], { DDST_PYTHON: wrapper });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain("capturing the D step as a CUDA graph failed (InjectedError: put in by a test)");
    expect(r.stderr).toContain("continuing without CUDA graphs from the last checkpoint (config.json now says train.cudaGraphs: false");
    expect(r.stderr).toContain("compiling the discriminator with torch.compile failed (InjectedError: put in by a test)");
    expect(r.stderr).toContain("continuing without torch.compile from the last checkpoint (config.json now says train.compile: false");
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).train).toMatchObject({ cudaGraphs: false, compile: false });
    // Trained as the uninterrupted run was (on the CPU neither changes anything), with a record of each restart:
    // both went back to the same checkpoint, and the second's rewind of metrics.jsonl keeps the first's record.
    const { restarts, rest } = restartsApart(out);
    expect(restarts).toHaveLength(2);
    expect(restarts[0]).toMatchObject({ attempt: 1, reason: expect.stringContaining("capturing the D step") });
    expect(restarts[1]).toMatchObject({ attempt: 2, reason: expect.stringContaining("compiling the discriminator"), fromCheckpoint: restarts[0]!.fromCheckpoint });
    expect(rest).toBe(await reference);
  });

  it("a worker that dies twice since the same checkpoint with torch.compile applied goes on without it", async () => {
    // A compiler crash kills the process and says nothing. Put in here: a worker whose compiled discriminator
    // kills it (SIGKILL, as a segfault would) and whose build says it applies train.compile, as on CUDA.
    const dir = tempDir();
    const compileKills = [
      "import os, signal",
      "from ddst_worker.session import Session",
      "def kills(x):",
      "    os.kill(os.getpid(), signal.SIGKILL)",
      "built = Session.op_build",
      "def op_build(self, args):",
      "    reply = built(self, args)",
      "    if args['train']['compile']:",
      "        self.gan.compiled = (self.gan.G, kills)",
      "        reply['execution']['compile'] = True",
      "    return reply",
      "Session.op_build = op_build",
    ];
    const wrapper = await patchedWorker(dir, "compile_kills", compileKills);
    // Within supervision.maxRestarts, as any restart: with 1, the second failure ends the run, compile left on.
    const limited = join(dir, "limited");
    const l = await run([file, "--out", limited, "--set", "train.compile=true", "--set", "supervision.maxRestarts=1"], { DDST_PYTHON: wrapper });
    expect(l.exitCode).toBe(1);
    expect(l.stderr).toContain("(the worker failed 2 times; supervision.maxRestarts is 1)");
    expect(JSON.parse(readFileSync(join(limited, "config.json"), "utf8")).train.compile).toBe(true);
    const out = join(dir, "run");
    const r = await run([file, "--out", out, "--set", "train.compile=true"], { DDST_PYTHON: wrapper });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain("the worker failed 2 times since the checkpoint of iteration 0 with torch.compile on: it is the suspect");
    expect(r.stderr).toContain("continuing without torch.compile from the last checkpoint (config.json now says train.compile: false");
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).train.compile).toBe(false);
    const { restarts, rest } = restartsApart(out);
    expect(restarts.map((r) => [r.attempt, r.fromCheckpoint])).toEqual([[1, 0], [2, 0]]);
    expect(rest).toBe(await reference);
  });

  it("a worker that dies while the run ends is restarted from the last checkpoint like one that dies training", async () => {
    // The end of a run (the final evaluation, the last checkpoint) was outside the restart loop: a death there
    // failed the run. Put in: the worker dies saving the run's last checkpoint (at iteration 300), once; the run
    // goes back to its checkpoint of 200.
    const dir = tempDir();
    const diesAtTheEnd = [
      "import os, signal",
      "from ddst_worker.session import Session",
      `SAVES = ${JSON.stringify(join(dir, "saves-at-300"))}`,
      "save = Session.op_save",
      "def op_save(self, args):",
      "    if self.iter == 300:",
      "        n = int(open(SAVES).read()) if os.path.exists(SAVES) else 0",
      "        open(SAVES, 'w').write(str(n + 1))",
      "        if n == 0:",
      "            os.kill(os.getpid(), signal.SIGKILL)",
      "    return save(self, args)",
      "Session.op_save = op_save",
    ];
    const out = join(dir, "run");
    const r = await run([file, "--out", out], { DDST_PYTHON: await patchedWorker(dir, "dies_at_the_end", diesAtTheEnd) });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(join(dir, "saves-at-300"), "utf8")).toBe("2");
    const { restarts, rest } = restartsApart(out);
    expect(restarts).toMatchObject([{ attempt: 1, reason: expect.stringContaining("SIGKILL"), fromCheckpoint: 200 }]);
    expect(rest).toBe(await reference);
    expect(JSON.parse(readFileSync(join(out, "summary.json"), "utf8")).restarts).toBe(1);
  });

  it("restarts recorded after the last checkpoint (by a process killed before its next one) count in summary.json", async () => {
    // As the kill leaves it: a restart record back to the checkpoint of 200, written after that checkpoint.
    const out = await stoppedAt(200, "restarted");
    const restart = { iter: 200, kind: "restart", attempt: 1, reason: "the PyTorch worker was killed by SIGKILL.", fromCheckpoint: 200 };
    writeFileSync(join(out, "metrics.jsonl"), metrics(out) + JSON.stringify(restart) + "\n");
    const r = await run(["--resume", out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 worker restart/);
    expect(JSON.parse(readFileSync(join(out, "summary.json"), "utf8")).restarts).toBe(1);
    const { restarts, rest } = restartsApart(out);
    expect(restarts).toEqual([restart]);
    expect(rest).toBe(await reference);
  });

  it("a resume whose worker dies loading the checkpoint records the failure (a refusal would not)", async () => {
    const out = await stoppedAt(100, "dies-loading");
    const dir = tempDir();
    const diesLoading = ["import os, signal", "from ddst_worker.session import Session", "Session.op_load = lambda self, args: os.kill(os.getpid(), signal.SIGKILL)"];
    const r = await run(["--resume", out], { DDST_PYTHON: await patchedWorker(dir, "dies_loading", diesLoading) });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(readFileSync(join(out, "failed.json"), "utf8")).error).toMatch(/SIGKILL/);
  });

  it("a restart whose new worker dies loading the checkpoint is one more failure to restart from, not the end", async () => {
    // Put in: the first worker dies training after iteration 150; the first one started to replace it dies
    // loading the checkpoint; the next loads it and finishes.
    const dir = tempDir();
    const diesTwice = [
      "import os, signal",
      "from ddst_worker.session import Session",
      `MARK = ${JSON.stringify(join(dir, "mark"))}`,
      "def once(name):",
      "    if os.path.exists(MARK + name):",
      "        return False",
      "    open(MARK + name, 'w').close()",
      "    return True",
      "train, load = Session.op_train, Session.op_load",
      "def op_train(self, args, progress=None):",
      "    if args['start'] > 150 and once('-train'):",
      "        os.kill(os.getpid(), signal.SIGKILL)",
      "    return train(self, args, progress)",
      "def op_load(self, args):",
      "    if once('-load'):",
      "        os.kill(os.getpid(), signal.SIGKILL)",
      "    return load(self, args)",
      "Session.op_train, Session.op_load = op_train, op_load",
    ];
    const out = join(dir, "run");
    const r = await run([file, "--out", out], { DDST_PYTHON: await patchedWorker(dir, "dies_twice", diesTwice) });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(join(dir, "mark-load"))).toBe(true);
    const { restarts, rest } = restartsApart(out);
    expect(restarts).toMatchObject([{ attempt: 1, fromCheckpoint: 100 }]); // the restart that loaded
    expect(JSON.parse(readFileSync(join(out, "summary.json"), "utf8")).restarts).toBe(1);
    expect(rest).toBe(await reference);
  });

  it("2. a second writer of a run directory is refused naming the holder; a stale lock is taken over", async () => {
    const out = join(tempDir(), "lock");
    const first = spawnGroup([file, "--out", out]);
    const worker = await first.worker();
    expect(await waitFor(() => existsSync(join(out, "checkpoint.json")), 60_000)).toBe(true);
    // Held still while the second writer tries: on a loaded machine the whole toy run could end before that.
    process.kill(-first.child.pid!, "SIGSTOP");
    const second = await run(["--resume", out]);
    expect(second.exitCode).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`being written by another ddst \\(pid ${first.child.pid}\\)`));
    process.kill(first.child.pid!, "SIGKILL"); // dies holding the lock; its worker follows it
    process.kill(-first.child.pid!, "SIGCONT"); // the worker, to notice that
    await first.child;
    expect(await waitFor(() => !isAlive(worker), 15_000)).toBe(true);
    expect(existsSync(join(out, "run.lock"))).toBe(true);
    const third = await run(["--resume", out]);
    expect(third.exitCode, third.stderr).toBe(0);
    expect(metrics(out)).toBe(await reference);
    expect(existsSync(join(out, "run.lock"))).toBe(false);
  });

  it("3. --resume with fewer iterations than the run has is refused before anything on disk changes", async () => {
    const out = await stoppedAt(200, "shorter");
    const config = readFileSync(join(out, "config.json"), "utf8");
    const r = await run(["--resume", out, "--iterations", "150"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/already at iteration 200, past the requested 150/);
    const until = await run(["--resume", out, "--until", "120"]);
    expect(until.exitCode).toBe(2);
    expect(until.stderr).toMatch(/already at iteration 200, past --until 120; give --until 200 or more/);
    expect(until.stdout).not.toMatch(/worker: pid/);
    // More than a new run may have would leave config.json unreadable.
    const longer = await run(["--resume", out, "--iterations", "9999999999"]);
    expect(longer.exitCode).toBe(2);
    expect(longer.stderr).toMatch(/--iterations 9999999999: Too big: expected number to be <=100000000/);
    expect(readFileSync(join(out, "config.json"), "utf8")).toBe(config); // so a plain --resume still works
  });

  it("3b. a metrics.jsonl cut short, removed or edited since its checkpoint is refused on resume, nothing changed", async () => {
    const out = await stoppedAt(250, "cut");
    const file = join(out, "metrics.jsonl");
    const saved = readFileSync(file);
    const pointer = readFileSync(join(out, "checkpoint.json"), "utf8");
    const refused = async (content: Buffer | null, message: RegExp) => {
      if (content === null) rmSync(file);
      else writeFileSync(file, content);
      const r = await run(["--resume", out]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/nothing was changed; restore the file/);
      expect(content === null ? existsSync(file) : readFileSync(file).equals(content)).toBe(content !== null);
      expect(readFileSync(join(out, "checkpoint.json"), "utf8")).toBe(pointer);
    };
    const cut = new RegExp(`${out}/metrics.jsonl has (3000|0) bytes, but the checkpoint it is resumed from recorded ${saved.length}: records were lost`);
    await refused(saved.subarray(0, 3000), cut);
    await refused(null, cut);
    // The last record's line continued: appending would glue the next record onto it.
    await refused(Buffer.concat([saved.subarray(0, -1), Buffer.from(', "note": 1}\n')]), /no record ends there: the file was edited/);
    // A damaged summary.json of a finished run (a copy of the reference): resuming writes it again from the
    // checkpoint that recorded the end, and adds no record twice.
    const ref = await reference;
    const done = join(tempDir(), "done");
    cpSync(referenceDir, done, { recursive: true });
    const summary = JSON.parse(readFileSync(join(done, "summary.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(done, "summary.json"), '{"name": "fault-toy", "meth');
    const again = await run(["--resume", done]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/summary.json cannot be read as a run summary; it is written again when the run finishes/);
    expect({ ...JSON.parse(readFileSync(join(done, "summary.json"), "utf8")), wallSeconds: 0 }).toEqual({ ...summary, wallSeconds: 0 });
    expect(metrics(done)).toBe(ref);
  });

  it("3c. standard output closed by its reader (`ddst run | head`) stops the run cleanly: a checkpoint, exit 141", async () => {
    const out = join(tempDir(), "piped");
    const child = execa("node", [CLI, "run", file, "--out", out], { reject: false });
    let seen = "";
    child.stdout!.on("data", (d: Buffer) => {
      seen += d.toString();
      if (/iter +\d+\//.test(seen)) child.stdout!.destroy(); // as `head` exits once it has its lines
    });
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(141);
    expect(r.stderr).toMatch(/standard output was closed \(EPIPE\): interrupting; writing checkpoints/);
    expect(r.stderr).not.toMatch(/Error: write EPIPE|at afterWriteDispatched/);
    expect(existsSync(join(out, "run.lock"))).toBe(false);
    // The interrupt checkpoint (resuming from one is bitwise: resume.test.ts).
    expect(pointerIter(out)).toBeGreaterThan(0);
  });

  it("3d. a closed terminal (every write fails with EIO, then SIGHUP) still gets its checkpoint written", async () => {
    // fixtures/hangup.py gives the run a terminal of its own and, once it trains (a measured speed), closes it as a
    // window closing does. It exits 129 (Node 20 would abort at exit restoring the terminal's modes, were the
    // terminal's streams not closed first: signals.ts).
    const out = join(tempDir(), "hangup");
    const r = await execa("python3", [join(import.meta.dirname, "fixtures", "hangup.py"), "[0-9] it/s", "node", CLI, "run", file, "--out", out], { reject: false });
    expect(r.stdout, r.stderr).toMatch(/^seen True, exit 129$/m);
    expect(pointerIter(out)).toBeGreaterThan(0);
    expect(existsSync(join(out, "run.lock"))).toBe(false);
  });

  it("4a. a worker that writes 110 MB to stderr keeps running, and worker.log holds all of it, every character whole", async () => {
    // Through a wrapper that writes before it starts Python: the orchestrator read the pipe into a 100 MB buffer
    // that, full, closed it, and the next write killed the writer. Two-byte characters: decoded chunk by chunk,
    // one split between two chunks came out as two replacement characters.
    const dir = tempDir();
    const python = (await findPython()).path;
    const wrapper = join(dir, "python");
    const spew = "import sys\nblock = ('\u00e9' * 511 + '\\n').encode() * 1024\nfor _ in range(110): sys.stderr.buffer.write(block)";
    writeFileSync(wrapper, `#!/bin/sh\nif [ "$1" = -m ]; then ${python} -c "${spew}" || exit 1; fi\nexec ${python} "$@"\n`, { mode: 0o755 });
    const out = join(dir, "run");
    const r = await run([file, "--out", out, "--iterations", "20"], { DDST_PYTHON: wrapper });
    expect(r.exitCode, r.stderr.slice(-500)).toBe(0);
    expect(statSync(join(out, "worker.log")).size).toBeGreaterThan(110_000_000);
    expect(readFileSync(join(out, "worker.log"), "utf8").includes("\ufffd")).toBe(false);
    rmSync(join(out, "worker.log"));
  });

  it("4. a TMPDIR too long for a socket path still runs, and the private directory goes even after SIGKILL", async () => {
    const long = join(tempDir(), "x".repeat(110));
    mkdirSync(long);
    expect(socketBase(long)).toBe("/tmp");
    expect(() => socketBase(long, "/y".repeat(60))).toThrow(/set TMPDIR to a shorter directory/);
    const out = join(tempDir(), "longtmp");
    const r = await run([file, "--out", out, "--iterations", "20"], { TMPDIR: long });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/TypeError|    at /);
    // SIGKILL to the CLI alone: no handler runs, so the worker removes the private directory when it sees
    // its parent gone.
    const tmp = tempDir();
    const g = spawnGroup([file, "--out", join(tempDir(), "killed"), "--iterations", "1000000"], { TMPDIR: tmp });
    const worker = await g.worker();
    expect(readdirSync(tmp).filter((f) => f.startsWith("ddst-"))).toHaveLength(1);
    process.kill(g.child.pid!, "SIGKILL");
    await g.child;
    expect(await waitFor(() => !isAlive(worker), 15_000)).toBe(true);
    const privateDirs = () => readdirSync(tmp).filter((f) => f.startsWith("ddst-"));
    expect(await waitFor(() => privateDirs().length === 0, 5000)).toBe(true);
    // The same where a wrapper script that does not `exec` starts Python (a `module load` first, say): the shell
    // outlives the CLI, and the worker goes all the same.
    const wrapper = join(tmp, "python-wrapper");
    writeFileSync(wrapper, `#!/bin/sh\n${(await findPython()).path} "$@"\n`, { mode: 0o755 });
    const w = spawnGroup([file, "--out", join(tempDir(), "wrapped"), "--iterations", "1000000"], { TMPDIR: tmp, DDST_PYTHON: wrapper });
    const wrapped = await w.worker();
    process.kill(w.child.pid!, "SIGKILL");
    await w.child;
    expect(await waitFor(() => !isAlive(wrapped), 15_000)).toBe(true);
    expect(await waitFor(() => privateDirs().length === 0, 5000)).toBe(true);
  });

  it("5. a captured signed request sent again from a new connection is dropped and counted; training is unaffected", async () => {
    const [clean, attacked] = await Promise.all([Worker.start(), Worker.start()]);
    try {
      // Capture every frame the orchestrator's client sends to the attacked worker.
      const sent: Buffer[][] = [];
      const client = attacked.client as unknown as { enqueue: (f: Buffer[]) => Promise<void> };
      const enqueue = client.enqueue.bind(client);
      client.enqueue = (frames: Buffer[]) => (sent.push(frames.map((f) => Buffer.from(f))), enqueue(frames));
      const script = async (w: Worker, replay: boolean) => {
        await w.call("build", toyBuild);
        await w.call("setMasks", { generator: { "net.0": 0.5, "net.2": 0.3 }, discriminator: { "net.2": 0.4 } });
        await w.call("train", { start: 1, iterations: 20, probeEvery: 10 });
        const step = await w.ask("dstStep", { net: "generator", dropRate: 0.3, prune: "magnitude", growth: "random", alpha: 0.5 }, DstStepResult);
        if (replay) {
          const dstStep = sent.find((f) => JSON.parse(f[1]!.toString()).op === "dstStep")!;
          const intruder = new Dealer({ linger: 0 });
          intruder.connect(w.client.endpoint);
          for (let i = 0; i < 5; i++) await intruder.send(dstStep);
          await attacked.client.sendRaw(dstStep.slice(1)); // and again, from the orchestrator's own connection
          await new Promise((r) => setTimeout(r, 500)); // closing at once would discard what is still queued
          intruder.close();
        }
        const losses = rowsOf((await w.call("train", { start: 21, iterations: 20, probeEvery: 10 })).tensors.get("losses"));
        return { step, losses, stats: await w.ask("stats", {}, StatsResult) };
      };
      const [a, b] = await Promise.all([script(clean, false), script(attacked, true)]);
      expect(b).toEqual(a);
      const hello = await attacked.ask("hello", {}, HelloResult);
      expect(hello.dropped).toEqual({ unsigned: 0, replayed: 6 });
    } finally {
      await Promise.all([clean.stop(), attacked.stop()]);
    }
  });

  it("6. what a run needs is checked before iteration 1: missing weights, an unset variable, a malformed data file", async () => {
    const dir = tempDir();
    const withEval = (inception: string) => ({ ...EXP, data: { name: "synthetic", shape: [3, 8, 8] }, model: { name: "dcgan32" }, eval: { metrics: ["fid"], inception } });
    const cases: [object, RegExp][] = [
      [withEval(join(dir, "nowhere.pt")), /eval\.inception: .*nowhere\.pt: no such file or directory/],
      [withEval("${DDST_TEST_UNSET_WEIGHTS}"), /eval\.inception uses \$\{DDST_TEST_UNSET_WEIGHTS\}, but the environment variable DDST_TEST_UNSET_WEIGHTS is not set/],
      [{ ...EXP, data: { name: "npy", path: join(dir, "missing.npy") } }, /data\.path: .*missing\.npy: no such file or directory/],
    ];
    writeFileSync(join(dir, "garbage.npy"), "not an array");
    cases.push([{ ...EXP, data: { name: "npy", path: join(dir, "garbage.npy") } }, /cannot build this experiment: .*garbage\.npy/]);
    // DDST_CACHE naming a file: every evaluation would train the domain classifier anew, said only in worker.log.
    writeFileSync(join(dir, "cache-file"), "");
    cases.push([{ ...EXP, eval: { every: 100 } }, /DDST_CACHE: .*cache-file is not a directory: point DDST_CACHE at a directory/]);
    for (const [exp, message] of cases) {
      const f = join(dir, "e.json");
      writeFileSync(f, JSON.stringify(exp));
      const out = join(dir, "never");
      const r = await run([f, "--out", out], { DDST_TEST_UNSET_WEIGHTS: "", DDST_CACHE: join(dir, "cache-file") });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
  });

  it("7. start-up has its own timeout; a hang timeout shorter than start-up is fine, and messages name the setting", async () => {
    const out = join(tempDir(), "hang");
    const r = await run([file, "--out", out, "--iterations", "20", "--set", "supervision.hangTimeoutSeconds=1", "--set", "eval=null"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const slow = await run([file, "--out", join(tempDir(), "slow"), "--set", "supervision.startupTimeoutSeconds=0.05"]);
    expect(slow.exitCode).toBe(1);
    expect(slow.stderr).toMatch(/raise supervision\.startupTimeoutSeconds/);
    expect(slow.stderr).not.toMatch(/hangTimeoutMs/);
  });

  it("8a. --until 0 names no results file that does not exist; --out naming a file is refused by name", async () => {
    const out = join(tempDir(), "zero");
    const r = await run([file, "--out", out, "--until", "0"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/results:/);
    expect(r.stdout).toMatch(/stopped at iteration 0 .*\n.*continue with: node \S*cli\.js run --resume/);
    const taken = join(tempDir(), "a-file");
    writeFileSync(taken, "mine");
    const f = await run([file, "--out", taken]);
    expect(f.exitCode).toBe(2);
    expect(f.stderr).toMatch(new RegExp(`${taken} is a file, not a directory`));
    expect(readFileSync(taken, "utf8")).toBe("mine");
    // An empty --out (an unset shell variable) is no directory: Node's fs would have written into the working
    // directory, over the run of iteration 0 above when run from there.
    const before = readdirSync(out).map((f) => [f, statSync(join(out, f)).mtimeMs]);
    const empty = await execa("node", [CLI, "run", file, "--out", ""], { reject: false, cwd: out });
    expect(empty.exitCode).toBe(2);
    expect(empty.stderr).toContain("--out is empty; give the directory for the run");
    expect(readdirSync(out).map((f) => [f, statSync(join(out, f)).mtimeMs])).toEqual(before);
  });

  it("8b. a read-only place for the run is reported as such, naming the directory", async () => {
    const dir = tempDir();
    // root writes through permission bits, so as root the test mounts a read-only tmpfs instead (where the
    // machine lets it; else the nearest real case: a part of the path that is a file)
    const root = process.getuid?.() === 0;
    let expected: string;
    let out = join(dir, "run");
    let mounted = false;
    if (!root) {
      execFileSync("chmod", ["0555", dir]);
      expected = "permission denied \\(EACCES\\)";
    } else {
      try {
        execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir], { stdio: "ignore" });
        mounted = true;
        expected = "the file system is read-only \\(EROFS\\)";
      } catch {
        writeFileSync(join(dir, "file"), "");
        out = join(dir, "file", "run");
        expected = "a part of the path is a file, not a directory \\(ENOTDIR\\)";
      }
    }
    try {
      const r = await run([file, "--out", out]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`cannot create ${out}: ${expected}`));
    } finally {
      if (mounted) execFileSync("umount", [dir]);
    }
  });

  it("8c. a full disk names the file it could not write; a truncated newest checkpoint falls back to the previous one; the run then ends as if undisturbed", async () => {
    const out = await stoppedAt(250, "full");
    // metrics.jsonl on a full disk
    const saved = readFileSync(join(out, "metrics.jsonl"));
    rmSync(join(out, "metrics.jsonl"));
    symlinkSync("/dev/full", join(out, "metrics.jsonl"));
    const m = await run(["--resume", out]);
    expect(m.exitCode).toBe(2);
    expect(m.stderr).toMatch(new RegExp(`cannot append to ${out}/metrics.jsonl: no space left on device \\(ENOSPC\\)`));
    rmSync(join(out, "metrics.jsonl"));
    writeFileSync(join(out, "metrics.jsonl"), saved);
    // the final checkpoint, at 300, on a full disk
    const tmp = join(out, "checkpoints", "iter-000000300.pt.tmp");
    symlinkSync("/dev/full", tmp);
    const c = await run(["--resume", out]);
    expect(c.exitCode).toBe(1);
    expect(c.stderr).toMatch(/cannot write checkpoint .*iter-000000300\.pt: No space left on device/);
    expect(existsSync(tmp)).toBe(false);
    expect(pointerIter(out)).toBe(250);
    // the newest checkpoint truncated (a crash mid-write on a file system without atomic rename)
    const newest = join(out, "checkpoints", "iter-000000250.pt");
    expect(existsSync(join(out, "checkpoints", "iter-000000200.pt"))).toBe(true);
    truncateSync(newest, Math.floor(statSync(newest).size / 2));
    const r = await run(["--resume", out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/iter-000000250\.pt cannot be read: truncated.*set aside as checkpoints\/iter-000000250\.pt\.unreadable\. Falling back to the checkpoint of iteration 200/s);
    expect(metrics(out)).toBe(await reference);
  });

  it("every checkpoint unreadable: the resume says the run cannot be resumed and what to do, and keeps what is there", async () => {
    const out = join(tempDir(), "all-truncated");
    expect((await run([file, "--out", out, "--until", "20"])).exitCode).toBe(0);
    const kept = readFileSync(join(out, "metrics.jsonl"), "utf8");
    // A failure of an earlier attempt, and a summary as a finished run has one: a refused resume changes neither,
    // nor the length config.json records (it did: --iterations was written, failed.json replaced, summary.json removed).
    const failed = JSON.stringify({ error: "an earlier failure", iter: 20, at: "2026-01-01T00:00:00Z" });
    writeFileSync(join(out, "failed.json"), failed);
    writeFileSync(join(out, "summary.json"), "{}");
    const config = readFileSync(join(out, "config.json"), "utf8");
    for (const f of readdirSync(join(out, "checkpoints"))) truncateSync(join(out, "checkpoints", f), 100);
    const checkpoints = readdirSync(join(out, "checkpoints"));
    const r = await run(["--resume", out, "--iterations", "400"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`no checkpoint of ${out} can be read \\(tried iterations 20, 0\\), so this run cannot be resumed: run the experiment again into a new directory`));
    expect(r.stderr).not.toMatch(/    at /);
    expect(readFileSync(join(out, "metrics.jsonl"), "utf8")).toBe(kept);
    expect(readFileSync(join(out, "config.json"), "utf8")).toBe(config);
    expect(readFileSync(join(out, "failed.json"), "utf8")).toBe(failed);
    expect(readFileSync(join(out, "summary.json"), "utf8")).toBe("{}");
    expect(readdirSync(join(out, "checkpoints"))).toEqual(checkpoints); // none set aside for a fall-back that never came
  });
});
