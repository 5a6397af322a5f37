import { z } from "zod";

/** What the worker builds: the networks, the data and the optimizer settings. Shared by the experiment file
 * and the `build` request, so the worker validates exactly what the user wrote. */

export const ModelSpec = z.strictObject({
  name: z.enum(["mlp2d"]).describe("network pair from the worker's registry"),
  hidden: z.number().int().min(1).max(65536).default(128).describe("hidden width (mlp2d)"),
  depth: z.number().int().min(1).max(16).default(2).describe("hidden layers (mlp2d)"),
  latentDim: z.number().int().min(1).max(4096).optional().describe("dimension of the noise z (default per model: mlp2d 2)"),
});

export const DataSpec = z.strictObject({
  name: z.enum(["ring8", "grid25"]).describe("dataset; toy mixtures are generated from the seed"),
  std: z.number().positive().max(10).optional().describe("std of each mode (default 0.02 ring8, 0.05 grid25)"),
  radius: z.number().positive().max(100).default(2).describe("radius of the ring (ring8)"),
});

export const TrainSpec = z.strictObject({
  batchSize: z.number().int().min(1).max(65536).default(256),
  nCritic: z.number().int().min(1).max(100).default(1).describe("D steps per G step"),
  loss: z.enum(["hinge", "ns", "wasserstein"]).default("hinge"),
  lrG: z.number().positive().max(1).default(2e-4),
  lrD: z.number().positive().max(1).default(2e-4),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.0, 0.9]),
});

export const Device = z.enum(["cpu", "cuda"]);

export type ModelSpec = z.infer<typeof ModelSpec>;
export type DataSpec = z.infer<typeof DataSpec>;
export type TrainSpec = z.infer<typeof TrainSpec>;
export type Device = z.infer<typeof Device>;
