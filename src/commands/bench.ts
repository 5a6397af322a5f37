import { execa } from "execa";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { paperBench, paperExperiment, type Numerics } from "../bench/paper.js";
import { MAX_BATCH, MODEL_NAMES, ModelSpec } from "../vocabulary/networks.js";
import { InputError } from "../input-error.js";
import { findPython, probePython } from "../worker/discover.js";
import { packageRoot } from "../worker/paths.js";
import { intOption, UsageError } from "./args.js";

/** `ddst bench`: masked vs dense iteration and a global prune-and-grow, timed in the worker; with --paper, also
 * a steady-state paper-setting iteration (src/bench/paper.ts) and runs sharing the device. */
export async function cmdBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string", default: "sngan32" },
      batch: { type: "string", default: "64" },
      iters: { type: "string" },
      device: { type: "string", default: "cpu" },
      json: { type: "boolean", default: false },
      paper: { type: "boolean", default: false },
      warmup: { type: "string" },
      "profile-iters": { type: "string" },
      concurrent: { type: "string" },
      precision: { type: "string" },
      "cuda-graphs": { type: "string" },
      tf32: { type: "string" },
      "channels-last": { type: "string" },
      compile: { type: "string" },
      masking: { type: "string" },
    },
  });
  const model = ModelSpec.safeParse({ name: values.model });
  if (!model.success) throw new UsageError(`unknown model '${values.model}'; known: ${MODEL_NAMES.join(", ")}`);
  const device = values.device;
  if (device !== "cpu" && device !== "cuda") throw new UsageError(`--device must be cpu or cuda, got '${device}'`);
  const batch = intOption("batch", values.batch, 1, MAX_BATCH)!;
  const paperOnly = ["warmup", "profile-iters", "concurrent", "precision", "cuda-graphs", "tf32", "channels-last", "compile", "masking"] as const;
  const stray = paperOnly.filter((k) => values[k] !== undefined);
  if (!values.paper && stray.length) throw new UsageError(`--${stray[0]} goes with --paper`);
  // The masked/dense figures run eager steps at the default numerics whatever --precision, --tf32, --cuda-graphs,
  // --channels-last and --compile say:
  // `--masking off` leaves them out of a run that varies those (and saves their time on a lent GPU).
  const withMasking = onOff("masking", values.masking) ?? true;
  const found = await findPython();
  const python = found.path;
  if (device === "cuda" && (await probePython(python, found.source, true)).cuda !== true)
    throw new InputError(`--device cuda: torch sees no CUDA device with ${python} (${found.source}); use --device cpu, or run where a GPU is (ddst doctor says which Python is used)`);

  const cuda = device === "cuda";
  const iters = intOption("iters", values.iters, 1) ?? (values.paper ? (cuda ? 200 : 3) : 3);
  const paper = values.paper
    ? await paperBench(
        paperExperiment(numerics(values)),
        {
          device,
          iterations: iters,
          warmup: intOption("warmup", values.warmup) ?? (cuda ? 20 : 1),
          profileIterations: intOption("profile-iters", values["profile-iters"]) ?? (cuda ? 20 : 1),
        },
        concurrency(values.concurrent),
        python,
      )
    : undefined;
  const masking = withMasking ? await maskingBench(python, values.model, batch, values.paper ? 3 : iters, device) : null;
  if (values.json) {
    console.log(JSON.stringify(paper ? { paper, masking } : masking));
    return 0;
  }
  if (paper) printPaper(paper);
  if (masking) printMasking(masking);
  return 0;
}

function onOff(name: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v !== "on" && v !== "off") throw new UsageError(`--${name} must be on or off, got '${v}'`);
  return v === "on";
}

/** `--paper`'s on|off options and the train setting each sets. */
const SWITCHES = { "cuda-graphs": "cudaGraphs", tf32: "tf32", "channels-last": "channelsLast", compile: "compile" } as const;

function numerics(values: { precision?: string } & { [flag in keyof typeof SWITCHES]?: string }): Numerics {
  const out: Numerics = {};
  if (values.precision !== undefined) {
    if (values.precision !== "fp32" && values.precision !== "bf16") throw new UsageError(`--precision must be fp32 or bf16, got '${values.precision}'`);
    out.precision = values.precision;
  }
  for (const flag of Object.keys(SWITCHES) as (keyof typeof SWITCHES)[]) {
    const on = onOff(flag, values[flag]);
    if (on !== undefined) out[SWITCHES[flag]] = on;
  }
  return out;
}

/** "1,2,4,8" -> [1, 2, 4, 8]; none given: none run. */
function concurrency(v: string | undefined): number[] {
  if (v === undefined) return [];
  const runs = v.split(",").map((x) => intOption("concurrent", x.trim())!);
  if (runs.some((k) => k < 1 || k > 64)) throw new UsageError(`--concurrent takes run counts from 1 to 64, e.g. 1,2,4,8; got '${v}'`);
  return runs;
}

type Masking = Record<string, number | string>;

async function maskingBench(python: string, model: string, batch: number, iters: number, device: string): Promise<Masking> {
  const root = packageRoot();
  const r = await execa(python, ["-m", "ddst_worker.bench", "--model", model, "--batch", String(batch), "--iters", String(iters), "--device", device], {
    env: { PYTHONPATH: join(root, "python"), DDST_SCHEMAS: join(root, "schemas") },
    reject: false,
  });
  if (r.exitCode !== 0) {
    // Python's last line names the exception (out of memory, say); the traceback above it is the benchmark's own.
    const last = String(r.stderr).trim().split("\n").pop();
    throw new Error(`the masking benchmark failed: ${last || (r.signal ? `killed by ${r.signal} (out of memory?)` : `exit code ${r.exitCode}`)}`);
  }
  return JSON.parse(String(r.stdout).trim().split("\n").pop()!) as Masking;
}

function printPaper(p: Awaited<ReturnType<typeof paperBench>>): void {
  const s = p.setting;
  const f = (x: number | null, digits = 1) => (x === null ? "-" : x.toFixed(digits));
  console.log(
    `paper setting: ${s.model}, D batch ${s.batchSize}, G batch ${s.genBatchSize}, n_critic ${s.nCritic}, probe every ${s.probeEvery}, ` +
      `d_G ${s.density.generator} d_D ${s.density.discriminator} (${s.init.generator}), ${s.precision}, tf32 ${s.tf32 ? "on" : "off"}, CUDA graphs ${s.cudaGraphs ? "on" : "off"}, channels-last ${s.channelsLast ? "on" : "off"}, compile ${s.compile ? "on" : "off"}`,
  );
  console.log(`  ${p.device}, torch ${p.torch}: ${p.iterations} iterations timed after ${p.warmup} of warm-up (${p.warmupSeconds.toFixed(1)} s with the build)`);
  console.log(`  one iteration                      ${f(p.msPerIteration)} ms`);
  const q = p.profile;
  if (q) {
    console.log(`  per iteration, profiled (${q.iterations}):  ${f(q.cpuOpsPerIteration, 0)} aten ops, ${f(q.launchesPerIteration, 0)} launches, ${f(q.kernelsPerIteration, 0)} kernels, ` +
      `${f(q.kernelMsPerIteration)} ms of kernels, ${f(q.syncsPerIteration, 2)} host syncs`);
    if (q.busyFraction !== null) console.log(`  GPU busy                           ${(q.busyFraction * 100).toFixed(0)}%`);
    console.log(`  most dispatched: ${q.topOps.slice(0, 6).map((o) => `${o.name.replace("aten::", "")} ${f(o.perIteration, 0)}`).join(", ")}`);
    if (q.topKernels)
      console.log(`  most GPU time: ${q.topKernels.slice(0, 4).map((k) => `${k.name.slice(0, 40)} ${f(k.msPerIteration, 2)} ms`).join(", ")}`);
  }
  for (const c of p.concurrent)
    console.log(`  ${String(c.runs).padStart(2)} runs at once                    ${c.iterationsPerS.toFixed(2)} it/s in all, ${c.overOneRun.toFixed(2)}x one run`);
}

function printMasking(b: Masking): void {
  const s = (x: unknown) => `${Number(x).toFixed(3)} s`;
  console.log(`${b.model} batch ${b.batch}, ${b.device}, torch ${b.torch}, ${b.threads} thread${b.threads === 1 ? "" : "s"}, median of ${b.iters} after a warm-up`);
  console.log(`  dense training iteration          ${s(b.denseIterS)}`);
  console.log(`  masked iteration (density ${b.density})     ${s(b.maskedIterS)}   ${Number(b.maskedOverDense).toFixed(3)}x dense   (target <= 1.10x)`);
  console.log(`  global prune-and-grow of G         ${s(b.dstStepS)}   ${Number(b.dstOverMaskedIter).toFixed(3)}x an iteration (target <= 3x)`);
}
