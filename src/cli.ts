#!/usr/bin/env node
import { parseArgs } from "node:util";
import { ConfigError } from "./config/experiment.js";
import { loadExperiment } from "./config/load.js";
import { resumeRun, RunAborted, runExperiment, type RunOptions } from "./run/run-experiment.js";
import type { Summary } from "./run/records.js";
import { RunDir, RunDirError } from "./run/run-dir.js";
import type { MetricRecord } from "./run/records.js";
import { execa } from "execa";
import { join } from "node:path";
import { findPython, surveyPythons } from "./worker/discover.js";
import { packageRoot } from "./worker/paths.js";
import { Worker } from "./worker/worker.js";
import { ModelSpec, TrainSpec } from "./config/networks.js";
import { BuildResult } from "./protocol/messages.js";
import { planFlops, shapeOnlyData, whyNeedsRun, type PlanFlops } from "./report/plan-flops.js";
import { dataForInspection, formatInspect, inspectNet } from "./report/inspect.js";

const MODEL_NAMES = ["mlp2d", "sngan32", "sngan48", "dcgan28", "dcgan32"];

const USAGE = `usage:
  ddst run <experiment.json|.ts> [--out DIR] [--iterations N] [--seed N] [--device cpu|cuda] [--set path=value ...] [--until N]
  ddst run --resume DIR [--iterations N] [--until N]
  ddst inspect <model> [--density-g X] [--density-d Y] [--init erk|uniform] [--json]
               models: mlp2d, sngan32, sngan48, dcgan28, dcgan32
  ddst flops <experiment> [--json] [--set path=value ...]
               training FLOPs of a plan whose densities are known ahead (dense, static, SDST)
  ddst bench [--model sngan32] [--batch 64] [--iters 3] [--device cpu|cuda]
               masked vs dense training iteration, and one global prune-and-grow of G vs an iteration
  ddst doctor          which Python ddst would use, and why other candidates were rejected`;

class UsageError extends Error {}

function intOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer, got '${v}'`);
  return Number(v);
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      iterations: { type: "string" },
      seed: { type: "string" },
      device: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      resume: { type: "string" },
      until: { type: "string" },
    },
  });
  const until = intOption("until", values.until);
  if (values.resume !== undefined) {
    if (positionals.length > 0 || values.set.length || values.seed || values.device || values.out)
      throw new UsageError("--resume DIR continues a run as it was configured; only --iterations N and --until N may go with it");
    const iterations = intOption("iterations", values.iterations);
    const configured = (RunDir.open(values.resume).readJson("config.json") as { iterations?: number }).iterations ?? 0;
    console.log(`ddst: resuming ${values.resume}`);
    return await drive(values.resume, iterations ?? configured, (opts) => resumeRun({ ...opts, iterations }), until);
  }
  if (positionals.length !== 1) throw new UsageError("ddst run takes exactly one experiment file");
  const sets = [...values.set];
  const iterations = intOption("iterations", values.iterations);
  const seed = intOption("seed", values.seed);
  if (iterations !== undefined) sets.push(`iterations=${iterations}`);
  if (seed !== undefined) sets.push(`seed=${seed}`);
  if (values.device !== undefined) sets.push(`device=${JSON.stringify(values.device)}`);
  const exp = await loadExperiment(positionals[0]!, sets);
  const out = values.out ?? `runs/${exp.name}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  RunDir.checkFree(out);
  console.log(`ddst: ${exp.method} (d_G ${exp.density}) on ${exp.data.name} with ${exp.model.name}, ${exp.iterations} iterations -> ${out}`);
  return await drive(out, exp.iterations, (opts) => runExperiment(exp, opts), until);
}

/** Runs or resumes with progress output and signal handling: the first Ctrl-C / SIGTERM interrupts training,
 * writes a checkpoint and stops the worker (exit 130 / 143); a second one stops at once. */
async function drive(out: string, total: number, start: (opts: RunOptions) => Promise<Summary>, until?: number): Promise<number> {
  const controller = new AbortController();
  let exitCode = 0;
  let worker: Worker | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write(`\n${sig} again: stopping now without a checkpoint\n`);
      worker?.killNow();
      process.exit(exitCode);
    }
    exitCode = sig === "SIGINT" ? 130 : 143;
    process.stderr.write(`\n${sig}: interrupting; writing a checkpoint (send it again to stop at once)\n`);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const summary = await start({
      out,
      until,
      signal: controller.signal,
      onRecord: progressPrinter(total),
      onWorker: (w) => {
        worker = w;
        console.log(`worker: pid ${w.pid}, python ${w.hello.python}, torch ${w.hello.torch}, ${w.hello.device}, ${w.hello.threads} threads`);
      },
    });
    const f = summary.final;
    const finished = !until || summary.iterations >= (total || summary.iterations);
    console.log(
      `${finished ? "done" : `stopped at iteration ${summary.iterations} (--until)`} after ${summary.wallSeconds.toFixed(1)} s: ` +
        `d_G ${f.densityG.toFixed(3)}, d_D ${f.densityD.toFixed(3)}, BR ${f.br === null ? "n/a" : f.br.toFixed(3)}, ` +
        `training FLOPs ${summary.flops.total.toExponential(3)} (${(100 * summary.flops.ratio).toFixed(2)}% of dense)` +
        (summary.restarts ? `, ${summary.restarts} worker restart(s)` : ""),
    );
    if (finished) console.log(`results: ${out}/summary.json, ${out}/metrics.jsonl, ${out}/config.json, ${out}/worker.log`);
    else console.log(`continue with: ddst run --resume ${out}`);
    return 0;
  } catch (e) {
    if (e instanceof RunAborted) {
      console.error(e.message.replace("--resume", `ddst run --resume ${out}`));
      return exitCode || 130;
    }
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** One line per controller decision and about twenty progress lines per run. */
function progressPrinter(total: number): (r: MetricRecord) => void {
  const stride = Math.max(1, Math.round(total / 20));
  let br: number | null = null;
  let dD = NaN;
  let dG = NaN;
  let nextLine = stride;
  return (r) => {
    if (r.kind === "br") br = r.br;
    if (r.kind === "density") {
      dG = r.generator;
      dD = r.discriminator;
    }
    const brText = br === null ? "  n/a" : br.toFixed(3);
    if (r.kind === "restart") console.log(`  iter ${String(r.iter).padStart(7)}  worker restarted (attempt ${r.attempt}) from the checkpoint at ${r.fromCheckpoint}: ${r.reason}`);
    if (r.kind === "eval")
      console.log(
        `  iter ${String(r.iter).padStart(7)}  eval (${r.seconds.toFixed(1)} s): ` +
          Object.entries(r.metrics)
            .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
            .join(", ") +
          (r.picture ? `  -> ${r.picture}` : ""),
      );
    if (r.kind === "controller")
      console.log(`  iter ${String(r.iter).padStart(7)}  controller: BR ${r.br.toFixed(3)} in [${r.lower}, ${r.upper}]? -> ${r.decision}, d_D ${r.densityD.toFixed(3)}`);
    if (r.kind === "loss" && (r.iter >= nextLine || r.iter === total)) {
      nextLine = r.iter + stride;
      console.log(
        `  iter ${String(r.iter).padStart(7)}/${total}  BR ${brText}  d_G ${dG.toFixed(3)}  d_D ${dD.toFixed(3)}  loss D ${r.d.toFixed(4)} G ${r.g.toFixed(4)}`,
      );
    }
  };
}

function densityOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!(x > 0 && x <= 1)) throw new UsageError(`--${name} must be a density in (0, 1], got '${v}'`);
  return x;
}

async function cmdInspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "density-g": { type: "string" },
      "density-d": { type: "string" },
      init: { type: "string", default: "erk" },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError("ddst inspect takes exactly one model name");
  const model = ModelSpec.safeParse({ name: positionals[0] });
  if (!model.success) throw new UsageError(`unknown model '${positionals[0]}'; known: ${MODEL_NAMES.join(", ")}`);
  const init = values.init;
  if (init !== "erk" && init !== "uniform") throw new UsageError(`--init must be erk or uniform, got '${init}'`);
  const dG = densityOption("density-g", values["density-g"]) ?? 1;
  const dD = densityOption("density-d", values["density-d"]) ?? dG;
  const worker = await Worker.start();
  try {
    const built = await worker.ask("build", { seed: 0, device: "cpu", model: model.data, data: dataForInspection(model.data), train: TrainSpec.parse({}) }, BuildResult);
    const nets = {
      generator: inspectNet(built.layers, "generator", dG, init),
      discriminator: inspectNet(built.layers, "discriminator", dD, init),
    };
    if (values.json) console.log(JSON.stringify(nets, null, 2));
    else console.log(formatInspect(model.data.name, nets, { generator: dG, discriminator: dD }, init));
    return 0;
  } finally {
    await worker.stop();
  }
}

async function cmdFlops(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: "boolean", default: false }, set: { type: "string", multiple: true, default: [] } },
  });
  if (positionals.length !== 1) throw new UsageError("ddst flops takes exactly one experiment file");
  // Costs need shapes only, so data paths need not exist here.
  const exp = await loadExperiment(positionals[0]!, values.set, false);
  let result: PlanFlops;
  if (whyNeedsRun(exp)) result = planFlops(exp, []);
  else {
    const worker = await Worker.start();
    try {
      const built = await worker.ask("build", { seed: exp.seed, device: "cpu", model: exp.model, data: shapeOnlyData(exp.data), train: exp.train }, BuildResult);
      result = planFlops(exp, built.layers);
    } finally {
      await worker.stop();
    }
  }
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else if (!result.known) console.log(`${exp.method}: ${result.reason}`);
  else {
    const p = result.paper;
    const x = result.executed;
    console.log(`${exp.method} at d_G ${exp.generator.density} (d_D ${exp.discriminator.density}), ${result.iterations} iterations:`);
    console.log(`  paper convention:    G ${p.generator.toExponential(3)}  D ${p.discriminator.toExponential(3)}  total ${p.total.toExponential(3)}  = ${(100 * p.ratio).toFixed(2)}% of dense (${p.dense.toExponential(3)})`);
    console.log(`  executed operations: G ${x.generator.toExponential(3)}  D ${x.discriminator.toExponential(3)}  total ${x.total.toExponential(3)}  = ${(100 * x.ratio).toFixed(2)}% of dense (${x.dense.toExponential(3)})`);
  }
  return 0;
}

async function cmdBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string", default: "sngan32" },
      batch: { type: "string", default: "64" },
      iters: { type: "string", default: "3" },
      device: { type: "string", default: "cpu" },
      json: { type: "boolean", default: false },
    },
  });
  const model = ModelSpec.safeParse({ name: values.model });
  if (!model.success) throw new UsageError(`unknown model '${values.model}'; known: ${MODEL_NAMES.join(", ")}`);
  if (values.device !== "cpu" && values.device !== "cuda") throw new UsageError(`--device must be cpu or cuda, got '${values.device}'`);
  const batch = intOption("batch", values.batch)!;
  const iters = intOption("iters", values.iters)!;
  const python = (await findPython()).path;
  const root = packageRoot();
  const r = await execa(python, ["-m", "ddst_worker.bench", "--model", values.model, "--batch", String(batch), "--iters", String(iters), "--device", values.device], {
    env: { PYTHONPATH: join(root, "python"), DDST_SCHEMAS: join(root, "schemas") },
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`the benchmark failed:\n${r.stderr}`);
  const b = JSON.parse(String(r.stdout).trim().split("\n").pop()!) as Record<string, number | string>;
  if (values.json) {
    console.log(JSON.stringify(b));
    return 0;
  }
  const s = (x: unknown) => `${Number(x).toFixed(3)} s`;
  console.log(`${b.model} batch ${b.batch}, ${b.device}, torch ${b.torch}, ${b.threads} threads, median of ${b.iters} after a warm-up`);
  console.log(`  dense training iteration          ${s(b.denseIterS)}`);
  console.log(`  masked iteration (density ${b.density})     ${s(b.maskedIterS)}   ${Number(b.maskedOverDense).toFixed(3)}x dense   (target <= 1.10x)`);
  console.log(`  global prune-and-grow of G         ${s(b.dstStepS)}   ${Number(b.dstOverMaskedIter).toFixed(3)}x an iteration (target <= 3x)`);
  return 0;
}

async function cmdDoctor(): Promise<number> {
  const found = await surveyPythons();
  // An explicit DDST_PYTHON is the only choice when set: a broken one is not replaced by another.
  let chosen = Boolean(process.env.DDST_PYTHON) && !found[0]?.ok;
  for (const c of found) {
    const mark = c.ok && !chosen ? "->" : "  ";
    if (c.ok && !chosen) chosen = true;
    console.log(
      `${mark} ${c.path} (${c.source}): ` +
        (c.ok ? `python ${c.python}, torch ${c.torch}, pyzmq ${c.zmq}, cuda ${c.cuda ? "yes" : "no"}` : `rejected: ${c.reason}`),
    );
  }
  if (!chosen) {
    console.log("no usable Python: run `npm run setup`, or set DDST_PYTHON to an interpreter with torch, pyzmq and jsonschema");
    return 1;
  }
  if (process.env.DDST_PYTHON && !found[0]?.ok) {
    console.log("DDST_PYTHON is set but unusable: ddst will refuse to run until it is fixed or unset");
    return 1;
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "run":
        return await cmdRun(rest);
      case "inspect":
        return await cmdInspect(rest);
      case "flops":
        return await cmdFlops(rest);
      case "bench":
        return await cmdBench(rest);
      case "doctor":
        return await cmdDoctor();
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return cmd ? 0 : 2;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof ConfigError || e instanceof RunDirError) {
      console.error(`ddst: ${e.message}`);
      return 2;
    }
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`ddst: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    console.error(`ddst: ${(e as Error).message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
