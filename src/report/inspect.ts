import { DataSpec, type ModelSpec } from "../vocabulary/networks.js";
import type { LayerInfo } from "../protocol/messages.js";
import type { NetName } from "../vocabulary/criteria.js";
import { initialDensities } from "../sparsity/erk.js";

/** `ddst inspect`: parameter counts, per-layer densities under an allocation, and per-sample MACs dense and
 * at those densities. Pure: it works on the layer table the worker's `build` returns. */

export interface InspectLayer {
  name: string;
  shape: number[];
  maskable: boolean;
  density: number;
  macs: number;
  macsSparse: number;
}

export interface InspectNet {
  totalParams: number;
  maskableParams: number;
  activeParams: number;
  /** Of the maskable weights only: what the density is a fraction of. */
  activeMaskable: number;
  macsDense: number;
  macsSparse: number;
  layers: InspectLayer[];
}

export function inspectNet(layers: readonly LayerInfo[], net: NetName, density: number, init: "erk" | "uniform"): InspectNet {
  const rows = layers.filter((l) => l.net === net);
  const maskable = rows.filter((l) => l.maskable);
  const dens = initialDensities(init, maskable, density);
  const out = rows.map((l) => {
    const d = l.maskable ? dens[l.name]! : 1;
    return { name: l.name, shape: l.shape, maskable: l.maskable, density: d, macs: l.macs, macsSparse: l.maskable ? l.macs * d : l.macs };
  });
  const sum = (f: (x: (typeof out)[number]) => number, xs = out) => xs.reduce((a, x) => a + f(x), 0);
  const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return {
    totalParams: sum((x) => numel(x.shape)),
    maskableParams: sum((x) => numel(x.shape), out.filter((x) => x.maskable)),
    // Active counts as the worker sets them: round(density * numel) per layer.
    activeParams: sum((x) => (x.maskable ? Math.round(x.density * numel(x.shape)) : numel(x.shape))),
    activeMaskable: sum((x) => Math.round(x.density * numel(x.shape)), out.filter((x) => x.maskable)),
    macsDense: sum((x) => x.macs),
    macsSparse: sum((x) => x.macsSparse),
    layers: out,
  };
}

/** The data a model is built against when only its shape matters (inspection, benchmarks). */
export function dataForInspection(model: ModelSpec): DataSpec {
  switch (model.name) {
    case "mlp2d":
      return DataSpec.parse({ name: "ring8" });
    case "sngan32":
    case "dcgan32":
      return { name: "synthetic", shape: [3, 32, 32] };
    case "sngan48":
      return { name: "synthetic", shape: [3, 48, 48] };
    case "dcgan28":
      return { name: "synthetic", shape: [1, 28, 28] };
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export function formatInspect(name: string, nets: Record<NetName, InspectNet>, densities: Record<NetName, number>, init: string): string {
  const lines: string[] = [];
  for (const net of ["generator", "discriminator"] as const) {
    const r = nets[net];
    lines.push(
      `${name} ${net}: ${fmt(r.totalParams)} parameters, ${fmt(r.maskableParams)} maskable; ${init} at density ${densities[net]}: ${fmt(r.activeMaskable)} of them active (${((100 * r.activeMaskable) / r.maskableParams).toFixed(2)}%), ${fmt(r.activeParams)} parameters in all`,
      `  per-sample forward MACs: dense ${fmt(r.macsDense)}, at these densities ${fmt(r.macsSparse)} (${((100 * r.macsSparse) / r.macsDense).toFixed(2)}%)`,
      `  ${"layer".padEnd(44)} ${"shape".padEnd(18)} ${"density".padStart(8)} ${"MACs dense".padStart(15)} ${"MACs sparse".padStart(15)}`,
    );
    for (const l of r.layers) {
      if (!l.maskable && l.macs === 0) continue;
      lines.push(
        `  ${(l.name + (l.maskable ? "" : " (dense)")).padEnd(44)} ${`[${l.shape.join(",")}]`.padEnd(18)} ${l.density.toFixed(4).padStart(8)} ${fmt(l.macs).padStart(15)} ${fmt(l.macsSparse).padStart(15)}`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}
