import type { Experiment } from "../config/experiment.js";
import { BrWindow, type Probe } from "../controller/br-window.js";
import { decideDensity } from "../controller/density-rule.js";
import { rowsOf } from "../protocol/frames.js";
import { BuildResult, DstStepResult, SetDensityResult, StatsResult, type LayerInfo, type NetName } from "../protocol/messages.js";
import { initialDensities } from "../sparsity/erk.js";
import { deathRate } from "../sparsity/schedule.js";
import { findPython } from "../worker/discover.js";
import { Worker, type WorkerOptions } from "../worker/worker.js";
import { isControllerIter, isGeneratorDstIter, isLogIter, nextEventIter, probeEvery, windowProbes } from "./events.js";
import type { MetricRecord, Summary } from "./records.js";
import { RunDir } from "./run-dir.js";

/** The experiment loop: TypeScript decides, the worker computes. Each `train` command runs up to the next
 * event (G DST step, D controller decision, log line), so a long run costs few round trips. */

export interface RunOptions {
  /** Run directory; must not exist or be empty. */
  out: string;
  worker?: WorkerOptions;
  /** Every record as it is written (progress display, scripts). */
  onRecord?: (r: MetricRecord) => void;
  /** Called once the worker has handshaken (its pid, versions). */
  onWorker?: (w: Worker) => void;
  signal?: AbortSignal;
}

export class RunAborted extends Error {
  constructor() {
    super("run interrupted");
    this.name = "RunAborted";
  }
}

export async function runExperiment(exp: Experiment, opts: RunOptions): Promise<Summary> {
  const started = Date.now();
  RunDir.checkFree(opts.out);
  // Find the interpreter before creating anything, so a machine without one leaves no half-made run.
  const python = opts.worker?.python ?? (await findPython()).path;
  const dir = RunDir.create(opts.out);
  dir.writeJson("config.json", exp);
  const worker = await Worker.start({ ...opts.worker, python, logFile: dir.logPath });
  opts.onWorker?.(worker);
  const abort = () => worker.killNow();
  opts.signal?.addEventListener("abort", abort, { once: true });
  try {
    const emit = (records: MetricRecord[]) => {
      dir.append(records);
      for (const r of records) opts.onRecord?.(r);
    };
    const checkAbort = () => {
      if (opts.signal?.aborted) throw new RunAborted();
    };

    const built = await worker.ask("build", { seed: exp.seed, device: exp.device, model: exp.model, data: exp.data, train: exp.train }, BuildResult);
    const maskable = (net: NetName) => built.layers.filter((l: LayerInfo) => l.net === net && l.maskable);
    const masks = {
      generator: initialDensities(exp.generator.init, maskable("generator"), exp.generator.density),
      discriminator: initialDensities(exp.discriminator.init, maskable("discriminator"), exp.discriminator.density),
    };
    let stats = await worker.ask("setMasks", masks, StatsResult);
    let densityD = exp.discriminator.density;
    emit([{ iter: 0, kind: "density", generator: stats.generator.density, discriminator: stats.discriminator.density }]);

    const window = new BrWindow(windowProbes(exp));
    const every = probeEvery(exp);
    const T = exp.iterations;
    let lossSum = { d: 0, g: 0, n: 0 };
    let t = 0;

    while (t < T) {
      checkAbort();
      const next = nextEventIter(exp, t);
      const reply = await worker.call("train", { start: t + 1, iterations: next - t, probeEvery: every });
      const records: MetricRecord[] = [];
      for (const [iter, d, g] of rowsOf(reply.tensors.get("losses"))) {
        lossSum = { d: lossSum.d + d!, g: lossSum.g + g!, n: lossSum.n + 1 };
        if (isLogIter(exp, iter!)) {
          // The loss record is the mean over the iterations since the previous one.
          records.push({ iter: iter!, kind: "loss", d: lossSum.d / lossSum.n, g: lossSum.g / lossSum.n });
          lossSum = { d: 0, g: 0, n: 0 };
        }
      }
      for (const [iter, fakePre, fakePost, real] of rowsOf(reply.tensors.get("probes"))) {
        const probe: Probe = { iter: iter!, fakePre: fakePre!, fakePost: fakePost!, real: real! };
        const ratio = window.push(probe);
        records.push({
          iter: probe.iter,
          kind: "br",
          br: window.count ? window.value : null,
          ratio: Number.isFinite(ratio) ? ratio : null,
          probe: { fakePre: probe.fakePre, fakePost: probe.fakePost, real: probe.real },
        });
      }
      t = next;

      let densityChanged = false;
      if (isGeneratorDstIter(exp, t)) {
        const dst = exp.generator.dst!;
        const rate = deathRate(dst.schedule, dst.deathRate, dst.floor, t, T);
        const r = await worker.ask("dstStep", { net: "generator", dropRate: rate, prune: dst.prune, growth: dst.growth, alpha: dst.alpha }, DstStepResult);
        records.push({ iter: t, kind: "dst", net: "generator", dropRate: rate, pruned: r.pruned, grown: r.grown, active: r.active, total: r.total });
      }
      const c = exp.discriminator.controller;
      if (c && isControllerIter(exp, t) && window.full) {
        const br = window.value;
        const decision = decideDensity(c, br, densityD);
        if (decision.decision === "increase" || decision.decision === "decrease") {
          await worker.ask("setDensity", { net: "discriminator", target: decision.densityD, growth: c.growth }, SetDensityResult);
          densityChanged = true;
        } else if (decision.decision === "dst" && c.capDst) {
          const n = exp.train.nCritic;
          const rate = deathRate(c.capDst.schedule, c.capDst.deathRate, c.capDst.floor, t * n, T * n);
          const r = await worker.ask("dstStep", { net: "discriminator", dropRate: rate, prune: c.capDst.prune, growth: c.capDst.growth, alpha: c.capDst.alpha }, DstStepResult);
          records.push({ iter: t, kind: "dst", net: "discriminator", dropRate: rate, pruned: r.pruned, grown: r.grown, active: r.active, total: r.total });
        }
        densityD = decision.densityD;
        records.push({ iter: t, kind: "controller", br, lower: c.lower, upper: c.upper, decision: decision.decision, densityD });
      }
      if (densityChanged) {
        stats = await worker.ask("stats", {}, StatsResult);
        records.push({ iter: t, kind: "density", generator: stats.generator.density, discriminator: stats.discriminator.density });
      }
      emit(records);
    }

    stats = await worker.ask("stats", {}, StatsResult);
    emit([{ iter: T, kind: "density", generator: stats.generator.density, discriminator: stats.discriminator.density }]);
    const summary: Summary = {
      name: exp.name,
      method: exp.method,
      iterations: T,
      seed: exp.seed,
      device: exp.device,
      wallSeconds: (Date.now() - started) / 1000,
      worker: { python: worker.hello.python, torch: worker.hello.torch, threads: worker.hello.threads },
      final: {
        densityG: stats.generator.density,
        densityD: stats.discriminator.density,
        br: window.count ? window.value : null,
      },
    };
    dir.writeJson("summary.json", summary);
    return summary;
  } catch (e) {
    if (opts.signal?.aborted) throw new RunAborted();
    throw e;
  } finally {
    opts.signal?.removeEventListener("abort", abort);
    await worker.stop();
  }
}
