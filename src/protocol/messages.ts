import { z } from "zod";
import { DensityGrowth, GrowthCriterion, NetName, PruneCriterion } from "../vocabulary/criteria.js";
import { BatchNormMode, DataArgs, Device, ModelArgs, TrainArgs } from "../vocabulary/networks.js";

/** The wire protocol's headers (docs/protocol.md). These zod schemas are the single source of truth: the
 * worker validates every request against the JSON Schema generated from them (schemas/request.schema.json). */

export const PROTOCOL_VERSION = 5 as const;

/** The most torch threads a worker is started with (DDST_THREADS, supervision.threads): more than any machine's
 * cores, and far fewer than would exhaust memory starting them. */
export const MAX_THREADS = 1024;

export const DType = z.enum(["float32", "float64", "int32", "int64", "uint8", "bool"]);
export const TensorDesc = z.strictObject({
  name: z.string().min(1),
  dtype: DType,
  shape: z.array(z.number().int().min(0)),
});

const Density = z.number().min(0).max(1);
const LayerDensities = z.record(z.string().min(1), Density);

const EmptyArgs = z.strictObject({});

/** Each operation's arguments, keyed by op name. */
export const OpArgs = {
  hello: EmptyArgs,
  ping: EmptyArgs,
  build: z.strictObject({
    seed: z.number().int().min(0).max(2 ** 31 - 1),
    device: Device,
    model: ModelArgs,
    data: DataArgs,
    train: TrainArgs,
  }),
  setMasks: z.strictObject({ generator: LayerDensities, discriminator: LayerDensities }),
  train: z.strictObject({
    start: z.number().int().min(1),
    iterations: z.number().int().min(1).max(10_000_000),
    probeEvery: z.number().int().min(0).describe("probe the BR at iterations that are multiples of it; 0: never"),
    profile: z.boolean().optional().describe("time the iterations under torch.profiler and answer with `profile` (benchmarks; slows the run)"),
  }),
  setDensity: z.strictObject({ net: NetName, target: Density, growth: DensityGrowth }),
  dstStep: z.strictObject({
    net: NetName,
    dropRate: z.number().min(0).max(1),
    prune: PruneCriterion,
    growth: GrowthCriterion,
    alpha: z.number().min(0).max(1).describe("hybrid growth: the share grown by gradient, the rest at random (ignored by the other criteria)"),
  }),
  stats: EmptyArgs,
  save: z.strictObject({ path: z.string().min(1).max(4096).describe("checkpoint file; written to a temporary name, then renamed") }),
  load: z.strictObject({ path: z.string().min(1).max(4096) }),
  interrupt: EmptyArgs,
  evaluate: z.strictObject({
    metrics: z.array(z.enum(["fid", "is", "classifier", "toy"])).min(1),
    samples: z.number().int().min(1).max(1_000_000).describe("generated samples (from the EMA generator)"),
    seed: z.number().int().min(0).describe("seed of the evaluation noise; training streams are not touched"),
    batchSize: z.number().int().min(1).max(65536).describe("samples per generator forward"),
    batchNorm: BatchNormMode,
    reference: z.enum(["train", "test"]).describe("split of the real data the generated samples are compared with"),
    inception: z.string().min(1).optional().describe("InceptionV3 weights file (fid, is)"),
    cacheDir: z.string().min(1).describe("where the domain classifier and reference statistics are cached"),
    picture: z.string().min(1).optional().describe("PNG to write: a sample grid, or a scatter plot for 2-D data"),
  }),
  sample: z.strictObject({
    n: z.number().int().min(1).max(1_000_000),
    seed: z.number().int().min(0),
    batchSize: z.number().int().min(1).max(65536).describe("samples per generator forward"),
    batchNorm: BatchNormMode,
  }),
  shutdown: EmptyArgs,
} as const;

export type OpName = keyof typeof OpArgs;
export const OP_NAMES = Object.keys(OpArgs) as OpName[];

function requestOf<K extends OpName>(op: K) {
  return z.strictObject({
    v: z.literal(PROTOCOL_VERSION),
    id: z.string().min(1).max(128),
    seq: z.number().int().min(1).describe("above every earlier request's to this worker: a repeated or older one is a replay, dropped"),
    op: z.literal(op),
    args: OpArgs[op],
    tensors: z.array(TensorDesc).default([]),
  });
}

export const Request = z.discriminatedUnion(
  "op",
  OP_NAMES.map((op) => requestOf(op)) as unknown as [ReturnType<typeof requestOf>, ...ReturnType<typeof requestOf>[]],
);

export const ErrorCode = z.enum([
  "bad_header",
  "invalid_request",
  "version_mismatch",
  "unknown_op",
  "bad_tensor",
  "too_large",
  "busy",
  "not_built",
  "bad_value",
  "internal",
]);

export const ReplyHeader = z.discriminatedUnion("kind", [
  z.object({
    v: z.literal(PROTOCOL_VERSION),
    id: z.string().nullable(),
    kind: z.literal("ok"),
    result: z.record(z.string(), z.unknown()),
    tensors: z.array(TensorDesc).default([]),
  }),
  z.object({
    v: z.literal(PROTOCOL_VERSION),
    id: z.string().nullable(),
    kind: z.literal("error"),
    error: z.object({ code: ErrorCode, message: z.string(), detail: z.unknown().optional() }),
  }),
  z.object({
    v: z.literal(PROTOCOL_VERSION),
    id: z.string().nullable(),
    kind: z.literal("progress"),
    progress: z.object({ op: z.string(), iter: z.number(), done: z.number(), total: z.number() }),
  }),
]);

/** Messages the worker dropped unanswered, by reason: no valid signature, or a replayed sequence number. */
const Dropped = z.strictObject({ unsigned: z.number().int(), replayed: z.number().int() });

// The `result` of each op's ok reply. Strict: orchestrator and worker come from one package, so a field one
// side sends and the other does not know is drift, which the Python tests catch against schemas/reply.schema.json.
export const HelloResult = z.strictObject({
  protocol: z.number().int(),
  worker: z.string(),
  python: z.string(),
  torch: z.string(),
  device: z.string(),
  cudaAvailable: z.boolean(),
  threads: z.number().int(),
  pid: z.number().int(),
  dropped: Dropped,
});

export const LayerInfo = z.strictObject({
  net: NetName,
  name: z.string(),
  shape: z.array(z.number().int()),
  maskable: z.boolean(),
  numel: z.number().int(),
  macs: z.number().describe("dense multiply-accumulates attributable to this parameter for one sample's forward pass"),
});
export const BuildResult = z.strictObject({
  device: z.string(),
  latentDim: z.number().int(),
  dataShape: z.array(z.number().int()),
  layers: z.array(LayerInfo),
  /** The train block's execution settings this worker applies (none on the CPU). */
  execution: z.strictObject({ cudaGraphs: z.boolean(), channelsLast: z.boolean(), compile: z.boolean() }),
});

export const NetStats = z.strictObject({
  active: z.number().int(),
  total: z.number().int(),
  density: z.number(),
  itop: z.number(),
  layers: z.array(z.strictObject({ name: z.string(), active: z.number().int(), total: z.number().int(), density: z.number() })),
});
export const StatsResult = z.strictObject({ generator: NetStats, discriminator: NetStats });
export const SetDensityResult = z.strictObject({
  net: NetName,
  before: z.number(),
  after: z.number(),
  pruned: z.number().int(),
  grown: z.number().int(),
  active: z.number().int(),
  total: z.number().int(),
  stats: StatsResult.describe("both networks' stats after the change (global criteria move weights between layers)"),
});
export const DstStepResult = z.strictObject({
  net: NetName,
  pruned: z.number().int(),
  grown: z.number().int(),
  regrown: z.number().int().describe("grown weights that this step had just pruned: they stay as they were"),
  active: z.number().int(),
  total: z.number().int(),
  stats: StatsResult.describe("both networks' stats after the step"),
});
export const TrainResult = z.strictObject({
  end: z.number().int().describe("the last iteration completed"),
  iterations: z.number().int().describe("iterations completed by this command"),
  interrupted: z.boolean().default(false).describe("stopped early by `interrupt`"),
  profile: z
    .strictObject({
      wallS: z.number().describe("wall seconds of the profiled iterations (device synchronized at both ends)"),
      cpuOps: z.number().int().describe("aten operators dispatched"),
      launches: z.number().int().nullable().describe("host calls that start GPU work: kernel, graph (one per replay), memcpy and memset launches (null on the CPU)"),
      kernels: z.number().int().nullable().describe("kernels the GPU ran, those of replayed graphs included (null on the CPU)"),
      kernelS: z.number().nullable().describe("summed CUDA kernel time (null on the CPU)"),
      busyS: z.number().nullable().describe("time at least one kernel ran: the union of kernel intervals (null on the CPU)"),
      syncs: z.number().int().nullable().describe("host calls that wait for the GPU (stream, device and event synchronizes, synchronous memcpy; null on the CPU)"),
      topOps: z.array(z.tuple([z.string(), z.number().int()])).describe("the aten operators dispatched most often: [name, calls]"),
      topKernels: z
        .array(z.tuple([z.string(), z.number().int(), z.number()]))
        .nullable()
        .describe("the kernels with the most GPU time: [name, count, seconds] (null on the CPU)"),
    })
    .optional()
    .describe("only when the request asked for it"),
});
export const EvalResult = z.strictObject({
  metrics: z.record(z.string(), z.number()).describe("every number the requested metrics produced"),
  picture: z.string().nullable(),
  seconds: z.number(),
});
export const SaveResult = z.strictObject({ path: z.string(), bytes: z.number().int(), iter: z.number().int() });
export const LoadResult = z.strictObject({ iter: z.number().int() });
export const PingResult = z.strictObject({ busy: z.boolean(), iter: z.number().int().nullable(), dropped: Dropped });

export const EmptyResult = z.strictObject({});
export const SampleResult = z.strictObject({ n: z.number().int().describe("samples in the `samples` tensor") });

/** Each op's result, keyed like OpArgs. */
export const OpResults = {
  hello: HelloResult,
  ping: PingResult,
  build: BuildResult,
  setMasks: StatsResult,
  train: TrainResult,
  setDensity: SetDensityResult,
  dstStep: DstStepResult,
  stats: StatsResult,
  save: SaveResult,
  load: LoadResult,
  interrupt: EmptyResult,
  evaluate: EvalResult,
  sample: SampleResult,
  shutdown: EmptyResult,
} as const satisfies Record<OpName, z.ZodType>;

export type Request = z.input<typeof Request>;
export type ReplyHeader = z.infer<typeof ReplyHeader>;
export type TensorDesc = z.infer<typeof TensorDesc>;
export type DType = z.infer<typeof DType>;
export type ErrorCode = z.infer<typeof ErrorCode>;
export type LayerInfo = z.infer<typeof LayerInfo>;
export type HelloResult = z.infer<typeof HelloResult>;
export type BuildResult = z.infer<typeof BuildResult>;
export type NetStats = z.infer<typeof NetStats>;
export type StatsResult = z.infer<typeof StatsResult>;
