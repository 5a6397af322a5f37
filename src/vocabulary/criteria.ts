import { z } from "zod";

/** The words both the experiment files and the wire protocol speak: which network, and how weights are pruned and
 * grown. A leaf module: config/ and protocol/ import it, it imports neither. */

export const NetName = z.enum(["generator", "discriminator"]);
export const PruneCriterion = z.enum(["magnitude", "global_magnitude", "set"]);
export const GrowthCriterion = z.enum(["gradient", "global_gradient", "random", "global_random", "hybrid", "global_hybrid"]);
/** How D gains density under the BR controller. */
export const DensityGrowth = z.enum(["global_gradient", "global_random"]);

export type NetName = z.infer<typeof NetName>;
export type PruneCriterion = z.infer<typeof PruneCriterion>;
export type GrowthCriterion = z.infer<typeof GrowthCriterion>;
export type DensityGrowth = z.infer<typeof DensityGrowth>;
