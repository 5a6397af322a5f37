import { existsSync } from "node:fs";
import { join } from "node:path";
import type { z } from "zod";
import { resolveDataPaths } from "../config/data-paths.js";
import type { Experiment } from "../config/experiment.js";
import { BrWindow } from "../controller/br-window.js";
import { WorkerRequestError } from "../protocol/client.js";
import { rowsOf } from "../protocol/frames.js";
import { trainArgs } from "../vocabulary/networks.js";
import { BuildResult, DstStepResult, EvalResult, LoadResult, SaveResult, SetDensityResult, StatsResult, TrainResult } from "../protocol/messages.js";
import { layersLeftEmpty, startingMasks } from "../sparsity/erk.js";
import { Worker, WorkerDiedError, WorkerHungError } from "../worker/worker.js";
import { BUILT_IN_NAMES, builtInControllers } from "../controller/built-in.js";
import { callController, controllerEvent, ControllerAction, ControllerError, frozenCopy, Json, thrownText, type Controller, type ControllerView } from "../controller/controller.js";
import { configuredPrimary, evaluateArgs, recordEvaluation } from "./evaluation.js";
import { isEvalIter, nextEventIter, probeEvery, windowProbes } from "./events.js";
import { FlopsLedger } from "./flops-ledger.js";
import { type MetricRecord, type Summary } from "./records.js";
import { RunDirError, type RunDir } from "./run-dir.js";
import type { RunOptions } from "./run-options.js";
import type { RunState } from "./run-state.js";
import { closeLossInterval, segmentRecords } from "./segment-records.js";
import { DivergedError, firstNonFinite } from "./divergence.js";
import { InputError } from "../input-error.js";
import { isJsonObject } from "../vocabulary/schema-shapes.js";

/** One run in its directory, read like the method: train to the next event, decide, apply, and again.
 * A `train` command runs up to the next event (G DST step, D controller decision, log line, evaluation,
 * checkpoint), so a long run costs few round trips. Durable: checkpoints at the start, every
 * `checkpoint.every` iterations, on interruption and at the end; a dead or hung worker is restarted from the
 * last checkpoint. */

export class RunAborted extends Error {
  constructor(readonly iter: number) {
    super(`run interrupted at iteration ${iter}; a checkpoint was written, continue it with --resume`);
    this.name = "RunAborted";
  }
}

/** The worker refused to build the experiment (a malformed data file, a model that does not fit the data):
 * bad input, exit 2, with the worker's message naming the file or the field. */
export class BuildRefusedError extends InputError {
  constructor(message: string) {
    super(`the worker cannot build this experiment: ${message}`);
    this.name = "BuildRefusedError";
  }
}

const isWorkerFailure = (e: unknown) => e instanceof WorkerDiedError || e instanceof WorkerHungError;

/** A metrics.jsonl line that records a restart from the checkpoint of `iter`. */
function isRestartAt(line: string, iter: number): boolean {
  try {
    const r = JSON.parse(line) as { kind?: unknown; iter?: unknown };
    return r.kind === "restart" && r.iter === iter;
  } catch {
    return false;
  }
}

/** Execution settings a run can go on without (EXECUTION_FIELDS: the same steps, slower), by the reason a worker
 * gives in `detail.reason` (as a checkpoint load says "unreadable"): it could not capture a training step as a
 * CUDA graph (python/ddst_worker/step_graphs.py), or not compile a network (compiled.py). */
const FALLBACKS = {
  capture: { field: "cudaGraphs", without: "CUDA graphs", note: "a failed capture is a ddst bug worth reporting" },
  compile: { field: "compile", without: "torch.compile", note: "the first line says why the compiler failed" },
} as const;

type Fallback = (typeof FALLBACKS)[keyof typeof FALLBACKS];

/** The fallback for a worker's failure, when it is one and the setting it turns off is on. */
function fallbackFor(e: unknown, train: Experiment["train"]): Fallback | undefined {
  if (!(e instanceof WorkerRequestError) || e.code !== "internal" || !isJsonObject(e.detail)) return undefined;
  const reason = e.detail.reason;
  if (typeof reason !== "string" || !Object.hasOwn(FALLBACKS, reason)) return undefined;
  const fallback = FALLBACKS[reason as keyof typeof FALLBACKS];
  return train[fallback.field] ? fallback : undefined;
}

/** A compiler or a capture that kills the process (a segfault in generated code, a hang) gives no reason: the
 * worker dies or hangs. Once may be anything (the OOM killer, a GPU error); twice since the same checkpoint,
 * with a setting the worker applied, the setting is the suspect: the code generator first, then (at the next
 * failure there, restarts permitting) the capture. Each goes on as a restart within supervision.maxRestarts. */
function suspectOf(execution: BuildResult["execution"] | undefined): Fallback | undefined {
  if (execution?.compile) return FALLBACKS.compile;
  if (execution?.cudaGraphs) return FALLBACKS.capture;
  return undefined;
}

export class ExperimentRun {
  private worker!: Worker;
  /** The experiment; `device: "auto"` is replaced by the device chosen when the first worker starts. */
  private exp: Experiment;
  private ledger!: FlopsLedger;
  private window: BrWindow;
  private state: RunState;
  private readonly started = Date.now();
  private baseWall = 0;
  /** The paper's rules the method calls for, then the experiment's own controllers: the only deciders. */
  private readonly controllers: Controller[];
  /** Both networks' measured densities, as of the last change (mask changes happen only at decisions). */
  private stats_: StatsResult | null = null;
  /** Continuing a run from its checkpoint (not starting one). */
  private resuming = false;
  /** Worker deaths and hangs since the same checkpoint (`from`: its iteration), to find a setting that kills it. */
  private failures: { from: number | null; times: number } = { from: null, times: 0 };
  /** What the current worker applies of the execution settings (its build's answer). */
  private execution: BuildResult["execution"] | undefined;
  /** Set when a controller ends the run early. */
  private stopped: { iter: number; controller: string; reason: string } | null = null;

  constructor(
    exp: Experiment,
    private readonly dir: RunDir,
    private readonly opts: RunOptions,
    custom: readonly Controller[] = [],
  ) {
    this.exp = exp;
    this.controllers = [...builtInControllers(exp), ...custom];
    this.window = new BrWindow(windowProbes(exp));
    this.state = {
      iter: 0,
      densityD: exp.discriminator.density,
      window: this.window.state(),
      lossSum: { d: 0, g: 0, n: 0 },
      flops: FlopsLedger.empty(),
      restarts: 0,
      eval: { final: null, best: null },
      wallSeconds: 0,
      metricsBytes: 0,
      densityG: exp.generator.density,
      lastLoss: null,
      evals: [],
      controllers: {},
    };
  }

  /** Runs (`resume`: continues) the experiment to its end or `until`. `accepted`, on a resume: called once the
   * checkpoint is loaded and the evaluation's inputs are found, before anything is trained. */
  async drive(resume: boolean, accepted?: () => void): Promise<Summary> {
    this.resuming = resume;
    const onAbort = () => this.worker?.client.request("interrupt", {}).catch(() => undefined);
    this.opts.signal?.addEventListener("abort", onAbort);
    try {
      // resumeRun has refused a target below the checkpoint's iteration before anything was touched.
      if (resume) {
        await this.restore();
        // Its Inception file may have moved since (eval.inception may change on a resume).
        if (this.state.finishedAt !== this.state.iter) await this.checkEvaluation();
        accepted?.();
      } else await this.begin();
      const stop = Math.min(this.opts.until ?? this.exp.iterations, this.exp.iterations);
      // Training to `stop`, then the end (a final evaluation, the last checkpoint): a worker that dies or hangs in
      // either is restarted from the last checkpoint, and what was due is done again from there.
      for (;;) {
        if (this.opts.signal?.aborted && this.state.iter < this.exp.iterations && !this.stopped) await this.abort();
        try {
          if (this.state.iter < stop && !this.stopped) await this.segment(stop);
          else if (this.state.iter >= this.exp.iterations || this.stopped) return await this.finish();
          else {
            await this.checkpoint();
            return this.summary(await this.stats());
          }
        } catch (e) {
          // A restart's own worker may fail as it loads the checkpoint: that is the next failure to recover from.
          for (let failure = e; ; ) {
            try {
              await this.recover(failure);
              break;
            } catch (again) {
              if (again === failure || !isWorkerFailure(again)) throw again;
              failure = again;
            }
          }
        }
      }
    } finally {
      this.opts.signal?.removeEventListener("abort", onAbort);
      await this.worker?.stop();
    }
  }

  /** After a failure of the worker: go on without an execution setting that failed (or that the worker keeps
   * dying with), or restart it from the last checkpoint, within supervision.maxRestarts; else throw `e` on. */
  private async recover(e: unknown): Promise<void> {
    const fallback = fallbackFor(e, this.exp.train);
    if (fallback && !this.opts.signal?.aborted) return this.without(fallback, e as Error);
    if (!isWorkerFailure(e) || this.opts.signal?.aborted) throw e;
    if (this.state.restarts >= this.exp.supervision.maxRestarts)
      throw new Error(`${(e as Error).message}\n(the worker failed ${this.state.restarts + 1 === 1 ? "once" : `${this.state.restarts + 1} times`}; supervision.maxRestarts is ${this.exp.supervision.maxRestarts})`);
    const from = this.dir.tryPointerIter();
    const times = from !== null && from === this.failures.from ? this.failures.times + 1 : 1;
    this.failures = { from, times };
    const suspect = times > 1 ? suspectOf(this.execution) : undefined;
    if (suspect) return this.without(suspect, e as Error, `the worker failed ${times} times since the checkpoint of iteration ${from} with ${suspect.without} on`);
    await this.restart(e as Error);
  }

  // ---- the loop -------------------------------------------------------------------------------------

  /** Trains up to the next event (or an interruption), then carries out what is due there. An event whose periodic
   * evaluation failed, after the training before it was kept (eventDueAt), is due first. */
  private async segment(stop: number): Promise<void> {
    const t0 = this.state.iter;
    if (this.state.eventDueAt === t0) return this.atEvent(t0, stop, []);
    const cadences = this.controllers.flatMap((c) => (c.every === undefined ? [] : [c.every]));
    const next = Math.min(nextEventIter(this.exp, t0, cadences), this.nextCheckpointIter(t0), stop);
    const onProgress = this.opts.onProgress && ((p: { iter: number }) => this.opts.onProgress!({ iter: p.iter }));
    const reply = await this.worker.call("train", { start: t0 + 1, iterations: next - t0, probeEvery: probeEvery(this.exp) }, { onProgress });
    const result = TrainResult.parse(reply.result);
    const probes = rowsOf(reply.tensors.get("probes"));
    const losses = rowsOf(reply.tensors.get("losses"));
    const diverged = firstNonFinite(losses, probes);
    if (diverged) throw new DivergedError(diverged, t0, this.dir.tryPointerIter());
    // Densities only change at events, so one cost per iteration holds for the whole segment.
    const records = segmentRecords(this.exp, this.state, this.window, losses, probes, this.ledger.perIteration());
    this.ledger.add(this.state.flops, result.end - t0, probes.length);
    this.state.iter = result.end;
    if (result.end === next) return this.atEvent(next, stop, records);
    this.emit(records);
  }

  /** What is due once training has reached iteration t: the periodic evaluation, the controllers' decisions, the
   * records (`records` holds those of the training before), a checkpoint where one is due. */
  private async atEvent(t: number, stop: number, records: MetricRecord[]): Promise<void> {
    this.state.eventDueAt = undefined; // taken up now; set again below if the evaluation fails
    const evaluated = t < this.exp.iterations && isEvalIter(this.exp, t);
    if (evaluated) {
      try {
        records.push(await this.evaluate(t));
      } catch (e) {
        // The worker answered (it is alive, and an evaluation leaves training as it was): keep the training
        // since the last checkpoint. The trial before training has tried the inputs; what fails here is of the
        // moment (memory, a full disk, a file moved).
        if (!(e instanceof WorkerRequestError) || this.opts.signal?.aborted) throw e;
        this.state.eventDueAt = t;
        return this.keepThenFail(e, records, `a checkpoint at iteration ${t} was written before this evaluation; --resume evaluates there first and continues`);
      }
    }
    try {
      await this.decideAndApply(t, evaluated, records);
    } catch (e) {
      if (!(e instanceof ControllerError)) throw e;
      // What was trained and decided before the failure is kept: the records, then a checkpoint.
      return this.keepThenFail(
        e,
        records,
        `a checkpoint at iteration ${t} was written, with the decisions taken before this one; this controller's and` +
          ` those after it at ${t} were not taken. --resume continues training from iteration ${t + 1}, with the module as it is then`,
      );
    }
    this.emit(records);
    if ((t % this.exp.checkpoint.every === 0 || t === stop) && t < this.exp.iterations) await this.checkpoint();
  }

  /** A failure at an event that keeps what came before it: the records, then a checkpoint, which `e` then names. */
  private async keepThenFail(e: Error, records: MetricRecord[], kept: string): Promise<never> {
    this.emit(records);
    await this.checkpoint();
    e.message += `\n(${kept})`;
    throw e;
  }

  /** Every controller due after iteration t, in order, each seeing what the ones before it did; their actions
   * carried out by the worker and their records appended to `records`. */
  private async decideAndApply(t: number, evaluated: boolean, records: MetricRecord[]): Promise<void> {
    for (const c of this.controllers) {
      const event = controllerEvent(c, t, this.exp.iterations, evaluated);
      if (!event) continue;
      const states = (this.state.controllers ??= {});
      const decision = await callController(c, this.view(t, event), states[c.name] ?? null);
      if (decision.state !== undefined) states[c.name] = decision.state;
      if (c.records !== "effects" && (decision.actions.length || decision.note))
        records.push({ iter: t, kind: "decision", controller: c.name, event, actions: decision.actions, note: decision.note ?? null });
      let changed = false;
      let setDensity = false;
      let stop: MetricRecord | null = null;
      for (const action of decision.actions) {
        if (action.op === "stop") {
          this.stopped ??= { iter: t, controller: c.name, reason: action.reason };
          this.state.stopped = this.stopped;
          stop ??= { iter: t, kind: "stop", controller: c.name, reason: action.reason };
          continue;
        }
        const applied = await this.apply(action, t);
        // A network with no active weight computes a constant: nothing after this would mean anything. Not
        // checkpointed: the run keeps its last checkpoint, from before this decision.
        const net = applied.stats[action.net];
        if (net.layers.length > 0 && net.layers.every((l) => l.active === 0))
          throw new InputError(
            `controller '${c.name}' at iteration ${t}: ${action.op === "setDensity" ? `density ${action.target}` : "its DST step"} left the ${action.net} ` +
              `with no active weight, so this run cannot continue past it (its last checkpoint is from before): start a new run with ` +
              `${c.name === "balance-rule" ? "a higher discriminator.controller.floor" : "a controller whose targets stay above what rounds to no weight"}`,
          );
        // One emptied layer may be harmless (a residual branch), but under spectral norm it divides by zero and the
        // run diverges a segment later: say where it began.
        const before = this.stats_?.[action.net].layers ?? [];
        const emptied = net.layers.filter((l) => l.active === 0 && before.find((b) => b.name === l.name)?.active !== 0);
        if (emptied.length)
          this.opts.onNotice?.(
            `iteration ${t}: controller '${c.name}' left ${emptied.length === 1 ? "layer" : "layers"} ${emptied.map((l) => l.name).join(", ")} of the ` +
              `${action.net} with no active weight (global criteria can empty a small layer): only its bias passes through` +
              (action.net === "discriminator" ? ", and where the layer is spectrally normalized, training diverges" : ""),
          );
        if (applied.record) records.push(applied.record);
        this.stats_ = applied.stats;
        changed = true;
        if (action.net === "generator") this.state.generatorChangedAt = t;
        if (action.op === "setDensity") {
          setDensity = true;
          if (action.net === "discriminator") this.state.densityD = action.target;
          else this.state.densityG = action.target;
        }
      }
      if (decision.band) records.push({ iter: t, kind: "controller", ...decision.band });
      if (changed) {
        // Global criteria move weights between layers, which changes the cost per sample even at a fixed count.
        this.ledger.setDensities(this.stats_!);
        if (setDensity) records.push({ iter: t, kind: "density", generator: this.stats_!.generator.density, discriminator: this.stats_!.discriminator.density });
      }
      // After the records of what this controller's actions did, wherever it listed the stop.
      if (stop) records.push(stop);
    }
  }

  /** A first state for each of the experiment's own controllers that has none yet: all of them when a run
   * begins, none on a resume (the checkpoint holds theirs) unless the run's state predates controllers. */
  private initControllerStates(): void {
    const states = (this.state.controllers ??= {});
    for (const c of this.controllers) if (!BUILT_IN_NAMES.has(c.name) && !(c.name in states)) states[c.name] = initialState(c, this.exp);
  }

  /** What a controller sees after iteration t: copies, frozen. */
  private view(t: number, event: ControllerView["event"]): ControllerView {
    const s = this.stats_!;
    const net = (n: "generator" | "discriminator", target: number) => ({
      density: s[n].density,
      target,
      layers: s[n].layers.map((l) => ({ name: l.name, density: l.density, active: l.active, total: l.total })),
    });
    const ratios = this.window.state().ratios;
    const flops = this.ledger.summary(this.state.flops);
    return frozenCopy({
      iteration: t,
      iterations: this.exp.iterations,
      event,
      experiment: this.exp,
      br: { value: this.window.count ? this.window.value : null, full: this.window.full, count: this.window.count, size: this.window.size, latest: ratios.at(-1) ?? null },
      loss: this.state.lastLoss ?? null,
      densities: {
        generator: net("generator", this.state.densityG ?? this.exp.generator.density),
        discriminator: net("discriminator", this.state.densityD),
      },
      evaluations: this.state.evals ?? [],
      flops: { total: flops.total, ratio: flops.ratio },
    });
  }

  /** One action, with both networks' stats after it; a DST step also returns its `dst` record. */
  private async apply(action: Exclude<ControllerAction, { op: "stop" }>, t: number): Promise<{ record: MetricRecord | null; stats: StatsResult }> {
    if (action.op === "setDensity") {
      const r = await this.worker.ask("setDensity", { net: action.net, target: action.target, growth: action.growth }, SetDensityResult);
      return { record: null, stats: r.stats };
    }
    const { net, policy, dropRate } = action;
    const r = await this.worker.ask("dstStep", { net, dropRate, prune: policy.prune, growth: policy.growth, alpha: policy.alpha }, DstStepResult);
    return { record: { iter: t, kind: "dst", net, dropRate, pruned: r.pruned, grown: r.grown, regrown: r.regrown, active: r.active, total: r.total }, stats: r.stats };
  }

  /** `tag` names the picture of a second evaluation at one iteration (the final one after a stop changed G). */
  private async evaluate(t: number, tag?: string): Promise<MetricRecord> {
    const r = await this.worker.ask("evaluate", evaluateArgs(this.exp, this.dir.path, t, tag), EvalResult);
    (this.state.evals ??= []).push({ iter: t, metrics: r.metrics });
    return recordEvaluation(this.state.eval, t, r.metrics, Boolean(r.picture), tag);
  }

  private nextCheckpointIter(t: number): number {
    const every = this.exp.checkpoint.every;
    return (Math.floor(t / every) + 1) * every;
  }

  // ---- lifecycle ------------------------------------------------------------------------------------

  /** A worker built for this run. Start-up (Python, torch, the data, a checkpoint to load) runs under its own
   * timeout; `watch()` then holds the worker to the hang timeout. */
  private async startWorker(): Promise<void> {
    const s = this.exp.supervision;
    const startup = { ms: s.startupTimeoutSeconds * 1000, setting: "supervision.startupTimeoutSeconds" };
    this.worker = await Worker.start({
      handshakeTimeoutMs: startup.ms,
      hangTimeoutMs: startup.ms,
      hangSetting: startup.setting,
      threads: s.threads,
      ...this.opts.worker,
      logFile: this.dir.logPath,
    });
    this.opts.onWorker?.(this.worker);
    if (this.exp.device === "auto") {
      const device = this.worker.hello.cudaAvailable ? "cuda" : "cpu";
      this.exp = { ...this.exp, device };
      this.dir.writeJson("config.json", this.exp);
      this.opts.onNotice?.(`device auto: ${device} (${this.worker.hello.cudaAvailable ? "torch sees a GPU" : "torch sees no GPU"}); config.json records it`);
    }
    const e = this.exp;
    const device = e.device === "cuda" ? "cuda" : "cpu";
    const data = resolveDataPaths(e.data);
    const built = await this.worker
      .ask("build", { seed: e.seed, device, model: e.model, data, train: trainArgs(e.train) }, BuildResult)
      .catch((err: unknown) => {
        if (!(err instanceof WorkerRequestError && err.code === "bad_value")) throw err;
        const noGpu = (err.detail as { device?: string } | undefined)?.device === "cuda";
        throw new BuildRefusedError(
          noGpu && this.resuming
            ? "this run was trained on CUDA, and torch sees no CUDA device here: a run continues on the device it was trained on (its random streams live there); resume it on a machine with a GPU"
            : err.message.replace(/^worker build: bad_value: /, ""),
        );
      });
    this.ledger = new FlopsLedger(e, built.layers);
    this.execution = built.execution;
  }

  private watch(): void {
    this.worker.hangTimeoutMs = this.opts.worker?.hangTimeoutMs ?? this.exp.supervision.hangTimeoutSeconds * 1000;
    this.worker.hangSetting = "supervision.hangTimeoutSeconds";
  }

  private async begin(): Promise<void> {
    this.initControllerStates();
    await this.startWorker();
    const masks = startingMasks(this.ledger.layerTable, this.exp);
    const empty = layersLeftEmpty(this.ledger.layerTable, masks);
    if (empty.length) {
      const l = empty[0]!;
      throw new InputError(
        `the starting density leaves ${empty.length} layer${empty.length === 1 ? "" : "s"} with no active weight, e.g. ${l.net} ${l.name} ` +
          `(${l.weights} weights at density ${l.density.toPrecision(3)}, as ${this.exp[l.net as "generator" | "discriminator"].init} allocates it): raise the density`,
      );
    }
    const stats = await this.worker.ask("setMasks", masks, StatsResult);
    this.watch();
    await this.checkEvaluation();
    this.stats_ = stats;
    this.ledger.setDensities(stats);
    this.emit([{ iter: 0, kind: "density", generator: stats.generator.density, discriminator: stats.discriminator.density }]);
    await this.checkpoint();
  }

  /** What only the worker can judge of the evaluations that need a network (the Inception file is the FID
   * network, the reference split has images enough; the domain classifier's train and test splits are there),
   * tried on two samples before training, so that it does not surface at the first evaluation, hours in. The
   * evaluation's noise is its own and no picture or record is written: training is unaffected. (The domain
   * classifier is trained here, then, the first time, rather than at the first evaluation.) */
  private async checkEvaluation(): Promise<void> {
    if (!this.exp.eval) return;
    const { picture: _picture, ...args } = evaluateArgs(this.exp, this.dir.path, 0);
    const metrics = args.metrics.filter((m) => m === "fid" || m === "is" || m === "classifier");
    if (metrics.length === 0) return;
    let trial: z.infer<typeof EvalResult>;
    try {
      trial = await this.worker.ask("evaluate", { ...args, metrics, samples: Math.min(args.samples, 2), batchSize: 2 }, EvalResult);
    } catch (e) {
      if (e instanceof WorkerRequestError && e.code === "bad_value")
        throw new InputError(`eval: ${e.message.replace(/^worker evaluate: bad_value: /, "")} (found by a trial evaluation before training)`);
      throw e;
    }
    // A distance is left out when features are not finite. A generator fresh from its initialization draws finite
    // samples, so before iteration 1 that is the feature network's doing: weights of the right shapes holding NaN.
    if (this.state.iter === 0 && metrics.includes("fid") && trial.metrics.fid === undefined)
      throw new InputError(
        `eval: a trial evaluation before training gave no FID: the Inception network's features are not finite, so ${args.inception} ` +
          "holds weights of the right shapes but not usable ones; it must be the FID weights (pt_inception-2015-12-05-6726825d.pth)",
      );
  }

  /** Loads the newest readable checkpoint into a fresh worker and cuts metrics.jsonl back to it. A newest file
   * that cannot be read (truncated by a crash or a full disk) is set aside, and the run falls back to the
   * newest earlier one kept, saying so. */
  private async restore(): Promise<void> {
    const pointer = this.dir.readPointer();
    if (!this.worker?.alive) await this.startWorker();
    const candidates = [pointer, ...pointer.earlier];
    let loaded: (typeof candidates)[number] | undefined;
    /** The newest ones that could not be read, passed over for an earlier one. */
    const passed: { worker: string; why: string; next: number }[] = [];
    for (const [i, c] of candidates.entries()) {
      // A readable file of another iteration or another run (copied over this one): its weights and the state beside it disagree.
      const replaced = (what: string) => {
        const next = candidates[i + 1];
        return new RunDirError(
          `${join(this.dir.path, c.worker)} ${what}: the file was replaced: restore the right file` +
            (next ? `, or remove it and resume: the run then falls back to its checkpoint of iteration ${next.iter}` : ", or start the run anew in another directory"),
        );
      };
      let at: number;
      try {
        at = (await this.worker.ask("load", { path: `${this.dir.path}/${c.worker}` }, LoadResult)).iter;
      } catch (e) {
        const detail = e instanceof WorkerRequestError ? (e.detail as { reason?: string; differences?: { key: string; checkpoint: unknown; build: unknown }[] } | undefined) : undefined;
        if (detail?.differences?.length)
          throw replaced(`was written by another run (${detail.differences.map((d) => `${d.key} is ${JSON.stringify(d.checkpoint)} there, ${JSON.stringify(d.build)} here`).join("; ")})`);
        const unreadable = detail?.reason === "unreadable";
        const next = candidates[i + 1];
        if (!unreadable) throw e;
        if (!next)
          throw new RunDirError(
            `${(e as Error).message.replace(/^worker load: bad_value: /, "")}\n` +
              `no checkpoint of ${this.dir.path} can be read (tried iteration${candidates.length > 1 ? "s" : ""} ${candidates.map((x) => x.iter).join(", ")}), ` +
              "so this run cannot be resumed: run the experiment again into a new directory (config.json here holds it as resolved; metrics.jsonl keeps what was trained)",
          );
        passed.push({ worker: c.worker, why: (e as Error).message.replace(/^worker load: bad_value: /, ""), next: next.iter });
        continue;
      }
      if (at !== c.iter) throw replaced(`holds iteration ${at}, but checkpoint.json records it as iteration ${c.iter}`);
      loaded = c;
      break;
    }
    // Set aside only now that an earlier one has loaded: a resume refused because none can be read changes nothing.
    for (const p of passed) {
      const aside = existsSync(join(this.dir.path, p.worker)) ? `; set aside as ${this.dir.setAside(p.worker)}` : "";
      this.opts.onNotice?.(`${p.why}${aside}. Falling back to the checkpoint of iteration ${p.next}.`);
    }
    // Checked and cut before the pointer moves to a fallback.
    // Restarts back to this checkpoint (a failed capture, then a failed compilation) each keep their record.
    const { dropped, kept } = this.dir.truncateMetrics(loaded!.state.metricsBytes, loaded!.iter, (line) => isRestartAt(line, loaded!.iter));
    if (dropped > 0)
      this.opts.onNotice?.(`${this.dir.metricsPath}: ${dropped} record${dropped === 1 ? "" : "s"} written after the checkpoint of iteration ${loaded!.iter} removed; those iterations are trained again`);
    if (loaded !== pointer) this.dir.point({ ...loaded!, config: pointer.config, earlier: pointer.earlier.filter((p) => p.iter < loaded!.iter) });
    this.watch();
    this.state = structuredClone(loaded!.state);
    // Those restarts came after the checkpoint: its count lacks them (the process that made them may have been
    // killed before its next checkpoint), and summary.json and the next restart's number must not.
    this.state.restarts += kept.length;
    // Checkpoints from before finishedAt existed: only finish() checkpointed at the last iteration, after its
    // evaluation. One written before the final evaluation says so (evaluatingAt): that evaluation is still due.
    if (this.state.finishedAt === undefined && this.state.evaluatingAt !== this.state.iter && this.state.iter >= this.exp.iterations)
      this.state.finishedAt = this.state.iter;
    this.stopped = this.state.stopped ?? null;
    this.window = BrWindow.restore(this.state.window);
    this.baseWall = this.state.wallSeconds;
    this.initControllerStates();
    const stats = await this.stats();
    this.stats_ = stats;
    this.ledger.setDensities(stats);
    this.opts.onProgress?.({
      iter: this.state.iter,
      densityG: stats.generator.density,
      densityD: stats.discriminator.density,
      ...(this.window.count ? { br: this.window.value } : {}),
    });
  }

  private async restart(cause: Error): Promise<void> {
    // Counted before the new worker loads: one that dies loading is the next failure, and the limit still holds.
    this.state.restarts += 1;
    await this.worker.stop();
    await this.restore();
    // The restored count (the checkpoint's, and the restart records kept after it; a fall-back to an earlier
    // checkpoint cut later ones), and this one.
    const attempt = ++this.state.restarts;
    const reason = cause.message.split("\n")[0] ?? cause.name;
    this.emit([{ iter: this.state.iter, kind: "restart", attempt, reason, fromCheckpoint: this.state.iter }]);
  }

  /** A step that cannot be captured as a CUDA graph, or a network that cannot be compiled, is no reason to lose a
   * run (a table's cell, at night): the same steps run without, slower. config.json records it, and the run
   * continues from its last checkpoint in a new worker (a failed capture may leave the old one's CUDA context
   * unusable). */
  private async without(fallback: Fallback, cause: Error, suspected?: string): Promise<void> {
    this.exp = { ...this.exp, train: { ...this.exp.train, [fallback.field]: false } };
    this.dir.writeJson("config.json", this.exp);
    const note = suspected
      ? `${suspected}: it is the suspect; to try it again, set train.${fallback.field} back to true in config.json and --resume`
      : fallback.note;
    this.opts.onNotice?.(
      `${cause.message.split("\n")[0]}\ncontinuing without ${fallback.without} from the last checkpoint (config.json now says train.${fallback.field}: false; ` +
        `the steps are the same, only slower; ${note})`,
    );
    await this.restart(cause);
  }

  private async abort(): Promise<never> {
    await this.checkpoint();
    throw new RunAborted(this.state.iter);
  }

  private async checkpoint(): Promise<void> {
    const t = this.state.iter;
    const file = this.dir.workerCheckpoint(t);
    await this.worker.ask("save", { path: file.absolute }, SaveResult);
    this.state.window = this.window.state();
    this.state.wallSeconds = this.wall();
    this.state.metricsBytes = this.dir.metricsBytes();
    this.dir.publish({ iter: t, worker: file.relative, state: structuredClone(this.state) }, this.exp.checkpoint.keep, this.exp);
  }

  private async finish(): Promise<Summary> {
    const stats = await this.stats();
    // Resumed from the checkpoint that recorded the end (summary.json was lost or damaged): only the summary is due.
    if (this.state.finishedAt !== this.state.iter) {
      const last: MetricRecord[] = [];
      // An evaluation at this iteration came before its decisions: if they changed G (a controller's setDensity or
      // DST step before a stop), the final one must see the G that the run ends with.
      const stale = this.state.generatorChangedAt === this.state.iter;
      const evaluated = this.state.eval.final?.iter === this.state.iter && !stale;
      if (this.exp.eval && !evaluated) {
        // The training is kept first: a final evaluation that fails all the same (a full disk, say; checkEvaluation
        // has tried the inputs) then costs a resume that only evaluates, not the iterations since the last periodic checkpoint.
        this.state.evaluatingAt = this.state.iter;
        await this.checkpoint();
        last.push(await this.evaluate(this.state.iter, stale ? "final" : undefined));
      }
      last.push({ iter: this.state.iter, kind: "density", generator: stats.generator.density, discriminator: stats.discriminator.density });
      // Stopped by a controller between log iterations: the losses since the last record are the run's last.
      if (this.state.lossSum.n > 0) last.unshift(closeLossInterval(this.state, this.state.iter));
      this.emit(last);
      this.state.finishedAt = this.state.iter;
      await this.checkpoint();
    }
    const summary = this.summary(stats);
    this.dir.writeJson("summary.json", summary);
    return summary;
  }

  // ---- bookkeeping ----------------------------------------------------------------------------------

  private stats() {
    return this.worker.ask("stats", {}, StatsResult);
  }

  private wall(): number {
    return this.baseWall + (Date.now() - this.started) / 1000;
  }

  private emit(records: MetricRecord[]): void {
    this.dir.append(records);
    for (const r of records) this.opts.onRecord?.(r);
  }

  private summary(stats: StatsResult): Summary {
    const ev = this.state.eval;
    return {
      name: this.exp.name,
      method: this.exp.method,
      iterations: this.state.iter,
      seed: this.exp.seed,
      device: this.exp.device,
      wallSeconds: this.wall(),
      worker: { python: this.worker.hello.python, torch: this.worker.hello.torch, threads: this.worker.hello.threads },
      final: { densityG: stats.generator.density, densityD: stats.discriminator.density, br: this.window.count ? this.window.value : null },
      flops: this.ledger.summary(this.state.flops),
      restarts: this.state.restarts,
      ...(this.stopped ? { stopped: this.stopped } : {}),
      eval: this.exp.eval ? { final: ev.final, best: ev.best, primary: ev.final ? configuredPrimary(this.exp) : null } : null,
    };
  }
}

/** A controller's first state, checked to be plain JSON (it goes into every checkpoint). */
function initialState(c: Controller, exp: Experiment): Json {
  let s: unknown;
  try {
    // A copy, frozen as the view is: the controller cannot change what the run trains.
    s = c.initialState(frozenCopy(exp));
  } catch (e) {
    throw new ControllerError(c.name, 0, `initialState threw: ${thrownText(e)}`);
  }
  const parsed = Json.safeParse(s ?? null);
  if (!parsed.success) throw new ControllerError(c.name, 0, `initialState must return plain JSON (it is saved in checkpoints): ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}
