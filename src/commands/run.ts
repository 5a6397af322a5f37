import { parseArgs } from "node:util";
import { loadExperiment } from "../config/load.js";
import { preflight } from "../run/preflight.js";
import type { Summary } from "../run/records.js";
import { RunDir } from "../run/run-dir.js";
import { resumeRun, RunAborted, runExperiment, type RunOptions } from "../run/run-experiment.js";
import type { Worker } from "../worker/worker.js";
import { cliName, intOption, UsageError } from "./args.js";
import { progressPrinter } from "./progress.js";
import { onInterrupt } from "./signals.js";

/** `ddst run`: a new run, or `--resume DIR`. */
export async function cmdRun(argv: string[]): Promise<number> {
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
  // --until 0 is meaningful (build, set the masks, write the checkpoint at 0); --iterations 0 is not.
  const until = intOption("until", values.until);
  const iterations = intOption("iterations", values.iterations, 1);
  if (values.resume !== undefined) {
    if (positionals.length > 0 || values.set.length || values.seed || values.device || values.out)
      throw new UsageError("--resume DIR continues a run as it was configured; only --iterations N and --until N may go with it");
    const configured = (RunDir.open(values.resume).readJson("config.json") as { iterations?: number }).iterations ?? 0;
    console.log(`ddst: resuming ${values.resume}`);
    return await drive(values.resume, iterations ?? configured, (opts) => resumeRun({ ...opts, iterations }), until);
  }
  if (positionals.length !== 1) throw new UsageError("ddst run takes exactly one experiment file");
  const sets = [...values.set];
  const seed = intOption("seed", values.seed);
  if (iterations !== undefined) sets.push(`iterations=${iterations}`);
  if (seed !== undefined) sets.push(`seed=${seed}`);
  if (values.device !== undefined) sets.push(`device=${JSON.stringify(values.device)}`);
  const exp = await loadExperiment(positionals[0]!, sets);
  preflight(exp, positionals[0]!); // runExperiment checks again, naming the experiment; this names the file
  const out = values.out ?? `runs/${exp.name}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  RunDir.checkFree(out);
  console.log(`ddst: ${exp.method} (d_G ${exp.density}) on ${exp.data.name} with ${exp.model.name}, ${exp.iterations} iterations -> ${out}`);
  return await drive(out, exp.iterations, (opts) => runExperiment(exp, opts), until);
}

/** Runs or resumes with progress output and signal handling: the first Ctrl-C / SIGTERM / SIGHUP interrupts training,
 * writes a checkpoint and stops the worker (exit 130 / 143 / 129); a second one stops at once. */
async function drive(out: string, total: number, start: (opts: RunOptions) => Promise<Summary>, until?: number): Promise<number> {
  const controller = new AbortController();
  let worker: Worker | undefined;
  const printer = progressPrinter({ total, tty: process.stdout.isTTY === true });
  const signals = onInterrupt(
    () => controller.abort(),
    () => worker?.killNow(),
  );
  try {
    const summary = await start({
      out,
      until,
      signal: controller.signal,
      onRecord: printer.record,
      onProgress: printer.progress,
      onNotice: (message) => {
        printer.done();
        console.error(`ddst: ${message}`);
      },
      onWorker: (w) => {
        worker = w;
        console.log(`worker: pid ${w.pid}, python ${w.hello.python}, torch ${w.hello.torch}, ${w.hello.device}, ${w.hello.threads} thread${w.hello.threads === 1 ? "" : "s"}`);
      },
    });
    printer.done();
    const f = summary.final;
    const finished = summary.iterations >= total || summary.stopped !== undefined;
    const how = summary.stopped ? `stopped by ${summary.stopped.controller} at iteration ${summary.stopped.iter} (${summary.stopped.reason})` : finished ? "done" : `stopped at iteration ${summary.iterations} (--until)`;
    console.log(
      `${how} after ${summary.wallSeconds.toFixed(1)} s: ` +
        `d_G ${f.densityG.toFixed(3)}, d_D ${f.densityD.toFixed(3)}, BR ${f.br === null ? "n/a" : f.br.toFixed(3)}, ` +
        `training FLOPs ${summary.flops.total.toExponential(3)} (${(100 * summary.flops.ratio).toFixed(2)}% of dense)` +
        (summary.restarts ? `, ${summary.restarts} worker restart(s)` : ""),
    );
    if (finished) console.log(`results: ${out}/summary.json, ${out}/metrics.jsonl, ${out}/config.json, ${out}/worker.log`);
    else console.log(`continue with: ${cliName()} run --resume ${out}`);
    return 0;
  } catch (e) {
    printer.done();
    if (e instanceof RunAborted) {
      console.error(e.message.replace("--resume", `${cliName()} run --resume ${out}`));
      return signals.exitCode() || 130;
    }
    throw e;
  } finally {
    signals.dispose();
  }
}
