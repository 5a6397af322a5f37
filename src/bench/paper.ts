import { availableParallelism } from "node:os";
import { resolveExperiment, type Experiment, type ExperimentInput } from "../config/experiment.js";
import { probeEvery } from "../run/events.js";
import { genBatchSize, type TrainSpec } from "../vocabulary/networks.js";
import { Worker } from "../worker/worker.js";
import { timeIterations, warmedUp } from "./steady-state.js";

/** `ddst bench --paper`: the steady-state cost of one paper-setting iteration (SNGAN-32, D batch 64, G batch
 * 128, n_critic 5, hinge loss, EMA, the BR probe every 10 iterations, ADAPT's starting masks: ERK at d_G =
 * d_D = 0.1), through the real protocol path, and the aggregate throughput of several such runs sharing one
 * device. Data is random images of CIFAR-10's shape: no files are read, and the timing does not depend on
 * what the pictures show. */

export const PAPER_SETTING = {
  name: "bench-paper",
  method: "adapt-relax",
  density: 0.1,
  seed: 0,
  iterations: 100_000,
  model: { name: "sngan32" },
  data: { name: "synthetic", shape: [3, 32, 32] },
  train: { batchSize: 64, genBatchSize: 128, nCritic: 5, loss: "hinge", lrG: 2e-4, lrD: 2e-4, betas: [0, 0.9], ema: 0.999 },
} as const satisfies ExperimentInput;

export type Numerics = Partial<Pick<TrainSpec, "precision" | "tf32" | "cudaGraphs" | "channelsLast" | "compile">>;

/** The benchmarked experiment: `input` (the paper setting unless a test gives a smaller one) with the numerics
 * asked for. */
export function paperExperiment(numerics: Numerics = {}, input: ExperimentInput = PAPER_SETTING): Experiment {
  return resolveExperiment({ ...input, train: { ...input.train, ...numerics } }, "the benchmark's experiment");
}

export interface BenchPlan {
  device: "cpu" | "cuda";
  warmup: number;       // iterations before timing (covers CUDA graph capture)
  iterations: number;   // timed iterations
  profileIterations: number; // iterations under torch.profiler (0: none)
}

/** One run alone on the device. The profiled iterations come after the timed ones, and the busy fraction
 * divides their GPU time by the unprofiled time of as many iterations (the profiler slows the host). */
export async function benchSingle(exp: Experiment, plan: BenchPlan, python?: string) {
  const worker = await Worker.start({ python, hangTimeoutMs: 600_000 });
  try {
    const t0 = performance.now();
    await warmedUp(worker, exp, plan.device, plan.warmup);
    // Build, masks and warm-up: what a run pays once (CUDA graph captures; with train.compile, compilation).
    const warmupSeconds = (performance.now() - t0) / 1000;
    const timed = await timeIterations(worker, exp, plan.warmup + 1, plan.iterations);
    const perIteration = timed.seconds / plan.iterations;
    const n = plan.profileIterations;
    const p = n > 0 ? (await timeIterations(worker, exp, plan.warmup + plan.iterations + 1, n, true)).profile : undefined;
    const per = (x: number | null | undefined) => (x === null || x === undefined ? null : x / n);
    return {
      torch: worker.hello.torch,
      warmupSeconds,
      msPerIteration: perIteration * 1000,
      profile: p
        ? {
            iterations: n,
            msPerIteration: (p.wallS / n) * 1000,
            cpuOpsPerIteration: p.cpuOps / n,
            launchesPerIteration: per(p.launches),
            kernelsPerIteration: per(p.kernels),
            kernelMsPerIteration: p.kernelS === null ? null : (p.kernelS / n) * 1000,
            busyFraction: p.busyS === null ? null : Math.min(1, p.busyS / (perIteration * n)),
            syncsPerIteration: per(p.syncs),
            // Where launches and GPU time go, per iteration: what to attack next.
            topOps: p.topOps.map(([name, calls]) => ({ name, perIteration: calls / n })),
            topKernels: p.topKernels?.map(([name, count, s]) => ({ name, perIteration: count / n, msPerIteration: (s / n) * 1000 })) ?? null,
          }
        : null,
    };
  } finally {
    await worker.stop();
  }
}

/** `runs` workers training the same experiment at once on one device -> iterations per second, all runs
 * together. Each is built and warmed up first; the clock covers the timed iterations of all of them. On the
 * CPU the cores are divided among the runs, as the table runner divides them. */
export async function benchConcurrent(exp: Experiment, plan: BenchPlan, runs: number, python?: string) {
  const threads = plan.device === "cpu" ? Math.max(1, Math.floor(availableParallelism() / runs)) : undefined;
  const started = await Promise.allSettled(Array.from({ length: runs }, () => Worker.start({ python, threads, hangTimeoutMs: 600_000 })));
  const workers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  try {
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    await Promise.all(workers.map((w) => warmedUp(w, exp, plan.device, plan.warmup)));
    const t0 = performance.now();
    await Promise.all(workers.map((w) => timeIterations(w, exp, plan.warmup + 1, plan.iterations)));
    const seconds = (performance.now() - t0) / 1000;
    return { runs, iterationsPerS: (runs * plan.iterations) / seconds };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

/** What the setting is, for the report. */
export function describeSetting(exp: Experiment) {
  return {
    model: exp.model.name,
    dataShape: (exp.data as { shape?: number[] }).shape ?? null,
    batchSize: exp.train.batchSize,
    genBatchSize: genBatchSize(exp.train),
    nCritic: exp.train.nCritic,
    probeEvery: probeEvery(exp),
    density: { generator: exp.generator.density, discriminator: exp.discriminator.density },
    init: { generator: exp.generator.init, discriminator: exp.discriminator.init },
    precision: exp.train.precision,
    tf32: exp.train.tf32,
    cudaGraphs: exp.train.cudaGraphs,
    channelsLast: exp.train.channelsLast,
    compile: exp.train.compile,
  };
}

export async function paperBench(exp: Experiment, plan: BenchPlan, concurrent: readonly number[], python?: string) {
  const single = await benchSingle(exp, plan, python);
  const together = [];
  for (const runs of concurrent) together.push(await benchConcurrent(exp, plan, runs, python));
  const alone = 1000 / single.msPerIteration;
  return {
    setting: describeSetting(exp),
    device: plan.device,
    warmup: plan.warmup,
    iterations: plan.iterations,
    ...single,
    concurrent: together.map((c) => ({ ...c, overOneRun: c.iterationsPerS / alone })),
  };
}
