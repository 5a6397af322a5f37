import { dirname, join, resolve } from "node:path";
import { ConfigError, type Experiment } from "../config/experiment.js";
import { experimentFrom, isModule, isTableFile, readingModule, readRaw } from "../config/load.js";
import { dropInapplicable } from "../config/method-policies.js";
import { presetPolicies } from "../config/presets.js";
import { setPath, SetOverrideError } from "../config/set-override.js";
import { preflight } from "../run/preflight.js";
import type { LayerInfo } from "../protocol/messages.js";
import { layersLeftEmpty, startingMasks } from "../sparsity/erk.js";
import { isJsonObject } from "../vocabulary/schema-shapes.js";
import { cellKeys, TableSpec } from "./spec.js";

/** From a table file to its cells: each (method, density, seed) is the base experiment with those three set,
 * the table's `set` applied, and the fields of policies that the method does not have dropped (one base
 * serves several methods; each drop is reported). Validation happens here, before anything runs. */

export interface Cell {
  id: string;
  method: Experiment["method"];
  density: number;
  seed: number;
  /** DIR/cells/<id> */
  dir: string;
  experiment: Experiment;
  /** Dotted paths of base fields that tune a policy this method does not have. */
  dropped: string[];
  /** D's density as the method's row has it (balance: d_G; strong: 1; strict: capped), where the base or the
   * table's set gives another: the cell then trains something other than the paper's row of that name. */
  rowDensityD?: number;
}

export interface TablePlan {
  spec: TableSpec;
  source: string;
  out: string;
  cells: Cell[];
  /** --extend: cells trained to fewer iterations than the table now asks for continue to the new count. */
  extend: boolean;
}

/** Reads and validates a table file (JSON, or a module whose default export is the table). */
export async function loadTableSpec(file: string): Promise<TableSpec> {
  let raw: unknown;
  try {
    raw = await readRaw(file);
  } catch (e) {
    throw e instanceof ConfigError ? new ConfigError(e.source, e.issues, "table") : e; // readRaw speaks of experiments
  }
  const parsed = readingModule(file, () => TableSpec.safeParse(raw));
  if (!parsed.success)
    throw new ConfigError(
      file,
      parsed.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
      "table",
    );
  return parsed.data;
}

/** The cells of `spec` (read from `source`) under `out`, in the order they run (cellKeys). Their paths are not
 * checked here (preflightCells does, for the cells about to train): listing, planning and writing the results
 * of a finished table need neither the data nor its variables. */
export async function planTable(spec: TableSpec, source: string, out: string, extend = false): Promise<TablePlan> {
  const { base, module } = await baseExperiment(spec, source);
  return readingModule(module ?? source, () => cellsOf(spec, source, out, extend, base, module));
}

function cellsOf(spec: TableSpec, source: string, out: string, extend: boolean, base: Record<string, unknown>, module?: string): TablePlan {
  const cells: Cell[] = [];
  for (const { id, method, density, seed, column } of cellKeys(spec)) {
    const { input, dropped } = dropInapplicable(method, { ...base, method, density, seed, name: `${spec.name}-${id}` });
    const experiment = asTableIssues(spec, () => experimentFrom(input, `${source} (cell ${id})`, false, module));
    if (experiment.generator.density !== density)
      throw new ConfigError(source, [
        { path: "generator.density", message: `the base (or set) fixes d_G at ${experiment.generator.density}, which would override the table's column ${column}; remove it: the columns are d_G` },
      ]);
    const rowDensityD = presetPolicies(method, density).discriminator.density;
    cells.push({ id, method, density, seed, dir: join(out, "cells", id), experiment, dropped, ...(experiment.discriminator.density !== rowDensityD ? { rowDensityD } : {}) });
  }
  return { spec, source, out, cells, extend };
}

/** `resolve`'s ConfigError as the table file's: a field the table's `set` gives is named as the key to edit
 * there (set["eval.samples"]), one of the base as the base's (base.train.lrG, or the base file's field), not as
 * a field of an experiment the user never wrote. */
function asTableIssues<T>(spec: TableSpec, resolve: () => T): T {
  try {
    return resolve();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const key = (path: string) => Object.keys(spec.set).find((k) => path === k || path.startsWith(`${k}.`));
    // What the table sets per cell is its lists (methods, densities, seeds) and its name; the rest is the base's.
    const perCell = (path: string) => ["method", "density", "seed", "name"].includes(path.split(".")[0]!);
    const issues = e.issues.map((i) => {
      const k = key(i.path);
      if (k !== undefined) return { ...i, path: `set["${k}"]${i.path.slice(k.length)}` };
      if (perCell(i.path)) return i;
      return { ...i, path: typeof spec.base === "string" ? `${i.path} (in the base, ${spec.base})` : `base.${i.path}` };
    });
    throw new ConfigError(e.source, issues, "table");
  }
}

/** The base with `set` applied, and the module it came from (where its own controllers are), if one. */
async function baseExperiment(spec: TableSpec, source: string): Promise<{ base: Record<string, unknown>; module?: string }> {
  let base: unknown = spec.base;
  let from = source;
  if (typeof base === "string") {
    from = resolve(dirname(source), base);
    base = await readRaw(from);
  }
  return readingModule(from, () => withSets(spec, source, from, base));
}

function withSets(spec: TableSpec, source: string, from: string, base: unknown): { base: Record<string, unknown>; module?: string } {
  if (!isJsonObject(base)) throw new ConfigError(from, [{ path: "", message: "the table's base must be an experiment object" }]);
  if (isTableFile(base))
    throw new ConfigError(source, [{ path: "base", message: `${from} is a table file, not an experiment: the base names the experiment every cell starts from` }], "table");
  let out = base;
  for (const [path, value] of Object.entries(spec.set)) {
    try {
      out = setPath(out, path.split("."), value);
    } catch (e) {
      if (e instanceof SetOverrideError) throw e.field === undefined ? new ConfigError(source, [{ path: `set.${path}`, message: e.message }]) : new ConfigError(from, [{ path: e.field, message: e.message }]);
      throw e;
    }
  }
  return { base: out, module: from !== source && isModule(from) ? from : undefined };
}

/** What the cells about to train need (data, Inception weights, their variables), checked before any starts: a
 * missing path would fail every cell the same way, one worker start at a time. */
export function preflightCells(file: string, cells: readonly Cell[]): void {
  for (const c of cells) preflight(c.experiment, `${file} (cell ${c.id})`);
}

/** The layer table of a cell's networks (what the worker's `build` answers); the same for cells of one network. */
export type LayerTable = (exp: Experiment) => Promise<readonly LayerInfo[]>;

/** The cells about to train whose starting densities leave a layer without an active weight, which a run refuses
 * when it starts (as `--plan` says): refused here, before any starts, rather than by one worker start per cell
 * and a failure that the same command would only repeat. One refusal names every method and density at fault. */
export async function preflightDensities(file: string, cells: readonly Cell[], layersOf: LayerTable): Promise<void> {
  const tables = new Map<string, Promise<readonly LayerInfo[]>>();
  const groups = new Map<string, { cells: Cell[]; empty: ReturnType<typeof layersLeftEmpty> }>();
  for (const c of cells) {
    // The table's cells share their networks (one base); built once per network, should that ever differ.
    const key = JSON.stringify([c.experiment.model, c.experiment.data]);
    if (!tables.has(key)) tables.set(key, layersOf(c.experiment));
    const layers = await tables.get(key)!;
    const empty = layersLeftEmpty(layers, startingMasks(layers, c.experiment));
    if (empty.length === 0) continue;
    const at = `${c.method}@${c.density}`;
    groups.set(at, { cells: [...(groups.get(at)?.cells ?? []), c], empty });
  }
  if (groups.size === 0) return;
  const issues = [...groups.values()].map(({ cells: [c, ...more], empty }) => {
    const shown = empty.slice(0, 3).map((l) => `${l.net} ${l.name}: ${l.weights} weights at density ${l.density.toPrecision(3)}`);
    return {
      path: "densities",
      message:
        `${c!.method} at d_G ${c!.density} (d_D ${c!.experiment.discriminator.density}; cell${more.length ? "s" : ""} ${[c!, ...more].map((x) => x.id).join(", ")}) ` +
        `leaves ${empty.length} layer${empty.length === 1 ? "" : "s"} without an active weight (${shown.join("; ")}${empty.length > 3 ? `; and ${empty.length - 3} more` : ""}), ` +
        "which a run refuses when it starts, every time: raise the density, or leave it out of the table",
    };
  });
  throw new ConfigError(file, issues, "table");
}
