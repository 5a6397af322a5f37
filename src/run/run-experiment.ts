import { expandEnv, resolveDataPaths } from "../config/data-paths.js";
import { defaultMetrics, Experiment } from "../config/experiment.js";
import { BrWindow, type Probe } from "../controller/br-window.js";
import { decideDensity } from "../controller/density-rule.js";
import { rowsOf } from "../protocol/frames.js";
import { BuildResult, DstStepResult, EvalResult, LoadResult, SaveResult, SetDensityResult, StatsResult, TrainResult, type LayerInfo } from "../protocol/messages.js";
import { type NetName } from "../vocabulary/criteria.js";
import { initialDensities } from "../sparsity/erk.js";
import { FlopsAccount, perSampleMacs, type BatchPlan } from "../sparsity/flops.js";
import type { CapDstPolicy } from "../config/policies.js";
import { deathRate } from "../sparsity/schedule.js";
import { findPython } from "../worker/discover.js";
import { Worker, WorkerDiedError, WorkerHungError, type WorkerOptions } from "../worker/worker.js";
import { isControllerIter, isEvalIter, isGeneratorDstIter, isLogIter, nextEventIter, probeEvery, windowProbes } from "./events.js";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { primaryMetric, Summary, type MetricRecord } from "./records.js";
import { cacheDir } from "../worker/paths.js";
import { RunDir, RunDirError } from "./run-dir.js";
import type { RunState } from "./run-state.js";

/** The experiment loop: TypeScript decides, the worker computes. Each `train` command runs up to the next
 * event (G DST step, D controller decision, log line, checkpoint), so a long run costs few round trips.
 * Runs are durable: checkpoints at the start, every `checkpoint.every` iterations, on interruption and at
 * the end; a dead or hung worker is restarted from the last checkpoint. */

export interface RunOptions {
  /** Run directory: a new run needs it absent or empty; a resumed run reads it. */
  out: string;
  /** Stop (with a checkpoint) after this iteration instead of the experiment's end. */
  until?: number;
  worker?: WorkerOptions;
  /** Run on this device instead of the experiment's (a table's cells go where --devices puts them); the
   * device changes speed and floating-point detail, not what is trained, so config.json keeps its own. */
  device?: Experiment["device"];
  /** Every record as it is written (progress display, scripts). */
  onRecord?: (r: MetricRecord) => void;
  /** Called each time a worker has handshaken (its pid, versions). */
  onWorker?: (w: Worker) => void;
  /** Aborting interrupts training, writes a checkpoint, stops the worker and rejects with RunAborted. */
  signal?: AbortSignal;
}

export class RunAborted extends Error {
  constructor(readonly iter: number) {
    super(`run interrupted at iteration ${iter}; a checkpoint was written, continue it with --resume`);
    this.name = "RunAborted";
  }
}

/** Starts a new run of `exp` in `opts.out`. */
export async function runExperiment(exp: Experiment, opts: RunOptions): Promise<Summary> {
  RunDir.checkFree(opts.out);
  // Find the interpreter before creating anything, so a machine without one leaves no half-made run.
  const python = opts.worker?.python ?? (await findPython()).path;
  const dir = RunDir.create(opts.out);
  dir.writeJson("config.json", exp);
  try {
    return await new ExperimentRun(exp, dir, { ...opts, worker: { ...opts.worker, python } }).drive(false);
  } catch (e) {
    // A run that failed before its first checkpoint (unreadable data, a model that cannot be built) holds
    // nothing worth keeping; removing it lets the same command run again once the cause is fixed.
    if (!existsSync(join(dir.path, "checkpoint.json"))) rmSync(dir.path, { recursive: true, force: true });
    throw e;
  }
}

/** Continues the run in `opts.out` from its last checkpoint, to the experiment's end or `iterations`. */
export async function resumeRun(opts: RunOptions & { iterations?: number }): Promise<Summary> {
  const dir = RunDir.open(opts.out);
  const parsed = Experiment.safeParse(dir.readJson("config.json"));
  if (!parsed.success) throw new RunDirError(`${dir.path}/config.json is not a valid experiment: ${parsed.error.issues[0]?.message}`);
  let exp = parsed.data;
  const done = dir.readPointer().iter;
  const target = opts.iterations ?? exp.iterations;
  if (done >= target && existsSync(join(dir.path, "summary.json"))) {
    // Nothing left to do: hand back what the finished run reported.
    return Summary.parse(dir.readJson("summary.json"));
  }
  if (opts.iterations !== undefined && opts.iterations !== exp.iterations) {
    // A new length moves the schedules' horizon from here on; config.json records it.
    exp = { ...exp, iterations: opts.iterations };
    dir.writeJson("config.json", exp);
  }
  return new ExperimentRun(exp, dir, opts).drive(true);
}

const isWorkerFailure = (e: unknown) => e instanceof WorkerDiedError || e instanceof WorkerHungError;

class ExperimentRun {
  private worker!: Worker;
  private layers: LayerInfo[] = [];
  private window: BrWindow;
  private state: RunState;
  private macs = { generator: 0, discriminator: 0 };
  private readonly plan: BatchPlan;
  private readonly started = Date.now();
  private baseWall = 0;

  constructor(
    private readonly exp: Experiment,
    private readonly dir: RunDir,
    private readonly opts: RunOptions,
  ) {
    this.window = new BrWindow(windowProbes(exp));
    this.plan = { disBatch: exp.train.batchSize, genBatch: exp.train.genBatchSize ?? exp.train.batchSize, nCritic: exp.train.nCritic };
    this.state = {
      iter: 0,
      densityD: exp.discriminator.density,
      window: this.window.state(),
      lossSum: { d: 0, g: 0, n: 0 },
      flops: { paper: { generator: 0, discriminator: 0 }, executed: { generator: 0, discriminator: 0 } },
      restarts: 0,
      eval: { final: null, best: null },
      wallSeconds: 0,
      metricsBytes: 0,
    };
  }

  async drive(resume: boolean): Promise<Summary> {
    const onAbort = () => this.worker?.client.request("interrupt", {}).catch(() => undefined);
    this.opts.signal?.addEventListener("abort", onAbort);
    try {
      if (resume) {
        await this.restore();
        if (this.state.iter > this.exp.iterations)
          throw new RunDirError(`${this.dir.path} is already at iteration ${this.state.iter}, past the requested ${this.exp.iterations}`);
      } else await this.begin();
      const stop = Math.min(this.opts.until ?? this.exp.iterations, this.exp.iterations);
      while (this.state.iter < stop) {
        if (this.opts.signal?.aborted) {
          await this.checkpoint();
          throw new RunAborted(this.state.iter);
        }
        try {
          await this.segment(stop);
        } catch (e) {
          if (!isWorkerFailure(e) || this.opts.signal?.aborted) throw e;
          if (this.state.restarts >= this.exp.supervision.maxRestarts)
            throw new Error(`${(e as Error).message}\n(the worker failed ${this.state.restarts + 1} times; supervision.maxRestarts is ${this.exp.supervision.maxRestarts})`);
          await this.restart(e as Error);
        }
      }
      if (this.opts.signal?.aborted && this.state.iter < this.exp.iterations) {
        await this.checkpoint();
        throw new RunAborted(this.state.iter);
      }
      if (this.state.iter >= this.exp.iterations) return await this.finish();
      await this.checkpoint();
      return this.summary(await this.stats());
    } finally {
      this.opts.signal?.removeEventListener("abort", onAbort);
      await this.worker?.stop();
    }
  }

  // ---- lifecycle ------------------------------------------------------------------------------------

  private async startWorker(): Promise<void> {
    const s = this.exp.supervision;
    this.worker = await Worker.start({
      hangTimeoutMs: s.hangTimeoutSeconds * 1000,
      threads: s.threads,
      ...this.opts.worker,
      logFile: this.dir.logPath,
    });
    this.opts.onWorker?.(this.worker);
    const e = this.exp;
    const data = resolveDataPaths(e.data);
    const built = await this.worker.ask("build", { seed: e.seed, device: this.device, model: e.model, data, train: e.train }, BuildResult);
    this.layers = built.layers;
  }

  private async begin(): Promise<void> {
    await this.startWorker();
    const maskable = (net: NetName) => this.layers.filter((l) => l.net === net && l.maskable);
    const masks = {
      generator: initialDensities(this.exp.generator.init, maskable("generator"), this.exp.generator.density),
      discriminator: initialDensities(this.exp.discriminator.init, maskable("discriminator"), this.exp.discriminator.density),
    };
    const stats = await this.worker.ask("setMasks", masks, StatsResult);
    this.updateMacs(stats);
    this.emit([{ iter: 0, kind: "density", generator: stats.generator.density, discriminator: stats.discriminator.density }]);
    await this.checkpoint();
  }

  /** Loads the newest checkpoint into a fresh worker and cuts metrics.jsonl back to it. */
  private async restore(): Promise<void> {
    const pointer = this.dir.readPointer();
    if (!this.worker?.alive) await this.startWorker();
    await this.worker.ask("load", { path: `${this.dir.path}/${pointer.worker}` }, LoadResult);
    this.state = structuredClone(pointer.state);
    this.window = BrWindow.restore(this.state.window);
    this.baseWall = this.state.wallSeconds;
    this.dir.truncateMetrics(this.state.metricsBytes);
    this.updateMacs(await this.stats());
  }

  private async restart(cause: Error): Promise<void> {
    const attempt = this.state.restarts + 1;
    await this.worker.stop();
    await this.restore();
    this.state.restarts = attempt;
    const reason = cause.message.split("\n")[0] ?? cause.name;
    this.emit([{ iter: this.state.iter, kind: "restart", attempt, reason, fromCheckpoint: this.state.iter }]);
  }

  private async checkpoint(): Promise<void> {
    const t = this.state.iter;
    const file = this.dir.workerCheckpoint(t);
    await this.worker.ask("save", { path: file.absolute }, SaveResult);
    this.state.window = this.window.state();
    this.state.wallSeconds = this.wall();
    this.state.metricsBytes = this.dir.metricsBytes();
    this.dir.publish({ iter: t, worker: file.relative, state: structuredClone(this.state) }, this.exp.checkpoint.keep);
  }

  private async finish(): Promise<Summary> {
    const stats = await this.stats();
    const last: MetricRecord[] = [];
    if (this.exp.eval && this.state.eval.final?.iter !== this.state.iter) last.push(await this.evaluate(this.state.iter));
    last.push({ iter: this.state.iter, kind: "density", generator: stats.generator.density, discriminator: stats.discriminator.density });
    this.emit(last);
    await this.checkpoint();
    const summary = this.summary(stats);
    this.dir.writeJson("summary.json", summary);
    return summary;
  }

  // ---- training -----------------------------------------------------------------------------------

  /** Trains up to the next event (or an interruption), then carries out the decisions due there. */
  private async segment(stop: number): Promise<void> {
    const t0 = this.state.iter;
    const next = Math.min(nextEventIter(this.exp, t0), this.nextCheckpointIter(t0), stop);
    const every = probeEvery(this.exp);
    const reply = await this.worker.call("train", { start: t0 + 1, iterations: next - t0, probeEvery: every });
    const result = TrainResult.parse(reply.result);
    const records: MetricRecord[] = [];
    for (const [iter, d, g] of rowsOf(reply.tensors.get("losses"))) {
      const s = this.state.lossSum;
      this.state.lossSum = { d: s.d + d!, g: s.g + g!, n: s.n + 1 };
      if (isLogIter(this.exp, iter!)) {
        // The loss record is the mean over the iterations since the previous one.
        const m = this.state.lossSum;
        records.push({ iter: iter!, kind: "loss", d: m.d / m.n, g: m.g / m.n });
        this.state.lossSum = { d: 0, g: 0, n: 0 };
      }
    }
    const probes = rowsOf(reply.tensors.get("probes"));
    for (const [iter, fakePre, fakePost, real] of probes) {
      const probe: Probe = { iter: iter!, fakePre: fakePre!, fakePost: fakePost!, real: real! };
      const ratio = this.window.push(probe);
      records.push({
        iter: probe.iter,
        kind: "br",
        br: this.window.count ? this.window.value : null,
        ratio: Number.isFinite(ratio) ? ratio : null,
        probe: { fakePre: probe.fakePre, fakePost: probe.fakePost, real: probe.real },
      });
    }
    this.addFlops(result.end - t0, probes.length);
    this.state.iter = result.end;
    if (result.end === next && next < this.exp.iterations && isEvalIter(this.exp, next)) records.push(await this.evaluate(next));
    if (result.end === next) records.push(...(await this.decide(next)));
    this.emit(records);
    if (result.end === next && (next % this.exp.checkpoint.every === 0 || next === stop) && next < this.exp.iterations) await this.checkpoint();
  }

  /** The decisions due after iteration t: G's DST step, then D's density controller. */
  private async decide(t: number): Promise<MetricRecord[]> {
    const exp = this.exp;
    const T = exp.iterations;
    const records: MetricRecord[] = [];
    let masksChanged = false;
    let densityChanged = false;
    if (isGeneratorDstIter(exp, t)) {
      const dst = exp.generator.dst!;
      records.push(await this.dstStep("generator", t, dst, deathRate(dst.schedule, dst.deathRate, dst.floor, t, T)));
      masksChanged = true;
    }
    const c = exp.discriminator.controller;
    if (c && isControllerIter(exp, t) && this.window.full) {
      const br = this.window.value;
      const decision = decideDensity(c, br, this.state.densityD);
      if (decision.decision === "increase" || decision.decision === "decrease") {
        await this.worker.ask("setDensity", { net: "discriminator", target: decision.densityD, growth: c.growth }, SetDensityResult);
        masksChanged = densityChanged = true;
      } else if (decision.decision === "dst" && c.capDst) {
        // D's own schedule counts D steps.
        const n = exp.train.nCritic;
        records.push(await this.dstStep("discriminator", t, c.capDst, deathRate(c.capDst.schedule, c.capDst.deathRate, c.capDst.floor, t * n, T * n)));
        masksChanged = true;
      }
      this.state.densityD = decision.densityD;
      records.push({ iter: t, kind: "controller", br, lower: c.lower, upper: c.upper, decision: decision.decision, densityD: decision.densityD });
    }
    if (masksChanged) {
      // Global criteria move weights between layers, which changes the cost per sample even at a fixed count.
      const stats = await this.stats();
      this.updateMacs(stats);
      if (densityChanged) records.push({ iter: t, kind: "density", generator: stats.generator.density, discriminator: stats.discriminator.density });
    }
    return records;
  }

  /** One prune-and-regrow step at fixed count on `net`, as a `dst` record. */
  private async dstStep(net: NetName, t: number, policy: CapDstPolicy, dropRate: number): Promise<MetricRecord> {
    const r = await this.worker.ask("dstStep", { net, dropRate, prune: policy.prune, growth: policy.growth, alpha: policy.alpha }, DstStepResult);
    return { iter: t, kind: "dst", net, dropRate, pruned: r.pruned, grown: r.grown, active: r.active, total: r.total };
  }

  /** Judges the EMA generator after iteration t; its noise is its own, so training is unaffected. */
  private async evaluate(t: number): Promise<MetricRecord> {
    const ev = this.exp.eval!;
    const picture = join("samples", `iter-${String(t).padStart(9, "0")}.png`);
    const r = await this.worker.ask(
      "evaluate",
      {
        metrics: ev.metrics ?? defaultMetrics(this.exp.data.name),
        samples: ev.samples,
        seed: ev.seed,
        batchSize: ev.batchSize,
        reference: ev.reference,
        ...(ev.inception ? { inception: expandEnv(ev.inception, "eval.inception") } : {}),
        cacheDir: cacheDir(),
        picture: join(this.dir.path, picture),
      },
      EvalResult,
    );
    const point = { iter: t, metrics: r.metrics };
    this.state.eval.final = point;
    const key = primaryMetric(r.metrics);
    const best = this.state.eval.best;
    if (key && (!best || !(key in best.metrics) || r.metrics[key]! < best.metrics[key]!)) this.state.eval.best = point;
    // Wall time stays out of metrics.jsonl, which is reproducible byte for byte; worker.log has it.
    return { iter: t, kind: "eval", metrics: r.metrics, picture: r.picture ? picture : null };
  }

  private nextCheckpointIter(t: number): number {
    const every = this.exp.checkpoint.every;
    return (Math.floor(t / every) + 1) * every;
  }

  // ---- accounting ---------------------------------------------------------------------------------

  private stats() {
    return this.worker.ask("stats", {}, StatsResult);
  }

  private updateMacs(stats: StatsResult): void {
    const densities = (net: NetName) => Object.fromEntries(stats[net].layers.map((l) => [l.name, l.density]));
    this.macs = {
      generator: perSampleMacs(this.layers, "generator", densities("generator")),
      discriminator: perSampleMacs(this.layers, "discriminator", densities("discriminator")),
    };
  }

  private addFlops(iterations: number, probes: number): void {
    for (const convention of ["paper", "executed"] as const) {
      const acc = new FlopsAccount(convention, this.plan);
      acc.add(iterations, this.macs, probes);
      this.state.flops[convention].generator += acc.generator;
      this.state.flops[convention].discriminator += acc.discriminator;
    }
  }

  private denseFlops(convention: "paper" | "executed"): number {
    const acc = new FlopsAccount(convention, this.plan);
    const T = this.exp.iterations;
    acc.add(T, { generator: perSampleMacs(this.layers, "generator"), discriminator: perSampleMacs(this.layers, "discriminator") }, Math.floor(T / probeEvery(this.exp)));
    return acc.totals().total;
  }

  private get device(): Experiment["device"] {
    return this.opts.device ?? this.exp.device;
  }

  private wall(): number {
    return this.baseWall + (Date.now() - this.started) / 1000;
  }

  private emit(records: MetricRecord[]): void {
    this.dir.append(records);
    for (const r of records) this.opts.onRecord?.(r);
  }

  private summary(stats: StatsResult): Summary {
    const f = this.state.flops;
    const total = (x: { generator: number; discriminator: number }) => x.generator + x.discriminator;
    const paperDense = this.denseFlops("paper");
    const executedDense = this.denseFlops("executed");
    return {
      name: this.exp.name,
      method: this.exp.method,
      iterations: this.state.iter,
      seed: this.exp.seed,
      device: this.device,
      wallSeconds: this.wall(),
      worker: { python: this.worker.hello.python, torch: this.worker.hello.torch, threads: this.worker.hello.threads },
      final: { densityG: stats.generator.density, densityD: stats.discriminator.density, br: this.window.count ? this.window.value : null },
      flops: {
        convention: "paper",
        ...f.paper,
        total: total(f.paper),
        ratio: total(f.paper) / paperDense,
        executed: { ...f.executed, total: total(f.executed), ratio: total(f.executed) / executedDense },
      },
      restarts: this.state.restarts,
      eval: this.exp.eval
        ? { final: this.state.eval.final, best: this.state.eval.best, primary: this.state.eval.final ? primaryMetric(this.state.eval.final.metrics) : null }
        : null,
    };
  }
}
