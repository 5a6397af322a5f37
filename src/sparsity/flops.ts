import type { LayerInfo } from "../protocol/messages.js";
import type { NetName } from "../vocabulary/criteria.js";

/** Training-FLOPs accounting (docs/method.md, "Training FLOPs"). Per-sample forward MACs come from the
 * worker's layer table (measured on a real forward pass); the weight term of a maskable layer is scaled by
 * its density in force. Like the paper, we call these multiply-accumulate counts FLOPs. */

/** Per-sample forward MACs of one network at per-layer densities (maskable layers absent from the map are dense). */
export function perSampleMacs(layers: readonly LayerInfo[], net: NetName, densities: Readonly<Record<string, number>> = {}): number {
  let total = 0;
  for (const l of layers) {
    if (l.net !== net) continue;
    total += l.maskable ? l.macs * (densities[l.name] ?? 1) : l.macs;
  }
  return total;
}

export interface BatchPlan {
  /** D's batch (real and fake). */
  disBatch: number;
  /** G's batch. */
  genBatch: number;
  nCritic: number;
}

export type FlopsConvention = "paper" | "executed";

/** Effective samples per training iteration that each network's per-sample forward cost is multiplied by.
 *
 * "paper" is the reference accounting that reproduces the paper's Table 3: G costs dis_batch * n_critic
 * (forward-only fakes for D's steps) + 3 * gen_batch (forward and backward, ~3x, for its own step); D costs
 * (3 * dis_batch * n_critic + gen_batch) per D step and D steps are counted n_critic times per iteration, so
 * n_critic enters D's figure twice.
 *
 * "executed" counts what the training loop runs: each D step forwards G on dis_batch fakes, and forwards and
 * backwards D on dis_batch real + dis_batch fake samples (3x each); the G step forwards and backwards G on
 * gen_batch samples (3x) and forwards D on the same fakes and backwards through it for the input gradient only,
 * its weights frozen (2x). Growth-gradient passes (once per DST step or density increase) are not counted. BR probes
 * (after the G step, one extra G forward and one D forward of gen_batch, G_post(z), plus one D forward of the
 * real batch; the probe's G_pre(z) is the G step's own forward) are added by the caller through
 * `probeSamples`. */
export function samplesPerIteration(convention: FlopsConvention, b: BatchPlan): Record<NetName, number> {
  if (convention === "paper") {
    return {
      generator: b.disBatch * b.nCritic + 3 * b.genBatch,
      discriminator: b.nCritic * (3 * b.disBatch * b.nCritic + b.genBatch),
    };
  }
  return {
    generator: b.nCritic * b.disBatch + 3 * b.genBatch,
    discriminator: b.nCritic * 3 * (2 * b.disBatch) + 2 * b.genBatch,
  };
}

/** Extra forward samples of one BR probe (executed convention only). */
export function probeSamples(b: BatchPlan): Record<NetName, number> {
  return { generator: b.genBatch, discriminator: b.genBatch + b.disBatch };
}

export interface FlopsTotals {
  generator: number;
  discriminator: number;
  total: number;
}

/** Accumulates training FLOPs segment by segment as densities change during a run. */
export class FlopsAccount {
  generator = 0;
  discriminator = 0;

  constructor(
    readonly convention: FlopsConvention,
    readonly batch: BatchPlan,
  ) {}

  /** `iterations` iterations at per-sample MACs `macs`, with `probes` BR probes among them. */
  add(iterations: number, macs: Record<NetName, number>, probes = 0): void {
    const s = samplesPerIteration(this.convention, this.batch);
    const p = this.convention === "executed" ? probeSamples(this.batch) : { generator: 0, discriminator: 0 };
    this.generator += macs.generator * (s.generator * iterations + p.generator * probes);
    this.discriminator += macs.discriminator * (s.discriminator * iterations + p.discriminator * probes);
  }

  totals(): FlopsTotals {
    return { generator: this.generator, discriminator: this.discriminator, total: this.generator + this.discriminator };
  }
}
