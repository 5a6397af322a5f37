import { z } from "zod";
import { DirName } from "./names.js";
import { BatchNormMode, DataSpec, DeviceChoice, ModelSpec, StoredDataSpec, TrainSpec } from "../vocabulary/networks.js";
import { isJsonObject, withoutDefaults } from "../vocabulary/schema-shapes.js";
import { CapDstPolicy, ControllerPolicy, DiscriminatorPolicy, DstPolicy, GeneratorPolicy, Init } from "./policies.js";
import { policyConflicts } from "./method-policies.js";
import { MethodName, presetPolicies } from "./presets.js";
import { InputError } from "../input-error.js";
import { MAX_THREADS } from "../protocol/messages.js";
import { BUILT_IN_NAMES } from "../controller/built-in.js";
import { isController, type Controller } from "../controller/controller.js";

/** When the run is written to disk so that it can be resumed. */
export const Checkpointing = z.strictObject({
  every: z.number().int().min(1).default(1000).describe("iterations between checkpoints (one is also written at the start and the end)"),
  keep: z.number().int().min(1).default(2).describe("how many of the newest checkpoints to keep"),
});

/** What samples are judged by, and when (FID / IS for images, a domain classifier for MNIST-like
 * data, mode statistics for the toy mixtures). Evaluation uses the EMA generator and its own noise stream. */
export const EvalSpec = z.strictObject({
  every: z.number().int().min(0).default(0).describe("iterations between evaluations (0: only at the end)"),
  samples: z.number().int().min(1).max(1_000_000).default(10_000),
  metrics: z
    .array(z.enum(["fid", "is", "classifier", "toy"]))
    .min(1)
    .optional()
    .describe("default by data: toy mixtures -> toy; mnist, fashion-mnist -> classifier; other images -> fid, is"),
  batchSize: z
    .number()
    .int()
    .min(1)
    .max(65536)
    .default(100)
    .describe("generated samples per forward of the generator, and so the batch whose statistics BatchNorm normalizes by under batchNorm \"batch\" (the reference code's 100)"),
  batchNorm: BatchNormMode.default("batch"),
  reference: z.enum(["train", "test"]).default("train").describe("real split the samples are compared with"),
  inception: z.string().min(1).optional().describe("InceptionV3 weights (pt_inception-2015-12-05) for fid and is; ${VAR} allowed"),
  seed: z.number().int().min(0).default(12345),
});

/** An evaluation's samples as config.json stores it. A run from before `batchNorm` existed sampled by the running
 * averages, and its config.json, which holds every other field, lacks it: read so, it goes on as it began. */
const StoredEvalSpec = EvalSpec.extend({ batchNorm: BatchNormMode.default("running") });

/** Node's timers hold at most 2^31 - 1 ms (24.8 days); a longer one fires at once. */
export const MAX_TIMER_SECONDS = 2_000_000;

/** How the orchestrator watches the worker. */
export const Supervision = z.strictObject({
  maxRestarts: z.number().int().min(0).default(2).describe("restarts from the last checkpoint after the worker dies or hangs"),
  hangTimeoutSeconds: z.number().positive().max(MAX_TIMER_SECONDS).default(600).describe("a busy worker silent this long is declared hung"),
  startupTimeoutSeconds: z
    .number()
    .positive()
    .max(MAX_TIMER_SECONDS)
    .default(600)
    .describe("worker start-up (Python and torch loading, building the networks and the data, loading a checkpoint) must finish within this"),
  threads: z.number().int().min(1).max(MAX_THREADS).optional().describe("torch threads in the worker (default: torch's choice)"),
});

/** The experiment a user writes (JSON or TypeScript). `method` and `density` name the paper's row; the
 * optional `generator` / `discriminator` blocks override any field of the preset's policies. */

/** An override names only the fields it changes: defaults are stripped, or a partial block would reset every
 * other field of the preset to its default (zod applies defaults inside .partial()). */
const overrideOf = <S extends z.ZodRawShape>(schema: z.ZodObject<S>) => withoutDefaults(schema).partial();

const DstOverride = overrideOf(DstPolicy);
const ControllerOverride = overrideOf(ControllerPolicy.extend({ capDst: overrideOf(CapDstPolicy).nullable() }));

/** How often the BR is probed, in iterations (0: never). */
const ProbeEvery = z.number().int().min(0).max(1_000_000);

export const ExperimentInput = z.strictObject({
  $schema: z.string().optional(),
  name: DirName.optional(),
  method: MethodName,
  density: z.number().gt(0).max(1).describe("generator density d_G"),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
  device: DeviceChoice.default("auto").describe("auto: CUDA when the worker's torch sees a GPU, else the CPU (the choice is printed and recorded in config.json)"),
  iterations: z.number().int().min(1).max(100_000_000),
  model: ModelSpec,
  data: DataSpec,
  train: TrainSpec.default(TrainSpec.parse({})).describe(
    "for the paper's networks (sngan32, sngan48), batchSize, genBatchSize and nCritic left out are the paper's 64, 128 and 5",
  ),
  generator: z
    .strictObject({ density: z.number().gt(0).max(1), init: Init, dst: DstOverride.nullable() })
    .partial()
    .optional(),
  discriminator: z
    .strictObject({ density: z.number().gt(0).max(1), init: Init, controller: ControllerOverride.nullable() })
    .partial()
    .optional(),
  log: z
    .strictObject({
      every: z.number().int().min(1).default(10),
      probeEvery: ProbeEvery.optional().describe(
        "BR probes when D has no controller and the BR is only watched: every N iterations, 0 for none (default 10); with a controller, discriminator.controller.probeEvery decides",
      ),
    })
    .default({ every: 10 }),
  checkpoint: Checkpointing.default(Checkpointing.parse({})),
  supervision: Supervision.default(Supervision.parse({})),
  eval: EvalSpec.nullable().default(null).describe("null: no evaluation"),
  controllers: z
    .array(z.unknown())
    .optional()
    .describe("the experiment's own controllers (docs/controllers.md): Controller objects, so TypeScript or JavaScript experiment modules only"),
});

/** How config.json names an experiment's own controller: the module that exports the experiment, and the
 * controller's name in its `controllers`. A resume imports the module again to get the code. */
export const ControllerRef = z.strictObject({ name: z.string().min(1), module: z.string().min(1) });
export type ControllerRef = z.infer<typeof ControllerRef>;

/** The fully expanded experiment, as written to config.json. */
export const Experiment = z
  .strictObject({
    name: z.string(),
    method: MethodName,
    density: z.number().gt(0).max(1),
    seed: z.number().int().min(0),
    device: DeviceChoice,
    iterations: z.number().int().min(1),
    model: ModelSpec,
    data: StoredDataSpec,
    train: TrainSpec,
    generator: GeneratorPolicy,
    discriminator: DiscriminatorPolicy,
    log: z.strictObject({ every: z.number().int().min(1), probeEvery: ProbeEvery.optional().describe("without a controller (absent: 10)") }),
    checkpoint: Checkpointing,
    supervision: Supervision,
    eval: StoredEvalSpec.nullable(),
    controllers: z.array(ControllerRef).optional(),
  })
  .superRefine((e, ctx) => {
    const c = e.discriminator.controller;
    const ev = e.eval;
    if (ev) {
      const metrics = ev.metrics ?? defaultMetrics(e.data.name);
      const toyData = e.data.name === "ring8" || e.data.name === "grid25";
      if (metrics.includes("toy") && !toyData) ctx.addIssue({ code: "custom", path: ["eval", "metrics"], message: "the toy metrics need ring8 or grid25 data" });
      if ((metrics.includes("fid") || metrics.includes("is")) && !ev.inception)
        ctx.addIssue({ code: "custom", path: ["eval", "inception"], message: "fid and is need InceptionV3 weights: set eval.inception to a pt_inception-2015-12-05 weights file" });
      if (metrics.includes("classifier") && e.data.name !== "mnist" && e.data.name !== "fashion-mnist")
        ctx.addIssue({ code: "custom", path: ["eval", "metrics"], message: "the classifier metrics are for mnist and fashion-mnist" });
    }
    if (c && e.log.probeEvery !== undefined)
      ctx.addIssue({ code: "custom", path: ["log", "probeEvery"], message: "D has a controller, whose probes decide: set discriminator.controller.probeEvery instead" });
    if (!c) return;
    const at = (...p: (string | number)[]) => ["discriminator", "controller", ...p];
    if (!(c.lower < c.upper)) ctx.addIssue({ code: "custom", path: at("lower"), message: `lower (${c.lower}) must be below upper (${c.upper})` });
    if (c.floor > c.cap) ctx.addIssue({ code: "custom", path: at("floor"), message: `floor (${c.floor}) must not exceed cap (${c.cap})` });
    if (e.discriminator.density > c.cap + 1e-12)
      ctx.addIssue({ code: "custom", path: ["discriminator", "density"], message: `starting density ${e.discriminator.density} is above the controller's cap ${c.cap}` });
    if (c.window < c.probeEvery)
      ctx.addIssue({ code: "custom", path: at("window"), message: `window (${c.window}) must hold at least one probe (probeEvery ${c.probeEvery})` });
    if (c.rule === "strict" && !c.capDst)
      ctx.addIssue({ code: "custom", path: at("capDst"), message: "the strict rule needs capDst (D's DST step at the cap)" });
  });

/** The metrics an evaluation computes when the experiment does not name them. */
export function defaultMetrics(data: string): ("fid" | "is" | "classifier" | "toy")[] {
  if (data === "ring8" || data === "grid25") return ["toy"];
  if (data === "mnist" || data === "fashion-mnist") return ["classifier"];
  return ["fid", "is"];
}

export type ExperimentInput = z.input<typeof ExperimentInput>;
export type Experiment = z.infer<typeof Experiment>;

/** An experiment as a module exports it: the JSON fields, and its own controllers as code. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ExperimentModule = Omit<ExperimentInput, "controllers"> & { controllers?: readonly Controller<any>[] };

/** Identity with types: lets a TypeScript experiment module get completion and checking (not generic, so that
 * a misspelt top-level key is an error, as it is in nested blocks). */
export function defineExperiment(spec: ExperimentModule): ExperimentModule {
  return spec;
}

export class ConfigError extends InputError {
  constructor(
    readonly source: string,
    readonly issues: { path: string; message: string }[],
    what = "experiment",
  ) {
    super(`invalid ${what} ${source}:\n` + issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}`).join("\n"));
    this.name = "ConfigError";
  }
}

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
}

/** Whether evaluations happen before the last iteration (controllers are never called after it). */
export function evaluatesDuringTraining(x: { eval: { every: number } | null; iterations: number }): boolean {
  return x.eval !== null && x.eval.every > 0 && x.eval.every < x.iterations;
}

/** The experiment's own controllers must be Controller objects with distinct names of their own, from a module
 * a resume can import again. */
export function checkControllers(list: unknown[], module: string | undefined, evaluates: boolean): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  list.forEach((c, i) => {
    const path = `controllers.${i}`;
    if (!isController(c)) {
      issues.push({ path, message: "a controller is an object with a name, initialState() and decide(); they come from TypeScript or JavaScript experiment modules" });
      return;
    }
    if (!/^[\w.-]+$/.test(c.name)) issues.push({ path: `${path}.name`, message: `'${c.name}': letters, digits, '.', '_' and '-' only` });
    if (BUILT_IN_NAMES.has(c.name)) issues.push({ path: `${path}.name`, message: `'${c.name}' is a built-in controller's name; choose another` });
    if (seen.has(c.name)) issues.push({ path: `${path}.name`, message: `'${c.name}' is used twice` });
    seen.add(c.name);
    if (c.every !== undefined && !(Number.isInteger(c.every) && c.every >= 1)) issues.push({ path: `${path}.every`, message: `must be a positive integer of iterations, got ${c.every}` });
    if (c.atEvaluations !== undefined && typeof c.atEvaluations !== "boolean")
      issues.push({ path: `${path}.atEvaluations`, message: `must be true or false, got ${JSON.stringify(c.atEvaluations)}` });
    if (c.every === undefined && c.atEvaluations !== true) issues.push({ path, message: "give it `every` (iterations between calls) or `atEvaluations: true`, or it is never called" });
    else if (c.every === undefined && !evaluates)
      issues.push({ path: `${path}.atEvaluations`, message: "the experiment evaluates only at its end (no `eval` block, or `eval.every` 0 or not below `iterations`), after which no controller is called: add `every`, or evaluations during training" });
    if (c.timeoutMs !== undefined && !(typeof c.timeoutMs === "number" && c.timeoutMs > 0 && c.timeoutMs <= MAX_TIMER_SECONDS * 1000))
      issues.push({ path: `${path}.timeoutMs`, message: `must be a positive number of milliseconds up to ${MAX_TIMER_SECONDS * 1000}, got ${JSON.stringify(c.timeoutMs)}` });
    if (c.records !== undefined && c.records !== "decisions" && c.records !== "effects")
      issues.push({ path: `${path}.records`, message: `must be "decisions" or "effects", got ${JSON.stringify(c.records)}` });
  });
  if (list.length && !module) issues.push({ path: "controllers", message: "controllers come from an experiment module (a .ts or .js file), so a resume can load them again" });
  return issues;
}

/** The paper's batches for its own networks: in an SNGAN experiment, D's batch, G's batch and n_critic that it
 * does not name are the reference's 64 / 128 / 5, not the generic defaults (256, D's, 1), which would train
 * another regime under the paper's name. */
export const PAPER_BATCHES = { batchSize: 64, genBatchSize: 128, nCritic: 5 } as const;
function withPaperBatches(input: unknown): unknown {
  if (!isJsonObject(input) || !isJsonObject(input.model) || typeof input.model.name !== "string" || !input.model.name.startsWith("sngan")) return input;
  const train = input.train ?? {};
  return isJsonObject(train) ? { ...input, train: { ...PAPER_BATCHES, ...train } } : input;
}

/** Validates user input and expands the preset; throws ConfigError naming every offending field, including
 * tuning of a policy the method does not have (method-policies.ts). */
export function resolveExperiment(input: unknown, source = "experiment", module?: string): Experiment {
  const parsed = ExperimentInput.safeParse(withPaperBatches(input));
  const method = MethodName.safeParse((input as { method?: unknown } | null)?.method);
  const conflicts = method.success && typeof input === "object" && input !== null ? policyConflicts(method.data, input) : [];
  const controllerIssues = parsed.success ? checkControllers(parsed.data.controllers ?? [], module, evaluatesDuringTraining(parsed.data)) : [];
  // Dense trains both networks whole: another density would be recorded and shown, and mean nothing.
  const denseIssues =
    parsed.success && parsed.data.method === "dense" && parsed.data.density !== 1
      ? [{ path: "density", message: `method dense trains both networks dense: density must be 1, got ${parsed.data.density}` }]
      : [];
  if (!parsed.success || conflicts.length || controllerIssues.length || denseIssues.length)
    throw new ConfigError(source, [...(parsed.success ? [] : issuesOf(parsed.error)), ...conflicts, ...controllerIssues, ...denseIssues]);
  const x = parsed.data;
  const preset = presetPolicies(x.method, x.density);
  const generatorOverride = x.generator ?? {};
  const discriminatorOverride = x.discriminator ?? {};
  const mergeDst = (base: DstPolicy | null, over: Partial<DstPolicy> | null | undefined) =>
    over === null ? null : over === undefined ? base : { ...(base ?? {}), ...over };
  const mergeController = (base: ControllerPolicy | null, over: z.infer<typeof ControllerOverride> | null | undefined) => {
    if (over === null) return null;
    if (over === undefined) return base;
    const capDst = over.capDst === undefined ? base?.capDst : over.capDst === null ? null : { ...(base?.capDst ?? {}), ...over.capDst };
    return { ...(base ?? {}), ...over, capDst };
  };
  const candidate = {
    name: x.name ?? `${x.method}-d${x.density}`,
    method: x.method,
    density: x.density,
    seed: x.seed,
    device: x.device,
    iterations: x.iterations,
    model: x.model,
    data: x.data,
    train: x.train,
    generator: { ...preset.generator, ...generatorOverride, dst: mergeDst(preset.generator.dst, generatorOverride.dst) },
    discriminator: {
      ...preset.discriminator,
      ...discriminatorOverride,
      controller: mergeController(preset.discriminator.controller, discriminatorOverride.controller),
    },
  };
  const controllers = x.controllers?.length ? { controllers: (x.controllers as Controller[]).map((c) => ({ name: c.name, module: module! })) } : {};
  // log.probeEvery stays absent unless set, so that configs resolved before it existed (a table's cells) still compare equal.
  const full = Experiment.safeParse({ ...candidate, log: x.log, checkpoint: x.checkpoint, supervision: x.supervision, eval: x.eval, ...controllers });
  if (!full.success) throw new ConfigError(source, issuesOf(full.error));
  return full.data;
}
