import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { planFlops, whyNeedsRun } from "../report/plan-flops.js";
import { planTable, loadTableSpec, preflightCells, preflightDensities, type TablePlan } from "../table/cells.js";
import { assignSlots, checkGpuIndices, DeviceListError, parseDevices, resolveAuto, type Slot } from "../table/devices.js";
import { duration, TableProgress } from "../table/progress.js";
import { unplannedCells } from "../table/unplanned-cells.js";
import { tableMarkdown } from "../table/render.js";
import { checkTableDir, checkTableFree, inspectCells, runTable } from "../table/run-table.js";
import { isSettled, yetToStart } from "../table/cell-state.js";
import { prepareTiming, secondsPerIteration } from "../bench/steady-state.js";
import { findPython, probePython } from "../worker/discover.js";
import { Worker } from "../worker/worker.js";
import { layerTableOf, refusedBuild } from "../worker/shape-only-build.js";
import { InputError } from "../input-error.js";
import { layersLeftEmpty, startingMasks } from "../sparsity/erk.js";
import { MAX_TIMER_SECONDS } from "../config/experiment.js";
import { cliName, intOption, UsageError } from "./args.js";
import { onInterrupt } from "./signals.js";
import { printStatus, refuseLocalTraining, submitTable } from "./table-slurm.js";

const SLURM_ONLY = ["partition", "account", "time", "gpus-per-cell", "cells-per-gpu", "sbatch-arg", "dry-run"] as const;

/** `ddst table SPEC [--out DIR] [--jobs N] [--devices LIST] [--plan]`: a paper table in one command; with
 * `--slurm` a job array of its cells, with `--status` where each cell stands. */
export async function cmdTable(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      jobs: { type: "string" },
      devices: { type: "string" },
      plan: { type: "boolean", default: false },
      "plan-iterations": { type: "string", default: "5" },
      "status-every": { type: "string", default: "30" },
      cells: { type: "string" },
      local: { type: "boolean", default: false },
      extend: { type: "boolean", default: false },
      status: { type: "boolean", default: false },
      slurm: { type: "boolean", default: false },
      partition: { type: "string" },
      account: { type: "string" },
      time: { type: "string" },
      "gpus-per-cell": { type: "string" },
      "cells-per-gpu": { type: "string" },
      "sbatch-arg": { type: "string", multiple: true, default: [] },
      "dry-run": { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError("ddst table takes exactly one table file");
  const file = positionals[0]!;
  // More cells at once than a table could have is a typo (each job is a slot printed in --plan).
  const jobs = intOption("jobs", values.jobs ?? "1", 1, 4096)!;
  const statusEvery = intOption("status-every", values["status-every"], 1, MAX_TIMER_SECONDS)!;
  const modes = (["plan", "status", "slurm", "cells"] as const).filter((m) => values[m] !== undefined && values[m] !== false);
  if (modes.length > 1) throw new UsageError(`--${modes[0]} and --${modes[1]} do not go together`);
  // Where and how many cells train here means nothing to a submission or a status.
  const away = values.slurm ? "slurm" : values.status ? "status" : null;
  const local = (["jobs", "devices", "local"] as const).filter((f) => values[f] !== undefined && values[f] !== false);
  // --status reads the cells as they are; --extend changes their recorded count, which a status does not do.
  if (values.status && values.extend) throw new UsageError("--extend does not go with --status: run the table (or --slurm) with --extend, then --status shows the cells to continue");
  if (away && local.length) throw new UsageError(`--${local[0]} does not go with --${away}${away === "slurm" ? " (a task trains its cells on its own GPU, or --gpus-per-cell 0 for CPUs)" : ""}`);
  if (!values.slurm) {
    const stray = SLURM_ONLY.filter((f) => values[f] !== undefined && values[f] !== false && !(Array.isArray(values[f]) && values[f].length === 0));
    if (stray.length) throw new UsageError(`--${stray[0]} goes with --slurm`);
  }
  const spec = await loadTableSpec(file);
  const out = values.out ?? `runs/${spec.name}`;
  // Where the plan runs is not known before the cells are, so validate the cells first (exit 2 on any error).
  const plan = await planTable(spec, file, out, values.extend);
  checkTableDir(out);
  if (values.status) {
    console.log(`ddst table ${spec.name}: ${count(plan.cells.length, "cell")} in ${out}`);
    return await printStatus(plan);
  }
  if (values.slurm) {
    console.log(`ddst table ${spec.name}: ${count(plan.cells.length, "cell")} -> ${out} (Slurm job array)`);
    return await submitTable(plan, file, values);
  }
  const only = values.cells === undefined ? undefined : selectCells(plan, values.cells);
  if (!only && !values.plan) checkTableFree(out);
  if (!only && !values.plan && !values.local) await refuseLocalTraining(plan);
  const mine = only ? { ...plan, cells: plan.cells.filter((c) => only.has(c.id)) } : plan;
  const states = inspectCells(plan, only);
  const toTrain = mine.cells.filter((c) => !isSettled(states.get(c.id)!));
  let slots: Slot[];
  try {
    let devices = parseDevices(values.devices ?? plan.cells[0]!.experiment.device);
    // Writing a finished table's results uses no device: a login node without a GPU may do it.
    const wantsCuda = devices.some((d) => d.startsWith("cuda")) && (values.plan || toTrain.length > 0);
    // auto with nothing to train (a finished table's results) needs no torch either.
    if ((devices.includes("auto") && (values.plan || toTrain.length > 0)) || wantsCuda) {
      const found = await findPython();
      const { cuda, gpus } = await probePython(found.path, found.source, true);
      // Every cell would fail the same way, one worker start at a time.
      if (wantsCuda && !cuda) throw new InputError(`devices ${devices.join(",")}${values.devices ? "" : " (the experiments' device)"}: the torch of ${found.path} sees no GPU on this machine; use --devices cpu`);
      if (wantsCuda && gpus !== undefined) checkGpuIndices(devices, gpus);
      if (devices.includes("auto")) {
        devices = resolveAuto(devices, cuda === true);
        console.log(`devices auto: ${devices.join(",")} (torch ${cuda ? "sees a GPU" : "sees no GPU"})`);
      }
    }
    // Inside a Slurm allocation, the CPUs it granted (the node may have more).
    slots = assignSlots(devices, jobs, Number(process.env.SLURM_CPUS_PER_TASK) || availableParallelism());
  } catch (e) {
    if (e instanceof DeviceListError) throw new UsageError(e.message);
    throw e;
  }
  const done = [...states.values()].filter((s) => s.kind === "finished").length;
  const diverged = [...states.values()].filter((s) => s.kind === "diverged").length;
  const resumable = [...states.values()].filter((s) => s.kind === "interrupted").length;
  const { methods, densities, seeds } = spec;
  console.log(
    `ddst table ${spec.name}: ${only ? `${count(only.size, "cell")} of ${plan.cells.length}` : count(plan.cells.length, "cell")} (${count(methods.length, "method")} x ${count(densities.length, "density", "densities")} x ${count(seeds.length, "seed")}) -> ${out}\n` +
      `  ${done} finished, ${diverged ? `${diverged} diverged (not tried again), ` : ""}${resumable} to resume, ${mine.cells.length - done - diverged - resumable} new; ${slots.length} at a time on ${slots.map((s) => s.label + (s.threads ? ` (${count(s.threads, "thread")})` : "")).join(", ")}`,
  );
  printDropped(mine);
  // Array tasks leave it to the submitting command, which says it once.
  if (!only) for (const note of unplannedCells(plan)) console.log(`  ${note}`);
  const planIterations = intOption("plan-iterations", values["plan-iterations"], 0)!;
  if (values.plan) return await printPlan(plan, states, slots, planIterations);
  preflightCells(file, toTrain);
  const python = toTrain.length ? (await findPython()).path : undefined;
  // A cell that has started has passed this check; one still to start is refused at its start if it fails it.
  const starting = toTrain.filter((c) => yetToStart(states.get(c.id)!));
  if (starting.length) await preflightDensities(file, starting, (exp) => layerTableOf(exp, python));
  const controller = new AbortController();
  const signals = onInterrupt(
    () => controller.abort(),
    () => undefined,
  );
  const left = toTrain.reduce((a, c) => {
    const s = states.get(c.id)!;
    return a + c.experiment.iterations - (s.kind === "interrupted" ? s.iter : 0);
  }, 0);
  const progress = new TableProgress(process.stdout, spec.name, mine.cells.length - diverged, done, left, statusEvery * 1000);
  try {
    const outcome = await runTable(plan, { slots, progress, signal: controller.signal, python, only });
    console.log(`\n${tableMarkdown(outcome.result)}`);
    console.log(`results: ${out}/table.md, ${out}/table.csv, ${out}/table.json; cells in ${out}/cells/`);
    if (outcome.interrupted) {
      console.error(`interrupted: running cells were checkpointed; the same command continues the table`);
      return signals.exitCode() || 130;
    }
    if (outcome.diverged.length) {
      console.error(`${count(outcome.diverged.length, "cell")} diverged (table.md counts them; they are in no statistic):\n${outcome.diverged.map((f) => `  - ${f.id}: ${f.error.split(". ")[0]}`).join("\n")}`);
      console.error(
        "the table does not train them again: the same settings diverge again. Try other settings in a table of its own (another --out), " +
          `or remove a cell's directory (${out}/cells/ID) to train it once more (a new data.path, say to data scaled anew, is no other setting to the table)`,
      );
    }
    if (outcome.busy.length)
      console.error(
        `${count(outcome.busy.length, "cell")} ${outcome.busy.length === 1 ? "was" : "were"} being trained by another ddst and left to it (no failure; the table is not complete):\n` +
          `${outcome.busy.map((b) => `  - ${b.id} (${b.holder})`).join("\n")}\nthe table files count ${outcome.busy.length === 1 ? "it" : "them"} once finished: run the same command again then ` +
          `(a holder on another machine that is gone for good leaves its lock behind: remove ${outcome.busy[0]!.lock}${outcome.busy.length > 1 ? " and the others'" : ""})`,
      );
    if (outcome.failed.length) {
      console.error(`${outcome.failed.length} cell(s) failed:\n${outcome.failed.map((f) => `  - ${f.id}: ${f.error}`).join("\n")}`);
      // In an array task the command is Slurm's: the user's is the submitting one.
      console.error(
        process.env.SLURM_ARRAY_JOB_ID && only
          ? `\`${cliName()} table ... --slurm\` submits them again (and keeps every finished cell)`
          : "the same command retries them (and keeps every finished cell)",
      );
    }
    // 0: every cell this command would train is done.
    return outcome.failed.length || outcome.diverged.length || outcome.busy.length ? 1 : 0;
  } finally {
    signals.dispose();
  }
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** --cells a,b: the cells an array task trains (ids as in DIR/cells). */
function selectCells(plan: TablePlan, list: string): Set<string> {
  const ids = list.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = ids.filter((id) => !plan.cells.some((c) => c.id === id));
  if (ids.length === 0 || unknown.length)
    throw new UsageError(`--cells: ${unknown.length ? `no cell ${unknown.map((u) => `'${u}'`).join(", ")} in this table` : "name at least one cell"}; its cells are ${plan.cells.map((c) => c.id).join(", ")}`);
  return new Set(ids);
}

/** One notice per method for base fields that tune a policy the method does not have, and one per method and
 * density whose D density the base or set moves off the method's row. */
function printDropped(plan: TablePlan): void {
  const seen = new Set<string>();
  const once = (key: string, note: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    console.log(`  note: ${note}`);
  };
  for (const c of plan.cells) {
    for (const path of c.dropped) once(`${c.method}:${path}`, `${c.method} ignores the base experiment's ${path} (it has no such policy)`);
    if (c.rowDensityD !== undefined)
      once(
        `${c.method}@${c.density}:d_D`,
        `${c.method} at d_G ${c.density} starts D at d_D ${c.experiment.discriminator.density} (the table's discriminator.density), not at the ${c.rowDensityD} of the method's row: its results are not that row's`,
      );
  }
}

/** --plan: the cells, their FLOPs where known without training, and the time a short timing run predicts. */
async function printPlan(plan: TablePlan, states: ReturnType<typeof inspectCells>, slots: Slot[], timingIterations: number): Promise<number> {
  const slot = slots[0]!;
  const worker = await Worker.start({ env: slot.env, threads: slot.threads });
  try {
    return await timedPlan(worker, plan, states, slots, timingIterations);
  } catch (e) {
    // The worker refusing to build a cell (an npy file it must read for its shape, say) is the input's fault.
    throw refusedBuild(e, "--plan");
  } finally {
    await worker.stop();
  }
}

async function timedPlan(worker: Worker, plan: TablePlan, states: ReturnType<typeof inspectCells>, slots: Slot[], timingIterations: number): Promise<number> {
  const slot = slots[0]!;
  const perMethod = new Map<string, number>();
  // With --plan-iterations 0 nothing is timed: the layer table (for the FLOPs) needs only a build.
  let layers = timingIterations === 0 ? await prepareTiming(worker, plan.cells[0]!.experiment, slot.device) : [];
  for (const cell of plan.cells) {
    if (timingIterations === 0 || perMethod.has(cell.method)) continue;
    const t = await secondsPerIteration(worker, cell.experiment, slot.device, timingIterations);
    perMethod.set(cell.method, t.seconds);
    layers = t.layers;
  }
  console.log(`\n  ${"cell".padEnd(34)} ${"status".padEnd(22)} training FLOPs (paper convention)`);
  let remaining = 0;
  for (const cell of plan.cells) {
    const s = states.get(cell.id)!;
    const status = s.kind === "finished" ? "finished" : s.kind === "diverged" ? `diverged at ${s.at}` : s.kind === "interrupted" ? `at ${s.iter}/${cell.experiment.iterations}` : "new";
    // A density that leaves a layer without an active weight is refused when the cell starts: said here too.
    const empty = yetToStart(s) ? layersLeftEmpty(layers, startingMasks(layers, cell.experiment)) : [];
    const f = whyNeedsRun(cell.experiment) || empty.length ? null : planFlops(cell.experiment, layers);
    const flops = empty.length
      ? `refused when it starts: d_G ${cell.density} leaves ${count(empty.length, "layer")} without an active weight (${empty[0]!.net} ${empty[0]!.name}, ...)`
      : f?.known
        ? `${(100 * f.paper.ratio).toFixed(2)}% of dense`
        : "known after the run (BR control or global criteria)";
    console.log(`  ${cell.id.padEnd(34)} ${status.padEnd(22)} ${flops}`);
    if (!isSettled(s)) remaining += (cell.experiment.iterations - (s.kind === "interrupted" ? s.iter : 0)) * (perMethod.get(cell.method) ?? 0);
  }
  if (timingIterations === 0) return 0;
  const where = `${slot.label}${slot.threads ? `, ${count(slot.threads, "thread")}` : ""}`;
  console.log(
    `\ntiming (${count(timingIterations, "iteration")} after a warm-up, on ${where}): ` +
      [...perMethod].map(([m, s]) => `${m} ${s.toPrecision(3)} s/it`).join(", "),
  );
  console.log(
    `estimated training time left: ${duration(remaining / slots.length)} with ${slots.length} at a time ` +
      `(${duration(remaining)} of cell time; evaluations and mask updates not included; cells sharing a GPU slow each other)`,
  );
  return 0;
}
