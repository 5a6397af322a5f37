import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Summary } from "../../src/run/records.js";
import { configuredPrimary } from "../../src/run/evaluation.js";
import { finalMetric } from "../../src/run/run-status.js";
import { adoptPlannedSettings, cellState, checkCellConfig, HOW_IT_RUNS } from "../../src/table/cell-state.js";
import { configChanges, editsSinceCheckpoint } from "../../src/config/config-changes.js";
import { checkTableDir, configConflicts, extendCells, failedCells, settledCells, inspectCells, writeResults } from "../../src/table/run-table.js";
import { loadTableSpec, planTable, preflightDensities } from "../../src/table/cells.js";
import { assignSlots, checkGpuIndices, parseDevices } from "../../src/table/devices.js";
import { unplannedCells } from "../../src/table/unplanned-cells.js";
import { duration, TableProgress } from "../../src/table/progress.js";
import { num, tableCsv, tableMarkdown } from "../../src/table/render.js";
import { stat, tableResult, type SettledCell } from "../../src/table/results.js";
import { TableSpec } from "../../src/table/spec.js";
import { toyExperiment, toyInput } from "../toy.js";
import { tempDir } from "../integration/helpers.js";
import { tableStatus } from "../../src/commands/table-slurm.js";

const base = toyInput({ iterations: 100, discriminator: { controller: { every: 50, window: 50 } } });

const spec = (extra: object = {}) => TableSpec.parse({ name: "t", base, methods: ["static-balance", "adapt-relax"], densities: [0.1, 0.3], seeds: [0, 1], ...extra });

/** A checkpoint's run state at iteration `iter` (what checkpoint.json holds beside the worker file). */
const runState = (iter: number) => ({ iter, densityD: 0.1, window: { size: 10, ratios: [] }, lossSum: { d: 0, g: 0, n: 0 }, flops: { paper: { generator: 0, discriminator: 0 }, executed: { generator: 0, discriminator: 0 } }, restarts: 0, wallSeconds: 1, eval: { final: null, best: null }, metricsBytes: 0 });

function summary(method: string, metric: number | null, flops: number, densityD: number): Summary {
  const metrics: Record<string, number> = metric === null ? {} : { kl: metric };
  return {
    name: "x",
    method,
    iterations: 100,
    seed: 0,
    device: "cpu",
    wallSeconds: 1,
    worker: { python: "3", torch: "2", threads: 1 },
    final: { densityG: 0.1, densityD, br: 0.5 },
    flops: { convention: "paper", generator: 1, discriminator: 1, total: 2, ratio: flops, executed: { generator: 1, discriminator: 1, total: 2, ratio: flops } },
    restarts: 0,
    eval: { final: { iter: 100, metrics }, best: null, primary: metric === null ? null : "kl" },
  };
}

/** A summary written by the cell itself: its run's name, method and seed. */
const cellSummary = (cell: { id: string; method: string; seed: number }, metric: number | null, flops: number, densityD: number): Summary => ({
  ...summary(cell.method, metric, flops, densityD),
  name: `t-${cell.id}`,
  seed: cell.seed,
});

describe("table spec", () => {
  it("refuses two names of one method, which would train the same cells twice", () => {
    const r = TableSpec.safeParse({ name: "t", base, methods: ["adapt-relax", "dense", "ddst-relax"], densities: [0.1], seeds: [0] });
    expect(r.success ? [] : r.error.issues.map((i) => i.message)).toEqual(['"adapt-relax" and "ddst-relax" name one method: list it once']);
  });

  it("accepts a grid and rejects duplicates, per-cell fields in set, and paper keys that name no cell", () => {
    expect(spec().paper).toEqual({});
    const bad = TableSpec.safeParse({
      name: "t",
      base,
      methods: ["dda", "dda"],
      densities: [0.1],
      seeds: [0],
      set: { seed: 3 },
      paper: { "dda@0.2": 1 },
      paperFlops: { "adapt-relax@0.1": 0.3, "dda@0.10": 0.2 },
    });
    expect(bad.success).toBe(false);
    const messages = bad.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        'methods: "dda" is listed twice',
        "set.seed: seed is set per cell by the table; remove it from set",
        expect.stringMatching(/^paper\.dda@0\.2: .*names no cell/),
        expect.stringMatching(/^paperFlops\.adapt-relax@0\.1: .*names no cell/),
        expect.stringMatching(/^paperFlops\.dda@0\.10: .*names no cell/),
      ]),
    );
  });
});

describe("planTable", () => {
  it("makes one cell per method, density and seed (dense once per seed), applies set, and drops policies a method lacks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const file = join(dir, "t.json");
    writeFileSync(join(dir, "base.json"), JSON.stringify(base));
    const s = TableSpec.parse({ name: "t", base: "base.json", methods: ["dense", "static-balance", "adapt-relax"], densities: [0.1, 0.3], seeds: [0, 1], set: { "log.every": 5 } });
    const plan = await planTable(s, file, join(dir, "out"));
    expect(plan.cells.map((c) => c.id)).toEqual([
      "dense-s0",
      "static-balance-d0.1-s0",
      "adapt-relax-d0.1-s0",
      "static-balance-d0.3-s0",
      "adapt-relax-d0.3-s0",
      "dense-s1",
      "static-balance-d0.1-s1",
      "adapt-relax-d0.1-s1",
      "static-balance-d0.3-s1",
      "adapt-relax-d0.3-s1",
    ]);
    const cell = plan.cells.find((c) => c.id === "adapt-relax-d0.3-s1")!;
    expect(cell.dir).toBe(join(dir, "out", "cells", "adapt-relax-d0.3-s1"));
    expect(cell.experiment).toMatchObject({ method: "adapt-relax", density: 0.3, seed: 1, name: "t-adapt-relax-d0.3-s1", log: { every: 5 } });
    expect(cell.experiment.discriminator.controller).toMatchObject({ every: 50, window: 50 });
    expect(cell.dropped).toEqual([]);
    const staticCell = plan.cells.find((c) => c.id === "static-balance-d0.1-s0")!;
    expect(staticCell.dropped).toEqual(["discriminator.controller"]);
    expect(staticCell.experiment.discriminator.controller).toBeNull();
    expect(plan.cells[0]!.experiment.generator.density).toBe(1);
  });

  it("marks cells whose D density the base or set moves off the method's row", async () => {
    const plain = await planTable(spec(), "t.json", "out");
    expect(plain.cells.every((c) => c.rowDensityD === undefined)).toBe(true);
    const moved = await planTable(spec({ methods: ["static-balance", "static-strong", "adapt-relax"], set: { "discriminator.density": 0.3 } }), "t.json", "out");
    const at = (id: string) => moved.cells.find((c) => c.id === id)!;
    expect(at("static-balance-d0.1-s0")).toMatchObject({ rowDensityD: 0.1, experiment: { discriminator: { density: 0.3 } } });
    expect(at("static-strong-d0.1-s0").rowDensityD).toBe(1);
    expect(at("adapt-relax-d0.3-s0").rowDensityD).toBeUndefined(); // d_G 0.3: the row's own d_D
  });

  it("names a bad value the table's set gives as the set's key, the table file being what to edit", async () => {
    await expect(planTable(spec({ set: { "train.lrG": -1 } }), "t.json", "out")).rejects.toThrow(/^invalid table t\.json \(cell [^)]*\):\n {2}- set\["train\.lrG"\]: /);
    await expect(planTable(spec({ set: { train: { lrG: -1 } } }), "t.json", "out")).rejects.toThrow(/- set\["train"\]\.lrG: /);
    // One of the base: named where it is written.
    await expect(planTable(spec({ base: { ...base, train: { lrG: -1 } } }), "t.json", "out")).rejects.toThrow(/- base\.train\.lrG: /);
  });

  it("refuses a base that fixes d_G, which would override the columns", async () => {
    const s = TableSpec.parse({ name: "t", base: { ...base, generator: { density: 0.1 } }, methods: ["adapt-relax"], densities: [0.1, 0.5], seeds: [0] });
    await expect(planTable(s, "t.json", "out")).rejects.toThrow(/generator.density: the base \(or set\) fixes d_G at 0.1, which would override the table's column 0.5/);
  });
});

describe("preflightDensities", () => {
  it("refuses the cells whose starting masks leave a layer without an active weight, naming each method, density and layer", async () => {
    const dir = tempDir();
    const plan = await planTable(spec({ densities: [0.1, 0.001] }), join(dir, "t.json"), join(dir, "out"));
    // One layer of 100 weights per network: d 0.001 leaves it 0.1 active weights, none.
    const layers = (["generator", "discriminator"] as const).map((net) => ({ net, name: "w", shape: [10, 10], maskable: true, numel: 100, macs: 100 }));
    let builds = 0;
    const layersOf = async () => (builds++, layers);
    await expect(preflightDensities("t.json", plan.cells.filter((c) => c.density === 0.1), layersOf)).resolves.toBeUndefined();
    expect(builds).toBe(1); // the cells share their networks: built once
    const refused = preflightDensities("t.json", plan.cells, layersOf);
    await expect(refused).rejects.toThrow(
      /^invalid table t\.json:\n {2}- densities: static-balance at d_G 0\.001 \(d_D [\d.e-]+; cells static-balance-d0\.001-s0, static-balance-d0\.001-s1\) leaves \d layers? without an active weight \(generator w: 100 weights at density 0\.00100[^)]*\), which a run refuses when it starts, every time: raise the density, or leave it out of the table\n {2}- densities: adapt-relax at d_G 0\.001 /,
    );
    await expect(refused).rejects.not.toThrow(/d_G 0\.1 /);
  });
});

describe("checkTableDir", () => {
  it("takes a missing, empty or table directory and refuses a run's or the user's, naming what is there", () => {
    const root = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const dir = (name: string, files: string[]) => {
      const d = join(root, name);
      mkdirSync(d);
      for (const f of files) if (f.endsWith("/")) mkdirSync(join(d, f));
      else writeFileSync(join(d, f), "x");
      return d;
    };
    checkTableDir(join(root, "missing"));
    checkTableDir(dir("empty", []));
    checkTableDir(dir("started", ["table.lock", "cells/", "slurm/"])); // a first command stopped before its spec
    checkTableDir(dir("writing", ["cells/", "table-spec.json.node1.4242.tmp", ".gitkeep"])); // a --cells task writing it
    checkTableDir(dir("table", ["table-spec.json", "table.md", "table.csv", "table.json", "cells/", "report.html"]));
    expect(() => checkTableDir(dir("notes", ["table.md", "todo.txt"]))).toThrow(/notes is a directory holding table\.md, todo\.txt, not a ddst table directory .*choose another --out/);
    expect(() => checkTableDir(dir("run", ["config.json", "metrics.jsonl", "checkpoints/"]))).toThrow(/run is a ddst run, not a ddst table directory/);
    writeFileSync(join(root, "file"), "x");
    expect(() => checkTableDir(join(root, "file"))).toThrow(/file is a file, not a directory/);
    expect(() => checkTableDir("")).toThrow("--out is empty");
  });
});

describe("checkCellConfig", () => {
  it("reads a stored config through today's schema, so a field added later with a default is no change", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const plan = await planTable(spec(), join(dir, "t.json"), join(dir, "out"));
    const cell = plan.cells[0]!;
    mkdirSync(cell.dir, { recursive: true });
    const { ema: _ema, ...olderTrain } = cell.experiment.train;
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...cell.experiment, train: olderTrain }));
    expect(() => checkCellConfig(cell)).not.toThrow();
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...cell.experiment, iterations: 99 }));
    expect(() => checkCellConfig(cell)).toThrow(/iterations: 99 -> 100/);
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...cell.experiment, iterations: "many" }));
    expect(() => checkCellConfig(cell)).toThrow(/config.json is not a valid experiment \(iterations: .*\); the cell cannot be resumed: remove .* to train it anew/);
  });
});

describe("cellState", () => {
  it("takes a damaged summary for an unfinished cell and names the way out of a damaged pointer", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const cell = (await planTable(spec(), join(dir, "t.json"), join(dir, "out"))).cells[0]!;
    expect(cellState(cell)).toEqual({ kind: "new" });
    mkdirSync(cell.dir, { recursive: true });
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify(cell.experiment));
    expect(cellState(cell)).toEqual({ kind: "unstarted" });
    const state = runState(100);
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 100, worker: "checkpoints/iter-000000100.pt", state }));
    writeFileSync(join(cell.dir, "summary.json"), '{"name": "x", "me');
    expect(cellState(cell)).toEqual({ kind: "interrupted", iter: 100 });
    // One that is there but cannot be read is no damaged one: the cell is not trained again over it.
    rmSync(join(cell.dir, "summary.json"));
    mkdirSync(join(cell.dir, "summary.json"));
    expect(() => cellState(cell)).toThrow(/^cell .*: .*summary.json cannot be read \(EISDIR\): fix its permissions or put the right file back$/);
    rmSync(join(cell.dir, "summary.json"), { recursive: true });
    writeFileSync(join(cell.dir, "checkpoint.json"), '{"iter": 10');
    expect(() => cellState(cell)).toThrow(/cannot read .*checkpoint.json: .*; the cell cannot be resumed: remove .* to train it anew/);
  });

  it("takes a directory without checkpoint.json for unstarted only while it holds no training: a trained one is never emptied", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const cell = (await planTable(spec(), join(dir, "t.json"), join(dir, "out"))).cells[0]!;
    mkdirSync(join(cell.dir, "checkpoints"), { recursive: true });
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify(cell.experiment));
    // What a run that died before its first checkpoint leaves: iteration 0's record and worker file, a cut record.
    writeFileSync(join(cell.dir, "metrics.jsonl"), '{"iter":0,"kind":"density","generator":0.1,"discriminator":0.1}\n{"iter":1');
    writeFileSync(join(cell.dir, "checkpoints", "iter-000000000.pt"), "");
    expect(cellState(cell)).toEqual({ kind: "unstarted" });
    const refused = (what: string) => new RegExp(`cell ${cell.id}: .* holds training \\(${what}\\) but no checkpoint\\.json.*: restore checkpoint\\.json .* or remove .* to train it anew`);
    writeFileSync(join(cell.dir, "metrics.jsonl"), '{"iter":0,"kind":"density","generator":0.1,"discriminator":0.1}\n{"iter":10,"kind":"loss","d":1,"g":1}\n');
    expect(() => cellState(cell)).toThrow(refused("metrics.jsonl records past iteration 0"));
    writeFileSync(join(cell.dir, "checkpoints", "iter-000000100.pt"), "");
    expect(() => cellState(cell)).toThrow(refused("checkpoints/iter-000000100.pt"));
    writeFileSync(join(cell.dir, "summary.json"), JSON.stringify(cellSummary(cell, 1, 0.1, 0.1)));
    expect(() => cellState(cell)).toThrow(refused("summary.json"));
    // Refused, not counted and not started: the table names it; the results leave it out.
    const plan = await planTable(spec(), join(dir, "t.json"), join(dir, "out"));
    expect(() => inspectCells(plan)).toThrow(refused("summary.json"));
    expect(settledCells(plan)).toEqual([]);
  });
});

describe("a table file edited while its cells are on disk", () => {
  it("is refused even for an array task's own untouched cells, and a cell of the old file stays out of the results", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const plan = await planTable(spec(), join(dir, "t.json"), join(dir, "out"));
    const [trained, mine] = [plan.cells[0]!, plan.cells[1]!];
    // A finished cell trained under another learning rate (the table file was edited after it ran).
    mkdirSync(trained.dir, { recursive: true });
    writeFileSync(join(trained.dir, "config.json"), JSON.stringify({ ...trained.experiment, train: { ...trained.experiment.train, lrG: 0.123 } }));
    const state = runState(100);
    writeFileSync(join(trained.dir, "checkpoint.json"), JSON.stringify({ iter: 100, worker: "checkpoints/iter-000000100.pt", state }));
    writeFileSync(join(trained.dir, "summary.json"), JSON.stringify(cellSummary(trained, 1, 0.1, 0.1)));
    expect(cellState(trained).kind).toBe("finished");
    expect(() => inspectCells(plan, new Set([mine.id]))).toThrow(new RegExp(`cell ${trained.id}: .*train\\.lrG: 0\\.123 -> 0\\.0002`));
    expect(settledCells(plan)).toEqual([]);
    expect(configConflicts(plan)).toHaveLength(1);
    // Its config.json edited to match the new file: its checkpoint still says what was trained.
    writeFileSync(join(trained.dir, "config.json"), JSON.stringify(trained.experiment));
    const trainedWith = { ...trained.experiment, train: { ...trained.experiment.train, lrG: 0.123 } };
    writeFileSync(join(trained.dir, "checkpoint.json"), JSON.stringify({ iter: 100, worker: "checkpoints/iter-000000100.pt", state, config: trainedWith }));
    expect(() => checkCellConfig(trained)).toThrow(/config\.json was edited after its checkpoint \(train\.lrG: 0\.123 -> 0\.0002\)/);
    expect(settledCells(plan)).toEqual([]);
    // Another cell's directory copied over this one: the remedy is the directory, not the table file.
    const other = plan.cells.find((c) => c.seed !== trained.seed && c.method === trained.method && c.density === trained.density)!;
    writeFileSync(join(trained.dir, "config.json"), JSON.stringify(other.experiment));
    writeFileSync(join(trained.dir, "checkpoint.json"), JSON.stringify({ iter: 100, worker: "checkpoints/iter-000000100.pt", state, config: other.experiment }));
    expect(() => checkCellConfig(trained)).toThrow(new RegExp(`holds another cell's training \\(${other.method} at d_G ${other.density}, seed ${other.seed}\\): put it back where it came from, or remove .* to train this cell anew$`));
    // A cell that cannot be read belongs to its own task: another task goes on, and writes the results without it.
    writeFileSync(join(trained.dir, "checkpoint.json"), '{"iter": 10');
    expect(inspectCells(plan, new Set([mine.id])).get(mine.id)).toEqual({ kind: "new" });
    expect(settledCells(plan)).toEqual([]);
  });
});

describe("a cell holding another run's files", () => {
  it("names a foreign summary.json as such, whatever else differs (a count --extend would take), and a copied directory as another cell's", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const plan = await planTable(spec(), join(dir, "t.json"), join(dir, "out"));
    const [cell, other] = [plan.cells[0]!, plan.cells.find((c) => c.seed !== plan.cells[0]!.seed && c.method === plan.cells[0]!.method && c.density === plan.cells[0]!.density)!];
    const shorter = { ...cell.experiment, iterations: 50 };
    mkdirSync(cell.dir, { recursive: true });
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify(shorter));
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 50, worker: "checkpoints/iter-000000050.pt", state: runState(50), config: shorter }));
    writeFileSync(join(cell.dir, "summary.json"), JSON.stringify({ ...cellSummary(other, 1, 0.1, 0.1), iterations: 50 }));
    expect(() => cellState(cell)).toThrow(/summary\.json is another run's \(t-.*-s1: static-balance, seed 1\), not this cell's/);
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...other.experiment, iterations: 50 }));
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 50, worker: "checkpoints/iter-000000050.pt", state: runState(50), config: { ...other.experiment, iterations: 50 } }));
    expect(() => cellState(cell)).toThrow(/holds another cell's training \(static-balance at d_G 0\.1, seed 1\)/);
  });
});

describe("a cell trained by an earlier ddst", () => {
  it("is told the table's set that finishes it with that ddst's defaults (evaluation by running averages, 500 at a time, no flips)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const cifar = { ...base, model: { name: "dcgan32" }, data: { name: "cifar10", path: "/d" }, eval: { samples: 100, inception: "/w.pth" } };
    const plan = await planTable(TableSpec.parse({ name: "t", base: cifar, methods: ["static-balance"], densities: [0.1], seeds: [0] }), join(dir, "t.json"), join(dir, "out"));
    const cell = plan.cells[0]!;
    // Its config.json as that ddst wrote it: no eval.batchNorm, no data.hflip, eval.batchSize its default of then.
    const old = JSON.parse(JSON.stringify(cell.experiment));
    delete old.eval.batchNorm;
    delete old.data.hflip;
    old.eval.batchSize = 500;
    mkdirSync(cell.dir, { recursive: true });
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify(old));
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 50, worker: "checkpoints/iter-000000050.pt", state: runState(50), config: old }));
    expect(() => checkCellConfig(cell)).toThrow(
      'trained by an earlier ddst (its evaluations sampled by BatchNorm\'s running averages, 500 at a time, its training images unflipped): to finish the table as it began, add "eval.batchNorm": "running", "eval.batchSize": 500, "data.hflip": false to the table file\'s "set"',
    );
    // An SNGAN cell of then also trained at the generic batches and n_critic, which its network no longer defaults to.
    const sngan = await planTable(TableSpec.parse({ name: "t", base: { ...cifar, model: { name: "sngan32" }, train: {} }, methods: ["static-balance"], densities: [0.1], seeds: [0] }), join(dir, "t.json"), join(dir, "out2"));
    const snCell = sngan.cells[0]!;
    const then = JSON.parse(JSON.stringify(snCell.experiment));
    delete then.eval.batchNorm;
    delete then.data.hflip;
    then.eval.batchSize = 500;
    then.train = { ...then.train, batchSize: 256, nCritic: 1 };
    delete then.train.genBatchSize;
    mkdirSync(snCell.dir, { recursive: true });
    writeFileSync(join(snCell.dir, "config.json"), JSON.stringify(then));
    writeFileSync(join(snCell.dir, "checkpoint.json"), JSON.stringify({ iter: 50, worker: "checkpoints/iter-000000050.pt", state: runState(50), config: then }));
    expect(() => checkCellConfig(snCell)).toThrow(/D's batch 256, G's batch 256, n_critic 1\): to finish the table as it began, add .*"train\.batchSize": 256, "train\.genBatchSize": 256, "train\.nCritic": 1 to the table file's "set"/);
    // A cell of today's ddst that differs in the same fields was configured so: no such hint.
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...cell.experiment, eval: { ...cell.experiment.eval, batchSize: 500 } }));
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 50, worker: "checkpoints/iter-000000050.pt", state: runState(50), config: { ...cell.experiment, eval: { ...cell.experiment.eval, batchSize: 500 } } }));
    expect(() => checkCellConfig(cell)).toThrow(/eval\.batchSize: 500 -> 100\)\. Restore the table file, or write this table to another --out\.$/);
  });
});

describe("a cell whose training diverged", () => {
  it("is settled, with what stopped it, while a cell that failed otherwise is tried again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const plan = await planTable(spec(), join(dir, "t.json"), join(dir, "out"));
    const cell = plan.cells[0]!;
    mkdirSync(cell.dir, { recursive: true });
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify(cell.experiment));
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 50, worker: "checkpoints/iter-000000050.pt", state: runState(50) }));
    const failure = { error: "training diverged at iteration 61: the D loss is NaN. metrics.jsonl goes up to iteration 50", iter: 50, at: "2026-11-26T00:00:00Z" };
    writeFileSync(join(cell.dir, "failed.json"), JSON.stringify({ ...failure, error: "the worker died (signal SIGKILL)" }));
    expect(cellState(cell)).toEqual({ kind: "interrupted", iter: 50 });
    expect(settledCells(plan)).toEqual([]);
    writeFileSync(join(cell.dir, "failed.json"), JSON.stringify({ ...failure, divergedAt: 61 }));
    expect(cellState(cell)).toEqual({ kind: "diverged", iter: 50, at: 61, error: failure.error });
    expect(inspectCells(plan).get(cell.id)!.kind).toBe("diverged");
    expect(settledCells(plan)).toEqual([{ method: cell.method, density: cell.density, seed: cell.seed, divergedAt: 61 }]);
    // It diverged within any count from 61 on: a table raised to more (with --extend) needs only the count of it;
    // one that stops before 61 (the cell is at 50) is another table.
    const longer = (await planTable(TableSpec.parse({ ...spec(), base: { ...base, iterations: 400 } }), join(dir, "t.json"), join(dir, "out"))).cells[0]!;
    expect(() => checkCellConfig(longer, false, cellState(longer))).toThrow(/add --extend to give the table 400 iterations \(this cell ended at iteration 61, diverged: it needs no training, only the new count\)/);
    expect(() => checkCellConfig(longer, true, cellState(longer))).not.toThrow();
    const shorter = (await planTable(TableSpec.parse({ ...spec(), base: { ...base, iterations: 55 } }), join(dir, "t.json"), join(dir, "out"))).cells[0]!;
    expect(() => checkCellConfig(shorter, true, cellState(shorter))).toThrow(/\(iterations: 100 -> 55\)\. .*; it is past 55 iterations \(at 61\): remove .* to train it anew\.$/);
    // A record of a ddst before divergedAt says it in its message only.
    writeFileSync(join(cell.dir, "failed.json"), JSON.stringify(failure));
    expect(cellState(cell)).toMatchObject({ kind: "diverged", at: 61 });
    writeFileSync(join(cell.dir, "failed.json"), JSON.stringify({ ...failure, divergedAt: 61 }));
    // A diverged cell of another configuration is a conflict like any other.
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...cell.experiment, train: { ...cell.experiment.train, lrD: 0.5 } }));
    expect(settledCells(plan)).toEqual([]);
    expect(() => inspectCells(plan)).toThrow(/train\.lrD: 0\.5 -> /);
  });
});

describe("--extend", () => {
  it("takes a cell from its checkpoint to the table's count, up or down, never below where it is", async () => {
    const dir = tempDir();
    const at = (iterations: number) => planTable(TableSpec.parse({ ...spec(), base: { ...base, iterations } }), join(dir, "t.json"), join(dir, "out")).then((p) => p.cells[0]!);
    // An extension to 3000 interrupted at 60: config.json says 3000; the table file is set back to 60.
    const cell = await at(60);
    mkdirSync(cell.dir, { recursive: true });
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...cell.experiment, iterations: 3000 }));
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 60, worker: "checkpoints/iter-000000060.pt", state: runState(60) }));
    expect(cellState(cell)).toEqual({ kind: "interrupted", iter: 60 });
    expect(() => checkCellConfig(cell, false)).toThrow(/\(iterations: 3000 -> 60\)\. .*; or add --extend to continue the cell from its checkpoint \(iteration 60\) to 60 iterations/);
    expect(() => checkCellConfig(cell, true)).not.toThrow();
    expect(() => checkCellConfig(cell, true)).not.toThrow();
    const below = await at(50);
    expect(() => checkCellConfig(below, true)).toThrow(/\(iterations: 3000 -> 50\)\. .*; it is past 50 iterations \(at 60\): remove .* to train it anew\.$/);
  });

  it("records the table's count in the cells, so that --status and later commands take them as the table's", async () => {
    const dir = tempDir();
    const plan = await planTable(TableSpec.parse({ ...spec(), base: { ...base, iterations: 200 } }), join(dir, "t.json"), join(dir, "out"), true);
    const cell = plan.cells[0]!;
    mkdirSync(cell.dir, { recursive: true });
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...cell.experiment, iterations: 100 }));
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 100, worker: "checkpoints/iter-000000100.pt", state: runState(100) }));
    writeFileSync(join(cell.dir, "summary.json"), JSON.stringify(cellSummary(cell, 1, 0.1, 0.1)));
    const row = async () => (await tableStatus(plan)).find((r) => r.id === cell.id)!;
    expect(await row()).toMatchObject({ state: "done", progress: "100/100" });
    expect(() => inspectCells({ ...plan, extend: false })).toThrow(/iterations: 100 -> 200/);
    extendCells(plan.cells, (text) => expect.fail(text));
    expect(await row()).toMatchObject({ state: "stopped", progress: "100/200" });
    expect(inspectCells({ ...plan, extend: false }).get(cell.id)).toEqual({ kind: "interrupted", iter: 100 });
  });

  it("lets an array task go on beside another task's cell that keeps its count (it was being trained at --extend)", async () => {
    const dir = tempDir();
    const plan = await planTable(TableSpec.parse({ ...spec(), base: { ...base, iterations: 200 } }), join(dir, "t.json"), join(dir, "out"));
    const [busy, mine] = [plan.cells[0]!, plan.cells[1]!];
    mkdirSync(busy.dir, { recursive: true });
    writeFileSync(join(busy.dir, "config.json"), JSON.stringify({ ...busy.experiment, iterations: 100 }));
    writeFileSync(join(busy.dir, "checkpoint.json"), JSON.stringify({ iter: 100, worker: "checkpoints/iter-000000100.pt", state: runState(100) }));
    writeFileSync(join(busy.dir, "summary.json"), JSON.stringify(cellSummary(busy, 1, 0.1, 0.1)));
    expect(inspectCells(plan, new Set([mine.id])).get(mine.id)).toEqual({ kind: "new" });
    // Its own cell, or the whole table, is held to the count; the results leave the cell out until it has it.
    expect(() => inspectCells(plan, new Set([busy.id]))).toThrow(/iterations: 100 -> 200/);
    expect(() => inspectCells(plan)).toThrow(/iterations: 100 -> 200/);
    expect(settledCells(plan)).toEqual([]);
    // A renamed table is the same table.
    const renamed = await planTable(TableSpec.parse({ ...spec(), name: "t2", base: { ...base, iterations: 200 } }), join(dir, "t.json"), join(dir, "out"), true);
    expect(renamed.cells[0]!.experiment.name).not.toBe(busy.experiment.name);
    expect(inspectCells(renamed).get(busy.id)).toEqual({ kind: "interrupted", iter: 100 });
    // Past the count is another table, for every task.
    writeFileSync(join(busy.dir, "config.json"), JSON.stringify({ ...busy.experiment, iterations: 300 }));
    writeFileSync(join(busy.dir, "checkpoint.json"), JSON.stringify({ iter: 300, worker: "checkpoints/iter-000000300.pt", state: runState(300) }));
    expect(() => inspectCells(plan, new Set([mine.id]))).toThrow(/iterations: 300 -> 200/);
  });
});

describe("a table moved to another machine", () => {
  it("lets its cells' data paths (and how often they log and evaluate, and how CUDA steps run) change, and resumes them with the new ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const moved = TableSpec.parse({ name: "t", base: { ...base, data: { name: "npy", path: "/new/points.npy" } }, methods: ["static-balance"], densities: [0.1], seeds: [0] });
    const cell = (await planTable(moved, join(dir, "t.json"), join(dir, "out"))).cells[0]!;
    mkdirSync(cell.dir, { recursive: true });
    const before = { ...cell.experiment, data: { name: "npy", path: "/old/points.npy" }, log: { ...cell.experiment.log, every: 7 },
      train: { ...cell.experiment.train, cudaGraphs: false } };
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify(before));
    writeFileSync(join(cell.dir, "checkpoint.json"), "{}"); // an interrupted cell's (its content is not read here)
    expect(() => checkCellConfig(cell)).not.toThrow();
    adoptPlannedSettings(cell);
    const after = JSON.parse(readFileSync(join(cell.dir, "config.json"), "utf8"));
    expect(after).toEqual(JSON.parse(JSON.stringify({ ...before, data: { name: "npy", path: "/new/points.npy" }, log: cell.experiment.log, train: cell.experiment.train })));
    expect(after.train.cudaGraphs).toBe(true);
  });
});

describe("editsSinceCheckpoint", () => {
  it("lets a resume change how often the run logs and evaluates, not what it logs or evaluates", () => {
    const trained = toyExperiment({ eval: { every: 100, samples: 500 }, log: { every: 10 } });
    const edit = (e: object) => editsSinceCheckpoint({ ...trained, ...e }, trained);
    expect(edit({ log: { ...trained.log, every: 5 }, eval: { ...trained.eval!, every: 50 } })).toEqual([]);
    expect(edit({ log: { ...trained.log, probeEvery: 3 }, eval: { ...trained.eval!, samples: 100 } })).toEqual(["eval.samples: 500 -> 100", "log.probeEvery: (absent) -> 3"]);
    expect(edit({ eval: null })).toEqual([`eval: ${JSON.stringify(trained.eval)} -> null`]);
    // How CUDA steps are executed is no change of what is trained; TF32 is.
    expect(edit({ train: { ...trained.train, cudaGraphs: false, channelsLast: false, compile: true } })).toEqual([]);
    expect(edit({ train: { ...trained.train, tf32: false } })).toEqual(["train.tf32: true -> false"]);
    // An experiment's own controllers may be called at evaluations and see the loss records: there the cadence decides.
    const steered = { ...trained, controllers: [{ name: "mine", module: "/x/exp.ts" }] };
    expect(editsSinceCheckpoint({ ...steered, log: { ...trained.log, every: 5 }, eval: { ...trained.eval!, every: 50 } }, steered)).toEqual(["eval.every: 100 -> 50", "log.every: 10 -> 5"]);
  });
});

describe("configChanges", () => {
  it("lists the differing fields by path, ignoring how a cell runs (device, supervision, checkpoints)", () => {
    const a = { iterations: 100, device: "cpu", train: { lrG: 1e-3, betas: [0.5, 0.9] }, supervision: { maxRestarts: 2 }, checkpoint: { every: 100 } };
    expect(configChanges(a, { ...a, device: "cuda", supervision: { maxRestarts: 5 }, checkpoint: { every: 50 } }, HOW_IT_RUNS)).toEqual([]);
    expect(configChanges(a, { ...a, iterations: 200, train: { lrG: 1e-3, betas: [0, 0.9] }, eval: null }, HOW_IT_RUNS)).toEqual([
      "eval: (absent) -> null",
      "iterations: 100 -> 200",
      "train.betas: [0.5,0.9] -> [0,0.9]",
    ]);
    // Dotted fields: a resume lets the paths of files change, not the rest of their block.
    const data = { data: { name: "npy", path: "/a.npy" } };
    expect(configChanges(data, { data: { name: "npy", path: "/b.npy" } }, new Set(["data.path"]))).toEqual([]);
    expect(configChanges(data, { data: { name: "folder", path: "/b" } }, new Set(["data.path"]))).toEqual(['data.name: "npy" -> "folder"']);
  });
});

describe("results", () => {
  it("computes the mean and the sample standard deviation", () => {
    expect(stat([])).toEqual({ values: [], mean: null, std: null });
    expect(stat([2])).toEqual({ values: [2], mean: 2, std: null });
    expect(stat([0.1, 0.1, 0.1]).std).toBe(0); // not the rounding error of the mean
    const s = stat([1, 2, 3, 4]);
    expect(s.mean).toBe(2.5);
    expect(s.std).toBeCloseTo(Math.sqrt(5 / 3), 12);
  });

  it("aggregates finished cells over seeds, with the paper's number beside them", () => {
    const finished: SettledCell[] = [
      { method: "adapt-relax", density: 0.1, seed: 0, summary: summary("adapt-relax", 1.0, 0.4, 0.2) },
      { method: "adapt-relax", density: 0.1, seed: 1, summary: summary("adapt-relax", 3.0, 0.6, 0.3) },
      { method: "static-balance", density: 0.1, seed: 0, summary: summary("static-balance", null, 0.1, 0.1) },
      { method: "static-balance", density: 0.3, seed: 1, summary: summary("static-balance", 5.0, 0.3, 0.3) },
      // Finished, evaluated, and without a KL (no high-quality sample), as a run's summary names it.
      { method: "static-balance", density: 0.3, seed: 0, summary: { ...summary("static-balance", null, 0.3, 0.3), eval: { final: { iter: 100, metrics: { modes: 0 } }, best: null, primary: "kl" } } },
    ];
    const t = tableResult(spec({ paper: { "adapt-relax@0.1": 2.5 }, paperFlops: { "adapt-relax@0.1": 0.45 } }), finished);
    expect(t.metric).toBe("kl");
    const e = (m: string, d: number) => t.entries.find((x) => x.method === m && x.density === d)!;
    expect(e("adapt-relax", 0.1)).toMatchObject({ seeds: [0, 1], planned: 2, metric: { values: [1, 3], mean: 2 }, flops: { mean: 0.5 }, paper: 2.5, paperFlops: 0.45 });
    expect(e("adapt-relax", 0.1).metric.std).toBeCloseTo(Math.SQRT2, 12);
    // table.json pairs every value with its seed.
    expect(e("adapt-relax", 0.1).perSeed).toEqual([
      { seed: 0, metric: 1, flops: 0.4, densityD: 0.2 },
      { seed: 1, metric: 3, flops: 0.6, densityD: 0.3 },
    ]);
    expect(e("static-balance", 0.1).perSeed).toEqual([{ seed: 0, metric: null, flops: 0.1, densityD: 0.1 }]);
    // A finished cell without the metric still counts for FLOPs and d_D, and is counted as without a value.
    expect(e("static-balance", 0.1)).toMatchObject({ seeds: [0], metric: { values: [], mean: null }, metricMissing: 1, flops: { mean: 0.1 }, paper: null });
    expect(e("static-balance", 0.3)).toMatchObject({ seeds: [0, 1], metric: { values: [5] }, metricMissing: 1 });
    expect(e("adapt-relax", 0.1).metricMissing).toBe(0);
    expect(e("adapt-relax", 0.3)).toMatchObject({ seeds: [], metric: { mean: null }, flops: { mean: null } });

    const md = tableMarkdown(t);
    expect(md).toContain("| method | d_G 0.1 | d_G 0.3 |");
    expect(md).toContain("| adapt-relax | 2.00 ± 1.41 [2.50] | — |");
    expect(md).toContain("| static-balance | n/a (0/2; 1 without a value) | 5.00 (1/2; 1 without a value) |");
    expect(md).toContain('"m without a value": m seeds finished, but their final evaluation has no kl (no sample near any mode: a total collapse)');
    expect(md).toContain("KL to the true mode distribution of the final evaluation (lower is better)");
    // How the cells evaluate, where the table knows it: a published number is comparable only where it agrees.
    const evaluated = tableMarkdown(tableResult(spec(), finished, [], true, { samples: 10000, reference: "train", batchNorm: "batch" }));
    expect(evaluated).toContain("KL to the true mode distribution of the final evaluation on 10,000 samples (lower is better)");
    const fid = tableMarkdown({ ...tableResult(spec(), finished, [], true, { samples: 10000, reference: "train", batchNorm: "batch" }), metric: "fid" });
    expect(fid).toContain("FID of the final evaluation on 10,000 samples against the train split, BatchNorm by batch (lower is better)");
    expect(md).toContain("| adapt-relax | 50.00% ± 14.14% [45.00%] | — |");
    // Every grid's spread is the sample standard deviation (n - 1), and says so.
    expect(md).toContain("mean ± sample std over seeds 0, 1; the paper's number in brackets.");
    expect(md).toContain("Training FLOPs normalized to the dense run (paper convention), mean ± sample std over seeds; the paper's figure in brackets.");
    expect(md).toContain("Final discriminator density d_D, mean ± sample std over seeds.");
    expect(md).not.toMatch(/mean ± std/);
    // The FLOPs grid's entry of the seed without a metric value: both grids mark the seeds that have none.
    expect(md).toContain("| static-balance | 10.00% (1/2) | 30.00% ± 0.00% |");
    const csv = tableCsv(t).trim().split("\n");
    expect(csv[0]).toBe("method,density,seeds_done,seeds_planned,metric,mean,std,paper,flops_ratio_mean,flops_ratio_std,paper_flops_ratio,density_d_mean,density_d_std,seeds_without_metric,seeds_diverged,seeds_failed");
    expect(csv).toContain(`adapt-relax,0.1,2,2,kl,2,${Math.SQRT2},2.5,0.5,${stat([0.4, 0.6]).std},0.45,0.25,${stat([0.2, 0.3]).std},0,0,0`);
    expect(csv).toContain("static-balance,0.3,2,2,kl,5,,,0.3,0,,0.3,0,1,0,0");
    expect(md).not.toContain("diverged");
  });

  it("counts diverged seeds apart: in no statistic, named above the grids", () => {
    const cells: SettledCell[] = [
      { method: "adapt-relax", density: 0.1, seed: 0, summary: summary("adapt-relax", 1.0, 0.4, 0.2) },
      { method: "adapt-relax", density: 0.1, seed: 1, divergedAt: 1234 },
      { method: "adapt-relax", density: 0.3, seed: 0, divergedAt: 17 },
      { method: "adapt-relax", density: 0.3, seed: 1, divergedAt: 18 },
    ];
    const t = tableResult(spec(), cells);
    const e = (d: number) => t.entries.find((x) => x.method === "adapt-relax" && x.density === d)!;
    expect(e(0.1)).toMatchObject({ seeds: [0], diverged: [1], metric: { values: [1], mean: 1 }, flops: { values: [0.4] } });
    expect(e(0.3)).toMatchObject({ seeds: [], diverged: [0, 1], metric: { mean: null }, flops: { mean: null } });
    const md = tableMarkdown(t);
    expect(md).toContain("Training diverged (went to NaN or infinity) in adapt-relax at d_G 0.1 (seed 1); adapt-relax at d_G 0.3 (seeds 0, 1).");
    expect(md).toContain("| adapt-relax | 1.00 (1/2; 1 diverged) | n/a (0/2; 2 diverged) |");
    expect(md).toContain("| adapt-relax | 40.00% (1/2; 1 diverged) | n/a (0/2; 2 diverged) |");
    expect(tableCsv(t)).toContain("adapt-relax,0.3,0,2,kl,,,,,,,,,0,2,0\n");
  });

  it("counts seeds whose last attempt failed apart: in no statistic, named above the grids, a column of table.csv", () => {
    const cells: SettledCell[] = [
      { method: "adapt-relax", density: 0.1, seed: 0, summary: summary("adapt-relax", 1.0, 0.4, 0.2) },
      { method: "adapt-relax", density: 0.3, seed: 0, divergedAt: 17 },
    ];
    const failed = [
      { method: "adapt-relax", density: 0.1, seed: 1 },
      { method: "adapt-relax", density: 0.3, seed: 1 },
      { method: "static-balance", density: 0.3, seed: 0 },
      { method: "static-balance", density: 0.3, seed: 1 },
    ];
    const t = tableResult(spec(), cells, failed);
    const e = (m: string, d: number) => t.entries.find((x) => x.method === m && x.density === d)!;
    expect(e("adapt-relax", 0.1)).toMatchObject({ seeds: [0], diverged: [], failed: [1], metric: { values: [1] } });
    expect(e("adapt-relax", 0.3)).toMatchObject({ seeds: [], diverged: [0], failed: [1] });
    expect(e("static-balance", 0.3)).toMatchObject({ seeds: [], failed: [0, 1], metric: { mean: null } });
    expect(e("static-balance", 0.1).failed).toEqual([]);
    const md = tableMarkdown(t);
    expect(md).toContain(
      "Training failed (the last attempt stopped on an error; the same command retries it) in static-balance at d_G 0.3 (seeds 0, 1); adapt-relax at d_G 0.1 (seed 1); " +
        'adapt-relax at d_G 0.3 (seed 1). Those seeds are in no statistic below; "f failed" counts them.',
    );
    expect(md).toContain("| static-balance | — | n/a (0/2; 2 failed) |");
    expect(md).toContain("| adapt-relax | 1.00 (1/2; 1 failed) | n/a (0/2; 1 diverged; 1 failed) |");
    expect(md).toContain("| adapt-relax | 40.00% (1/2; 1 failed) | n/a (0/2; 1 diverged; 1 failed) |");
    const csv = tableCsv(t);
    expect(csv).toContain("adapt-relax,0.3,0,2,kl,,,,,,,,,0,1,1\n");
    expect(csv).toContain("static-balance,0.3,0,2,kl,,,,,,,,,0,0,2\n");
    expect(tableMarkdown(tableResult(spec(), cells))).not.toContain("failed");
  });

  it("reads a failed cell from its failed.json: not one that diverged, finished since, or of another configuration", async () => {
    const dir = tempDir();
    const plan = await planTable(spec(), join(dir, "t.json"), join(dir, "out"));
    const [cell, other] = [plan.cells[0]!, plan.cells[1]!];
    const key = (c: typeof cell) => ({ method: c.method, density: c.density, seed: c.seed });
    for (const c of [cell, other]) {
      mkdirSync(c.dir, { recursive: true });
      writeFileSync(join(c.dir, "config.json"), JSON.stringify(c.experiment));
      writeFileSync(join(c.dir, "checkpoint.json"), JSON.stringify({ iter: 50, worker: "checkpoints/iter-000000050.pt", state: runState(50) }));
    }
    expect(failedCells(plan)).toEqual([]); // interrupted, not failed
    const failure = { error: "the PyTorch worker was killed by SIGKILL.", iter: 50, at: "2026-11-26T00:00:00Z" };
    writeFileSync(join(cell.dir, "failed.json"), JSON.stringify(failure));
    writeFileSync(join(other.dir, "failed.json"), JSON.stringify({ ...failure, error: "training diverged at iteration 61: the D loss is NaN", divergedAt: 61 }));
    expect(failedCells(plan)).toEqual([key(cell)]);
    // What the table files say (writeResults: after every finished cell and at the end of a command).
    const written = writeResults(plan).entries.find((e) => e.method === cell.method && e.density === cell.density)!;
    expect(written).toMatchObject({ seeds: [], failed: [cell.seed], diverged: [] });
    expect(JSON.parse(readFileSync(join(plan.out, "table.json"), "utf8")).entries).toContainEqual(JSON.parse(JSON.stringify(written)));
    expect(readFileSync(join(plan.out, "table.md"), "utf8")).toContain(`| ${cell.method} | n/a (0/2; 1 failed) |`);
    expect(readFileSync(join(plan.out, "table.csv"), "utf8")).toContain(`${cell.method},${cell.density},0,2,,,,,,,,,,0,0,1\n`);
    // Trained with another configuration: out of the results, as a finished one is.
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify({ ...cell.experiment, train: { ...cell.experiment.train, lrD: 0.5 } }));
    expect(failedCells(plan)).toEqual([]);
    writeFileSync(join(cell.dir, "config.json"), JSON.stringify(cell.experiment));
    // Finished since (a record a run left behind does not unfinish it).
    writeFileSync(join(cell.dir, "checkpoint.json"), JSON.stringify({ iter: 100, worker: "checkpoints/iter-000000100.pt", state: runState(100) }));
    writeFileSync(join(cell.dir, "summary.json"), JSON.stringify(cellSummary(cell, 1, 0.1, 0.1)));
    expect(failedCells(plan)).toEqual([]);
  });

  it("says that a table whose experiments do not evaluate has no metric, rather than none yet", async () => {
    const dir = tempDir();
    const md = () => readFileSync(join(dir, "out", "table.md"), "utf8");
    // The tests' base has no eval block.
    expect(writeResults(await planTable(spec(), join(dir, "t.json"), join(dir, "out")))).toMatchObject({ metric: null, evaluates: false });
    expect(md()).toContain("No metric: the table's experiments do not evaluate (they have no eval block).");
    expect(md()).not.toContain("No evaluation results yet.");
    const evaluated = await planTable(spec({ base: { ...base, eval: { every: 100 } } }), join(dir, "t.json"), join(dir, "out"));
    expect(writeResults(evaluated)).toMatchObject({ metric: null, evaluates: true });
    expect(md()).toContain("No evaluation results yet.");
    expect(md()).not.toContain("do not evaluate");
  });

  it("names a run's metric by what it asks for, so a collapsed final evaluation still names it", () => {
    expect(configuredPrimary(toyExperiment({ eval: { every: 100 } }))).toBe("kl");
    expect(configuredPrimary(toyExperiment({ eval: null }))).toBeNull();
    expect(configuredPrimary(toyExperiment({ eval: { every: 100, metrics: ["fid", "toy"], inception: "/w.pth" } }))).toBe("fid");
    const collapsed = { ...summary("x", null, 0.3, 0.3), eval: { final: { iter: 100, metrics: { modes: 0 } }, best: null, primary: "kl" } };
    expect(finalMetric(collapsed)).toBe("kl n/a");
    expect(finalMetric(summary("x", 0.12345, 0.3, 0.3), 3)).toBe("kl 0.123");
  });

  it("shows the dense baseline, run once per seed, in every column", () => {
    const t = tableResult(
      { name: "t", methods: ["dense"], densities: [0.1, 0.5], seeds: [0], paper: {}, paperFlops: {} },
      [{ method: "dense", density: 1, seed: 0, summary: summary("dense", 7, 1, 1) }],
    );
    expect(t.entries.map((e) => e.metric.mean)).toEqual([7, 7]);
  });

  it("formats numbers by their size", () => {
    expect([num(958.63), num(14.194), num(0.40251), num(0.0123, 14.2)]).toEqual(["958.6", "14.19", "0.403", "0.01"]);
  });
});

describe("devices", () => {
  it("parses device lists and shares them round-robin between the jobs", () => {
    expect(parseDevices("cuda:0, cuda:1")).toEqual(["cuda:0", "cuda:1"]);
    expect(() => parseDevices("gpu0")).toThrow(/'gpu0' is not a device/);
    const slots = assignSlots(["cuda:0", "cuda:1"], 4, 16);
    expect(slots.map((s) => s.env.CUDA_VISIBLE_DEVICES)).toEqual(["0", "1", "0", "1"]);
    expect(slots.every((s) => s.device === "cuda" && s.threads === undefined)).toBe(true);
    expect(assignSlots(["cpu"], 2, 2).map((s) => s.threads)).toEqual([1, 1]);
    expect(assignSlots(["cpu"], 3, 2).map((s) => s.threads)).toEqual([1, 1, 1]);
    expect(assignSlots(["cpu", "cuda"], 2, 8).map((s) => [s.device, s.threads])).toEqual([["cpu", 8], ["cuda", undefined]]);
    expect(() => assignSlots(["cpu"], 0, 2)).toThrow(/--jobs/);
    // Under a scheduler's CUDA_VISIBLE_DEVICES, cuda:N is the N-th GPU it allows.
    expect(assignSlots(["cuda:0", "cuda:1"], 2, 8, "2,3").map((s) => s.env.CUDA_VISIBLE_DEVICES)).toEqual(["2", "3"]);
    expect(() => assignSlots(["cuda:2"], 1, 8, "2,3")).toThrow(/allows 2 GPU/);
    // A GPU index past those torch sees is refused once, before any cell starts.
    expect(() => checkGpuIndices(["cuda:0", "cuda:1", "cuda"], 2)).not.toThrow();
    expect(() => checkGpuIndices(["cuda:0", "cuda:2"], 2)).toThrow("--devices: cuda:2, but torch sees 2 GPUs here (cuda:0 to cuda:1)");
    expect(() => checkGpuIndices(["cuda:1"], 1)).toThrow("--devices: cuda:1, but torch sees 1 GPU here (cuda:0)");
  });
});

describe("table progress", () => {
  it("shows done / running / queued, each running cell's speed and ETA, and the table's ETA", () => {
    let now = 0;
    const out: string[] = [];
    // Three cells to train: a (new), b (resumed from 400) and one more new: 1000 + 600 + 1000 iterations left.
    const p = new TableProgress({ write: (t) => out.push(t) }, "t", 4, 1, 2600, 60_000, () => now);
    p.start("a", "cpu", null, 1000);
    p.start("b", "cuda:0", 400, 1000);
    expect(p.status()).toEqual(["table t: 1/4 done, 2 running, 1 queued", "  a (cpu): iter 0/1000, measuring speed", "  b (cuda:0): iter 400/1000, measuring speed"]);
    p.record("a", { iter: 100, kind: "loss", d: 1, g: 1 });
    p.record("b", { iter: 500, kind: "loss", d: 1, g: 1 });
    now = 10_000;
    p.record("a", { iter: 200, kind: "loss", d: 1, g: 1 });
    p.record("b", { iter: 700, kind: "loss", d: 1, g: 1 });
    // a: 10 it/s, 800 left; b: 20 it/s, 300 left; one queued cell of 1000: 2100 / 30 it/s = 70 s.
    expect(p.status()).toEqual(["table t: 1/4 done, 2 running, 1 queued, table ETA 1m10s", "  a (cpu): iter 200/1000, 10 it/s, ETA 1m20s", "  b (cuda:0): iter 700/1000, 20 it/s, ETA 15s"]);
    p.finish("b", "kl 0.1");
    p.interrupted("a", 200);
    p.close();
    expect(out.join("")).toBe(
      "start a on cpu\nstart b on cuda:0, resuming from iteration 400\ndone  b: kl 0.1\ninterrupted a at iteration 200 (checkpoint written)\n",
    );
    expect([duration(59.4), duration(61), duration(3 * 3600 + 120), duration(Infinity)]).toEqual(["59s", "1m01s", "3h02m", "?"]);
  });
});

describe("table files", () => {
  it("loads a TypeScript module exporting defineTable(...) like a JSON file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-unit-"));
    const file = join(dir, "t.ts");
    const src = join(import.meta.dirname, "..", "..", "src", "table", "spec.ts");
    writeFileSync(
      file,
      `import { defineTable } from ${JSON.stringify(src)};\n` +
        `export default defineTable({ name: "ts-table", base: ${JSON.stringify(base)}, methods: ["adapt-relax"], densities: [0.1], seeds: [3] });\n`,
    );
    const spec = await loadTableSpec(file);
    expect(spec).toMatchObject({ name: "ts-table", seeds: [3], set: {}, paper: {} });
    const plan = await planTable(spec, file, join(dir, "out"));
    expect(plan.cells.map((c) => c.id)).toEqual(["adapt-relax-d0.1-s3"]);
  });

  it("calls a table file that cannot be read a table, not an experiment", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "ddst-unit-")), "t.json");
    writeFileSync(file, '{"name": "t", "base": {');
    await expect(loadTableSpec(file)).rejects.toThrow(/^invalid table .*t\.json:\n  - \(root\): not valid JSON/);
  });

  it("says so when a table's base is a table file (itself, say)", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "ddst-unit-")), "t.json");
    writeFileSync(file, JSON.stringify({ name: "t", base: "t.json", methods: ["dense"], densities: [0.1], seeds: [0] }));
    await expect(planTable(await loadTableSpec(file), file, join(file, "..", "out"))).rejects.toThrow(/^invalid table .*t\.json:\n  - base: .*t\.json is a table file, not an experiment/);
  });
});

describe("cell directories the table does not name", () => {
  it("are left as they are and said; one under another name of a planned cell's method names where it belongs", async () => {
    const dir = tempDir();
    const plan = await planTable(TableSpec.parse({ ...spec(), methods: ["static-balance", "adapt-relax"] }), join(dir, "t.json"), join(dir, "out"));
    expect(unplannedCells(plan)).toEqual([]);
    for (const id of ["ddst-relax-d0.1-s0", "sdst-strong-rigl-d0.1-s0", plan.cells[0]!.id, ".hidden"]) mkdirSync(join(plan.out, "cells", id), { recursive: true });
    const cells = join(plan.out, "cells");
    expect(unplannedCells(plan)).toEqual([
      `${join(cells, "ddst-relax-d0.1-s0")} is adapt-relax-d0.1-s0 of this table under the method's other name: move it to ${join(cells, "adapt-relax-d0.1-s0")} to count it instead of training that cell anew`,
      `${join(cells, "sdst-strong-rigl-d0.1-s0")} is not a cell of this table (the table file no longer names it); it is left as it is`,
    ]);
    // Once the planned cell exists, the other is only another directory.
    mkdirSync(join(cells, "adapt-relax-d0.1-s0"));
    expect(unplannedCells(plan)[0]).toMatch(/ddst-relax-d0\.1-s0 is not a cell of this table/);
  });
});
