import { z } from "zod";
import { DensityGrowth, GrowthCriterion, PruneCriterion } from "../vocabulary/criteria.js";

/** How each network's sparsity evolves. Defaults are the reference's (docs/method.md). */

const Fraction = z.number().min(0).max(1);

export const DeathRateSchedule = z.enum(["cosine", "linear", "constant"]);

/** Prune-and-regrow at a fixed active count (the generator's DST): `every` counts iterations (one G step
 * each), and the drop-rate schedule runs over the experiment's iterations. */
export const DstPolicy = z.strictObject({
  every: z.number().int().min(1).default(500).describe("iterations between DST steps (never at the last iteration)"),
  deathRate: z.number().gt(0).max(1).default(0.5),
  schedule: DeathRateSchedule.default("cosine"),
  floor: Fraction.default(0.005).describe("the schedule's final drop rate"),
  prune: PruneCriterion.default("global_magnitude"),
  growth: GrowthCriterion.default("global_gradient"),
  alpha: z.number().min(0).max(1).default(0.5).describe("hybrid growth: share grown by gradient"),
});

/** D's own prune-and-regrow at fixed count, run by the strict rule when BR reaches B+ at the cap. It runs on
 * controller decisions (no `every` of its own); its drop-rate schedule counts D steps, as the reference does:
 * rate at t * n_critic over a horizon of iterations * n_critic. */
export const CapDstPolicy = DstPolicy.omit({ every: true });

/** The balance-ratio controller of D's density. `every`, `window` and `probeEvery` all count iterations:
 * the reference decides every `every` iterations whatever n_critic is, and probes BR on G steps. */
export const ControllerPolicy = z.strictObject({
  rule: z.enum(["relaxed", "strict"]).default("relaxed"),
  lower: z.number().default(0.45).describe("B-: at or below it D is too strong and loses density"),
  upper: z.number().default(0.55).describe("B+: at or above it D is too weak and gains density"),
  step: z.number().gt(0).max(1).default(0.05).describe("density change per decision"),
  floor: z.number().gt(0).max(1).default(0.05).describe("the lowest density D is decreased to (a density of 0 would leave D no weight)"),
  cap: z.number().gt(0).max(1).default(1).describe("d_max; the strict rule runs D's own DST step at the cap"),
  every: z.number().int().min(1).default(1000).describe("iterations between decisions, whatever n_critic (never at the last iteration)"),
  window: z.number().int().min(1).default(1000).describe("BR window in iterations"),
  probeEvery: z.number().int().min(1).default(10),
  growth: DensityGrowth.default("global_gradient"),
  capDst: CapDstPolicy.nullable().default(null).describe("strict rule: D's DST step at the cap"),
});

export const Init = z.enum(["erk", "uniform"]);

export const GeneratorPolicy = z.strictObject({
  density: z.number().gt(0).max(1),
  init: Init.default("erk"),
  dst: DstPolicy.nullable().default(null),
});

export const DiscriminatorPolicy = z.strictObject({
  density: z.number().gt(0).max(1),
  init: Init.default("erk"),
  controller: ControllerPolicy.nullable().default(null),
});

export type DstPolicy = z.infer<typeof DstPolicy>;
export type CapDstPolicy = z.infer<typeof CapDstPolicy>;
export type ControllerPolicy = z.infer<typeof ControllerPolicy>;
export type GeneratorPolicy = z.infer<typeof GeneratorPolicy>;
export type DiscriminatorPolicy = z.infer<typeof DiscriminatorPolicy>;
export type DeathRateSchedule = z.infer<typeof DeathRateSchedule>;
