import { z } from "zod";
import type { GrowthCriterion, PruneCriterion } from "../vocabulary/criteria.js";
import { ControllerPolicy, DstPolicy, type DiscriminatorPolicy, type GeneratorPolicy } from "./policies.js";

/** Every row of the paper's tables as a named preset (docs/method.md, "Method rows"). */
export const MethodName = z.enum([
  "dense",
  "static-balance",
  "static-strong",
  "sdst-balance-set",
  "sdst-balance-rigl",
  "sdst-strong-set",
  "sdst-strong-rigl",
  "dda",
  "adapt-relax",
  "adapt-strict",
  "ddst-relax",
  "ddst-strict",
]);
export type MethodName = z.infer<typeof MethodName>;

export interface Policies {
  generator: GeneratorPolicy;
  discriminator: DiscriminatorPolicy;
}

const gDst = (growth: GrowthCriterion, prune: PruneCriterion = "global_magnitude") => DstPolicy.parse({ growth, prune });

/** Expands a method and the generator density d_G into explicit policies for both networks. Cadences count
 * iterations: G's DST every 500; D's decisions every 1000 (adapt-relax) or 2000 (adapt-strict, dda). SDST-RigL
 * is the reference's SDST script (global magnitude prune, global gradient growth); SDST-SET, which the
 * reference has no script for, is the SET paper's rule (per-layer magnitude prune, random growth). */
export function presetPolicies(method: MethodName, dG: number): Policies {
  const g = (dst: DstPolicy | null): GeneratorPolicy => ({ density: dG, init: "erk", dst });
  const d = (density: number, extra: Partial<DiscriminatorPolicy> = {}): DiscriminatorPolicy => ({
    density,
    init: "erk",
    controller: null,
    ...extra,
  });
  switch (method) {
    case "dense":
      return { generator: { density: 1, init: "erk", dst: null }, discriminator: d(1) };
    case "static-balance":
      return { generator: g(null), discriminator: d(dG) };
    case "static-strong":
      return { generator: g(null), discriminator: d(1) };
    case "sdst-balance-set":
      return { generator: g(gDst("random", "magnitude")), discriminator: d(dG) };
    case "sdst-balance-rigl":
      return { generator: g(gDst("global_gradient")), discriminator: d(dG) };
    case "sdst-strong-set":
      return { generator: g(gDst("random", "magnitude")), discriminator: d(1) };
    case "sdst-strong-rigl":
      return { generator: g(gDst("global_gradient")), discriminator: d(1) };
    case "dda":
      return {
        generator: g(null),
        discriminator: d(dG, { controller: ControllerPolicy.parse({ lower: 0.5, upper: 0.65, every: 2000 }) }),
      };
    case "adapt-relax":
    case "ddst-relax":
      return { generator: g(gDst("global_gradient")), discriminator: d(dG, { controller: ControllerPolicy.parse({ every: 1000 }) }) };
    case "adapt-strict":
    case "ddst-strict":
      return {
        generator: g(gDst("global_gradient")),
        discriminator: d(Math.min(dG, 0.5), {
          controller: ControllerPolicy.parse({ rule: "strict", cap: 0.5, every: 2000, capDst: {} }),
        }),
      };
  }
}
