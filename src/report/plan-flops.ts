import { genBatchSize } from "../vocabulary/networks.js";
import type { Experiment } from "../config/experiment.js";
import type { DataSpec } from "../vocabulary/networks.js";
import type { LayerInfo } from "../protocol/messages.js";
import type { NetName } from "../vocabulary/criteria.js";
import { startingMasks } from "../sparsity/erk.js";
import { FlopsAccount, perSampleMacs, type FlopsConvention } from "../sparsity/flops.js";
import { probeCount } from "../run/events.js";

/** `ddst flops`: a plan's training cost without training, for methods whose per-layer densities are fixed
 * ahead (dense, static, SDST with per-layer criteria). */

export type PlanFlops =
  | { method: string; known: true; iterations: number; paper: Cost; executed: Cost }
  | { method: string; known: false; reason: string };

export interface Cost {
  generator: number;
  discriminator: number;
  total: number;
  dense: number;
  ratio: number;
}

/** Why a plan's cost can only be known from a run, or null when it is known ahead. */
export function whyNeedsRun(exp: Experiment): string | null {
  if (exp.controllers?.length)
    return `its own controllers (${exp.controllers.map((c) => c.name).join(", ")}) may change densities during training, so its FLOPs need a run`;
  if (exp.discriminator.controller)
    return `${exp.method} adjusts D's density from the balance ratio during training, so its FLOPs ratio needs a run (ddst run reports it in summary.json)`;
  const dst = exp.generator.dst;
  if (dst && (dst.prune.startsWith("global") || dst.growth.startsWith("global")))
    return "the generator's DST uses a global criterion, which moves weights between layers of different cost during training, so its FLOPs need a run";
  return null;
}

/** Per-layer densities exactly as the worker sets them (round(density * numel) active weights per layer). */
function plannedDensities(layers: readonly LayerInfo[], exp: Experiment): Record<NetName, Record<string, number>> {
  const start = startingMasks(layers, exp);
  const exact = (net: NetName) =>
    Object.fromEntries(layers.filter((l) => l.net === net && l.maskable).map((l) => [l.name, Math.round(start[net][l.name]! * l.numel) / l.numel]));
  return { generator: exact("generator"), discriminator: exact("discriminator") };
}

export function planFlops(exp: Experiment, layers: readonly LayerInfo[]): PlanFlops {
  const reason = whyNeedsRun(exp);
  if (reason) return { method: exp.method, known: false, reason };
  const plan = { disBatch: exp.train.batchSize, genBatch: genBatchSize(exp.train), nCritic: exp.train.nCritic };
  const T = exp.iterations;
  const probes = probeCount(exp, T);
  const planned = plannedDensities(layers, exp);
  const sparse = {
    generator: perSampleMacs(layers, "generator", planned.generator),
    discriminator: perSampleMacs(layers, "discriminator", planned.discriminator),
  };
  const dense = { generator: perSampleMacs(layers, "generator"), discriminator: perSampleMacs(layers, "discriminator") };
  const cost = (convention: FlopsConvention): Cost => {
    const s = new FlopsAccount(convention, plan);
    s.add(T, sparse, probes);
    const d = new FlopsAccount(convention, plan);
    d.add(T, dense, probes);
    const t = s.totals();
    return { ...t, dense: d.totals().total, ratio: t.total / d.totals().total };
  };
  return { method: exp.method, known: true, iterations: T, paper: cost("paper"), executed: cost("executed") };
}

/** The shape-only stand-in for data read from disk: building the networks needs shapes, not pixels. */
export function shapeOnlyData(data: DataSpec): DataSpec {
  switch (data.name) {
    case "mnist":
    case "fashion-mnist":
      return { name: "synthetic", shape: data.pad ? [1, 32, 32] : [1, 28, 28] };
    case "cifar10":
      return { name: "synthetic", shape: [3, 32, 32] };
    case "stl10":
      return { name: "synthetic", shape: [3, data.size, data.size] };
    case "folder":
      return { name: "synthetic", shape: [data.channels, data.size[0], data.size[1]] };
    default:
      return data;
  }
}
