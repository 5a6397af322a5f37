import { genBatchSize } from "../vocabulary/networks.js";
import type { Experiment } from "../config/experiment.js";
import type { LayerInfo, StatsResult } from "../protocol/messages.js";
import { FlopsAccount, perSampleMacs, type BatchPlan, type FlopsConvention } from "../sparsity/flops.js";
import type { NetName } from "../vocabulary/criteria.js";
import { probeCount } from "./events.js";
import type { Summary } from "./records.js";
import type { RunState } from "./run-state.js";

/** A run's training FLOPs: per-sample costs at the per-layer densities in force (re-read after every mask
 * change), times the samples of each trained segment, in both conventions (docs/method.md, "Training FLOPs"). */
export class FlopsLedger {
  private macs = { generator: 0, discriminator: 0 };
  private readonly plan: BatchPlan;

  constructor(
    private readonly exp: Experiment,
    /** The worker's layer table (per-parameter dense MACs), from `build`. */
    readonly layerTable: readonly LayerInfo[],
  ) {
    this.plan = { disBatch: exp.train.batchSize, genBatch: genBatchSize(exp.train), nCritic: exp.train.nCritic };
  }

  static empty(): RunState["flops"] {
    return { paper: { generator: 0, discriminator: 0 }, executed: { generator: 0, discriminator: 0 } };
  }

  /** Global criteria move weights between layers, which changes the cost per sample even at a fixed count. */
  setDensities(stats: StatsResult): void {
    const densities = (net: NetName) => Object.fromEntries(stats[net].layers.map((l) => [l.name, l.density]));
    this.macs = {
      generator: perSampleMacs(this.layerTable, "generator", densities("generator")),
      discriminator: perSampleMacs(this.layerTable, "discriminator", densities("discriminator")),
    };
  }

  /** Adds `iterations` trained iterations with `probes` BR probes to `flops`. */
  add(flops: RunState["flops"], iterations: number, probes: number): void {
    for (const convention of ["paper", "executed"] as const) {
      const acc = new FlopsAccount(convention, this.plan);
      acc.add(iterations, this.macs, probes);
      flops[convention].generator += acc.generator;
      flops[convention].discriminator += acc.discriminator;
    }
  }

  /** One iteration's training FLOPs at the densities in force, paper convention (which counts no probes). A rate,
   * not a running sum, so a run interrupted anywhere records the same value as an uninterrupted one. */
  perIteration(): number {
    const acc = new FlopsAccount("paper", this.plan);
    acc.add(1, this.macs);
    return acc.totals().total;
  }

  private dense(convention: FlopsConvention): number {
    const acc = new FlopsAccount(convention, this.plan);
    const T = this.exp.iterations;
    acc.add(T, { generator: perSampleMacs(this.layerTable, "generator"), discriminator: perSampleMacs(this.layerTable, "discriminator") }, probeCount(this.exp, T));
    return acc.totals().total;
  }

  summary(flops: RunState["flops"]): Summary["flops"] {
    const total = (x: { generator: number; discriminator: number }) => x.generator + x.discriminator;
    return {
      convention: "paper",
      ...flops.paper,
      total: total(flops.paper),
      ratio: total(flops.paper) / this.dense("paper"),
      planned: this.exp.iterations,
      executed: { ...flops.executed, total: total(flops.executed), ratio: total(flops.executed) / this.dense("executed") },
    };
  }
}
