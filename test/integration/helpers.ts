import { execa } from "execa";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataSpec, ModelSpec, TrainSpec, trainArgs } from "../../src/vocabulary/networks.js";

export const tempDir = (prefix = "ddst-test-") => mkdtempSync(join(tmpdir(), prefix));

/** The experiment file of the durability tests (resume.test.ts, faults.test.ts): 300 toy iterations with G's DST
 * step, D's controller, a loss record every 10 iterations and a checkpoint every 100, so interruptions and
 * resumes land between all of them. */
export const durableToy = (name: string) => ({
  name,
  method: "adapt-relax",
  density: 0.2,
  iterations: 300,
  model: { name: "mlp2d", hidden: 64 },
  data: { name: "ring8" },
  train: { batchSize: 128, lrG: 0.002, lrD: 0.0005, betas: [0.5, 0.9] },
  generator: { dst: { every: 50 } },
  discriminator: { controller: { every: 60, window: 50 } },
  log: { every: 10 },
  checkpoint: { every: 100 },
});

/** A toy `build` request as `ddst run` sends it: the specs parsed, so every default is filled in. */
export const toyBuild = {
  seed: 0,
  device: "cpu",
  model: ModelSpec.parse({ name: "mlp2d", hidden: 64 }),
  data: DataSpec.parse({ name: "ring8" }),
  train: trainArgs(TrainSpec.parse({ batchSize: 64, nCritic: 1, loss: "hinge", lrG: 1e-3, lrD: 1e-3, betas: [0.5, 0.9], ema: 0.999 })),
} as const;

/** Whether `pid` still runs. A process that has exited but was not reaped yet (a zombie: an orphan whose new
 * parent is slow to wait for it) has stopped running, so it counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) state ...", comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return true; // no /proc (not Linux): kill(pid, 0) is all there is
  }
}

export async function waitFor(cond: () => boolean, ms: number, step = 25): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, step));
  }
  return cond();
}

/** `ddst run ...` as a child process, collecting the pid of every worker it reports starting. */
export function spawnCli(cli: string, args: string[]) {
  // No forced SIGKILL after a kill(): a loaded machine may take more than execa's default 5 s to checkpoint.
  const child = execa("node", [cli, ...args], { reject: false, forceKillAfterDelay: false });
  const pids: number[] = [];
  child.stdout?.on("data", (d: Buffer) => {
    for (const m of d.toString().matchAll(/worker: pid (\d+)/g)) pids.push(Number(m[1]));
  });
  const firstWorker = async (ms = 60_000) => {
    if (!(await waitFor(() => pids.length > 0, ms))) throw new Error("no worker started");
    return pids[0]!;
  };
  return { child, pids, firstWorker };
}

/** One torch thread for every worker this test file starts, in process or through a spawned `ddst` (both inherit
 * DDST_THREADS), unless the environment already sets it. torch's default is a thread per core, and two workers
 * side by side then spin against each other: on two cores, two 300-iteration toy runs at once took 24 s with the
 * default and 7 s with one thread each (one alone: 6.0 s and 5.6 s). What the tests check does not depend on it:
 * the threads setting is passed on, not interpreted, by the orchestrator. Call it at the top of a test file. */
export function oneTorchThread(): void {
  process.env.DDST_THREADS ??= "1";
}

/** At most `n` of the tasks given to the returned function run at a time; the others wait their turn, in order.
 * For tests marked concurrent whose work is CPU-bound: one worker per core. */
export function limit(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active < n) active++;
    else await new Promise<void>((r) => waiting.push(r)); // the slot is handed over, `active` unchanged
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** A toy table file in `dir` (ring8, 2-D MLP): one density column 0.5, the base tuning ADAPT's controller, which
 * static-balance lacks (the table tests and the Slurm tests). */
export function writeToyTable(dir: string, t: { iterations: number; checkpointEvery: number; methods: string[]; seeds: number[]; paper?: Record<string, number> }): string {
  const file = join(dir, "toy-table.json");
  writeFileSync(
    file,
    JSON.stringify({
      name: "toy",
      base: {
        method: "adapt-relax",
        density: 0.5,
        iterations: t.iterations,
        model: { name: "mlp2d", hidden: 64, latentDim: 2 },
        data: { name: "ring8", std: 0.2 },
        train: { batchSize: 64, nCritic: 1, lrG: 1e-3, lrD: 1e-3, betas: [0.5, 0.9], ema: null },
        generator: { dst: { every: 50 } },
        discriminator: { controller: { every: 100, window: 100 } },
        log: { every: 20 },
        checkpoint: { every: t.checkpointEvery },
        eval: { samples: 500 },
      },
      methods: t.methods,
      densities: [0.5],
      seeds: t.seeds,
      ...(t.paper ? { paper: t.paper } : {}),
    }),
  );
  return file;
}

/** A .npy of `n` grayscale uint8 images of `side` x `side` (N x H x W), as numpy writes it. */
export function npyImages(n: number, side: number): Buffer {
  return npy("|u1", [n, side, side], Buffer.from(Array.from({ length: n * side * side }, (_, i) => (i * 37) % 256)));
}

/** numpy's format 1.0: magic, header padded to 64 bytes, data. */
function npy(descr: string, shape: number[], data: Buffer): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const magic = Buffer.from([0x93, ...Buffer.from("NUMPY"), 1, 0, header.length & 0xff, header.length >> 8]);
  return Buffer.concat([magic, Buffer.from(header, "latin1"), data]);
}

/** A float32 .npy of 2-D points near float32's limit, as numpy writes it (format 1.0): any GAN trained on it
 * goes to NaN in its first iteration. */
export function hugePoints(): Buffer {
  const points = Array.from({ length: 64 }, () => [3e38, -3e38]);
  return npy("<f4", [points.length, 2], Buffer.from(new Float32Array(points.flat()).buffer));
}
