import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { experimentFrom, loadExperiment } from "../../src/config/load.js";
import { pathVariables } from "../../src/config/data-paths.js";
import { ConfigError, Experiment, resolveExperiment } from "../../src/config/experiment.js";
import { generateSchemas } from "../../src/schemas/generate.js";
import { probeCount, probeEvery } from "../../src/run/events.js";

const base = {
  method: "adapt-relax",
  density: 0.1,
  iterations: 400,
  model: { name: "mlp2d" },
  data: { name: "ring8" },
};

function issuesOf(input: unknown): string[] {
  try {
    resolveExperiment(input);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => i.path);
    throw e;
  }
  return [];
}

describe("experiment resolution", () => {
  it("expands adapt-relax into the paper's policies", () => {
    const e = resolveExperiment(base);
    expect(e.generator).toMatchObject({ density: 0.1, init: "erk", dst: { every: 500, deathRate: 0.5, schedule: "cosine", prune: "global_magnitude", growth: "global_gradient" } });
    expect(e.discriminator).toMatchObject({ density: 0.1, controller: { rule: "relaxed", lower: 0.45, upper: 0.55, step: 0.05, floor: 0.05, cap: 1, every: 1000, window: 1000, probeEvery: 10 } });
  });

  it("applies partial overrides on top of the preset", () => {
    const e = resolveExperiment({ ...base, generator: { dst: { every: 50 } }, discriminator: { controller: { every: 100, window: 100 } } });
    expect(e.generator.dst).toMatchObject({ every: 50, deathRate: 0.5 });
    expect(e.discriminator.controller).toMatchObject({ every: 100, window: 100, lower: 0.45 });
  });

  it("keeps the preset's other fields when a block is partly overridden", () => {
    const strict = resolveExperiment({ ...base, method: "adapt-strict", discriminator: { controller: { every: 100 } }, generator: { dst: { every: 50 } } });
    expect(strict.discriminator.controller).toMatchObject({ rule: "strict", cap: 0.5, every: 100, capDst: { deathRate: 0.5 } });
    const dda = resolveExperiment({ ...base, method: "dda", discriminator: { controller: { window: 200 } } });
    expect(dda.discriminator.controller).toMatchObject({ lower: 0.5, upper: 0.65, window: 200 });
    const rigl = resolveExperiment({ ...base, method: "sdst-strong-rigl", generator: { dst: { every: 50 } } });
    expect(rigl.generator.dst).toMatchObject({ every: 50, prune: "global_magnitude", growth: "global_gradient" });
  });

  it("gives each row the reference's cadence (iterations) and criteria", () => {
    const row = (method: string) => ({ ...base, method, ...(method === "dense" ? { density: 1 } : {}) });
    const controller = (method: string) => resolveExperiment(row(method)).discriminator.controller;
    expect(controller("adapt-relax")).toMatchObject({ rule: "relaxed", every: 1000, lower: 0.45, upper: 0.55 });
    expect(controller("ddst-relax")).toEqual(controller("adapt-relax"));
    expect(controller("adapt-strict")).toMatchObject({ rule: "strict", every: 2000, cap: 0.5, lower: 0.45, upper: 0.55 });
    expect(controller("dda")).toMatchObject({ rule: "relaxed", every: 2000, lower: 0.5, upper: 0.65 });
    const dst = (method: string) => resolveExperiment(row(method)).generator.dst;
    for (const m of ["sdst-balance-rigl", "sdst-strong-rigl", "adapt-relax", "adapt-strict"])
      expect(dst(m), m).toMatchObject({ every: 500, prune: "global_magnitude", growth: "global_gradient", deathRate: 0.5, schedule: "cosine" });
    for (const m of ["sdst-balance-set", "sdst-strong-set"]) expect(dst(m), m).toMatchObject({ every: 500, prune: "magnitude", growth: "random" });
    for (const m of ["dense", "static-balance", "static-strong", "dda"]) expect(dst(m), m).toBeNull();
  });

  it("derives D's density from the row: balance = d_G, strong = 1, strict capped", () => {
    expect(resolveExperiment({ ...base, method: "static-balance" }).discriminator.density).toBe(0.1);
    expect(resolveExperiment({ ...base, method: "sdst-strong-rigl" }).discriminator.density).toBe(1);
    const s = resolveExperiment({ ...base, method: "adapt-strict", density: 0.7 });
    expect(s.discriminator.density).toBe(0.5);
    expect(s.discriminator.controller).toMatchObject({ rule: "strict", cap: 0.5, every: 2000, capDst: { deathRate: 0.5 } });
    expect(resolveExperiment({ ...base, method: "dense", density: 1 }).generator.density).toBe(1);
  });

  it("probes rows without a controller every 10 iterations unless log.probeEvery says otherwise", () => {
    const staticRow = { ...base, method: "static-balance" };
    expect(probeEvery(resolveExperiment(staticRow))).toBe(10);
    // Written only when set: a config resolved before the setting existed (a table's cell) is still the same config.
    expect(resolveExperiment(staticRow).log).toEqual({ every: 10 });
    for (const every of [0, 1, 25]) {
      const e = resolveExperiment({ ...staticRow, log: { probeEvery: every } });
      expect(e.log.probeEvery).toBe(every);
      expect(probeEvery(e)).toBe(every);
      expect(probeCount(e, 100)).toBe(every ? Math.floor(100 / every) : 0);
    }
    // With a controller its own probes decide, and a second setting is refused by name.
    const adapt = resolveExperiment(base);
    expect(adapt.log.probeEvery).toBeUndefined();
    expect(probeEvery(adapt)).toBe(10);
    expect(issuesOf({ ...base, log: { probeEvery: 5 } })).toEqual(["log.probeEvery"]);
    // A config.json from before the setting existed reads as before.
    const { probeEvery: _, ...oldLog } = resolveExperiment(staticRow).log;
    expect(probeEvery({ ...resolveExperiment(staticRow), log: oldLog })).toBe(10);
    expect(issuesOf({ ...staticRow, log: { probeEvery: -1 } })).toEqual(["log.probeEvery"]);
  });

  it("samples the evaluated generator with BatchNorm by batch, 100 at a time, as the reference; a config.json from before the setting goes on by the running averages", () => {
    const e = resolveExperiment({ ...base, eval: {} });
    expect(e.eval).toMatchObject({ batchNorm: "batch", batchSize: 100 });
    expect(resolveExperiment({ ...base, eval: { batchNorm: "running" } }).eval?.batchNorm).toBe("running");
    expect(issuesOf({ ...base, eval: { batchNorm: "eval" } })).toEqual(["eval.batchNorm"]);
    const { batchNorm: _, ...before } = e.eval!;
    expect(Experiment.parse({ ...e, eval: before }).eval?.batchNorm).toBe("running");
    expect(Experiment.parse(e).eval?.batchNorm).toBe("batch");
  });

  it("flips CIFAR-10 and STL-10 training images by default, as the reference; a config.json from before the setting drew no flips", () => {
    const cifar = resolveExperiment({ ...base, model: { name: "sngan32" }, data: { name: "cifar10", path: "/d" } });
    expect(cifar.data).toMatchObject({ name: "cifar10", hflip: true });
    expect(resolveExperiment({ ...base, model: { name: "sngan48" }, data: { name: "stl10", path: "/d" } }).data).toMatchObject({ hflip: true });
    expect(resolveExperiment({ ...base, model: { name: "sngan32" }, data: { name: "folder", path: "/d", size: [32, 32] } }).data).toMatchObject({ hflip: false });
    expect(resolveExperiment({ ...base, model: { name: "sngan32" }, data: { name: "cifar10", path: "/d", hflip: false } }).data).toMatchObject({ hflip: false });
    expect(issuesOf({ ...base, data: { name: "mnist", hflip: true } })).toEqual(["data"]);
    const { hflip: _, ...before } = cifar.data as { hflip: boolean };
    expect(Experiment.parse({ ...cifar, data: before }).data).toMatchObject({ hflip: false });
    expect(Experiment.parse(cifar).data).toMatchObject({ hflip: true });
  });

  it("trains the paper's networks at the paper's batches and n_critic unless told otherwise", () => {
    const sngan = { ...base, model: { name: "sngan32" }, data: { name: "cifar10", path: "/d" } };
    expect(resolveExperiment(sngan).train).toMatchObject({ batchSize: 64, genBatchSize: 128, nCritic: 5, lrG: 2e-4, lrD: 2e-4, betas: [0, 0.9], ema: 0.999 });
    expect(resolveExperiment({ ...sngan, train: { nCritic: 1 } }).train).toMatchObject({ batchSize: 64, genBatchSize: 128, nCritic: 1 });
    expect(resolveExperiment({ ...sngan, model: { name: "sngan48" }, data: { name: "stl10", path: "/d" } }).train).toMatchObject({ batchSize: 64, genBatchSize: 128, nCritic: 5 });
    // Other networks keep the generic defaults.
    expect(resolveExperiment(base).train).toMatchObject({ batchSize: 256, nCritic: 1 });
    expect(resolveExperiment(base).train.genBatchSize).toBeUndefined();
  });

  it("checks an experiment's own controllers field by field, naming each", () => {
    const c = (extra: object) => ({ name: "mine", initialState: () => null, decide: () => ({}), ...extra });
    const paths = (extra: object, more: object = {}) => {
      try {
        resolveExperiment({ ...base, ...more, controllers: [c(extra)] }, "x.ts", "/x.ts");
      } catch (e) {
        if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
        throw e;
      }
      return [];
    };
    expect(paths({ every: 10 })).toEqual([]);
    expect(paths({ every: 10, records: "bogus" })).toEqual(['controllers.0.records: must be "decisions" or "effects", got "bogus"']);
    expect(paths({ every: 10, atEvaluations: "yes" })).toEqual(['controllers.0.atEvaluations: must be true or false, got "yes"']);
    expect(paths({ every: 10, timeoutMs: "5" })).toEqual(['controllers.0.timeoutMs: must be a positive number of milliseconds up to 2000000000, got "5"']);
    // Called only at evaluations, it needs evaluations before the end (none is called after the last iteration).
    for (const ev of [{}, { eval: {} }, { eval: { every: 400 } }, { eval: { every: 1000 } }])
      expect(paths({ atEvaluations: true }, ev)[0]).toMatch(/^controllers\.0\.atEvaluations: the experiment evaluates only at its end/);
    expect(paths({ atEvaluations: true }, { eval: { every: 100 } })).toEqual([]);
    expect(paths({})[0]).toMatch(/^controllers\.0: give it `every`/);
  });

  it("names every offending field", () => {
    expect(issuesOf({ ...base, density: 1.5 })).toEqual(["density"]);
    expect(issuesOf({ ...base, colour: "red" })).toEqual([""]);
    const missing = issuesOf({ method: "adapt-relax", density: 0.1, iterations: 10, model: { name: "mlp2d" } });
    expect(missing).toEqual(["data"]);
    expect(issuesOf({ ...base, method: "magic", discriminator: { controller: { lower: "x" } } }).sort()).toEqual(
      ["discriminator.controller.lower", "method"].sort(),
    );
    expect(issuesOf({ ...base, discriminator: { controller: { lower: 0.6, upper: 0.5 } } })).toEqual(["discriminator.controller.lower"]);
    expect(issuesOf({ ...base, method: "dense", density: 0.2 })).toEqual(["density"]);
    expect(issuesOf({ ...base, method: "dense", density: 1 })).toEqual([]);
    // A density floor of 0 would let the controller empty D; a timer past Node's limit would fire at once.
    expect(issuesOf({ ...base, discriminator: { controller: { floor: 0 } } })).toEqual(["discriminator.controller.floor"]);
    expect(issuesOf({ ...base, supervision: { startupTimeoutSeconds: 3e6, hangTimeoutSeconds: 3e6 } }).sort()).toEqual(
      ["supervision.hangTimeoutSeconds", "supervision.startupTimeoutSeconds"],
    );
  });

  it("reports unknown keys by name", () => {
    try {
      resolveExperiment({ ...base, colour: "red" });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(/colour/);
    }
  });
});

describe("generated JSON Schema", () => {
  it("matches the committed schemas/ (run `npm run schemas` after changing a zod schema)", () => {
    for (const [name, text] of Object.entries(generateSchemas())) {
      expect(readFileSync(new URL(`../../schemas/${name}`, import.meta.url), "utf8"), `schemas/${name} is stale`).toBe(text);
    }
  });
});

describe("experiment modules outside the checkout", () => {
  /** Writes `text` as a module in a fresh directory and returns the ConfigError loading it gives. */
  async function loadError(name: string, text: string): Promise<{ file: string; message: string }> {
    const file = join(mkdtempSync(join(tmpdir(), "ddst-module-")), name);
    writeFileSync(file, text);
    const e = await loadExperiment(file).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(ConfigError);
    return { file, message: (e as Error).message };
  }

  it("a module that cannot import ddst is told how to install it", async () => {
    const { message } = await loadError(
      "mine.ts",
      'import { defineExperiment } from "ddst";\nexport default defineExperiment({ method: "dense", density: 1, iterations: 1, model: { name: "mlp2d" }, data: { name: "ring8" } });\n',
    );
    expect(message).toMatch(/cannot load the module: Cannot find (module|package) 'ddst'.*; outside the ddst checkout, install it where the module is \(`npm install .*` there\) and make the module ESM/);
    expect(message).not.toMatch(/Require stack/);
  });

  it("a syntax error is reported with its file, line and column; a module without a default export names what it exports", async () => {
    const broken = await loadError("broken.ts", 'export default {\n  method: "dense";\n};\n');
    expect(broken.message).toContain(`${broken.file}:2:17: ERROR: Expected "}" but found ";"`);
    const named = await loadError("named.ts", "export const a = {};\nexport const b = {};\n");
    expect(named.message).toContain("the module has no default export (it exports 'a', 'b'");
  });

  it("what a module throws, Error or not, and its getters that throw are the module's fault, named by file", async () => {
    const thrown = await loadError("throws-null.mjs", "throw null;\n");
    expect(thrown.message).toContain(`${thrown.file}`);
    expect(thrown.message).toContain("cannot load the module: null");
    const getter = await loadError("getter.mjs", 'export default { method: "dense", density: 1, get iterations() { throw new Error("getter boom"); } };\n');
    expect(getter.message).toContain("reading the module's export threw: getter boom");
  });

  it("a TypeScript module where TMPDIR cannot hold files is refused naming TMPDIR (tsx would wait for ever)", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "ddst-module-")), "e.ts");
    writeFileSync(file, "export default {};\n");
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = join(file, "not-a-dir");
    try {
      await expect(loadExperiment(file)).rejects.toThrow(/cannot compile the TypeScript module: TMPDIR .*not-a-dir cannot hold temporary files \(ENOTDIR\): set TMPDIR to a writable directory/);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it("JSON with a byte-order mark reads; a path that is not a regular file is refused, not read until it ends", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-json-"));
    const file = join(dir, "bom.json");
    writeFileSync(file, "\uFEFF" + JSON.stringify({ ...base, iterations: 7 }));
    expect((await loadExperiment(file)).iterations).toBe(7);
    await expect(loadExperiment(dir)).rejects.toThrow(/cannot read the file: not a regular file/);
  });
});

describe("paths an experiment needs", () => {
  it("name their variables (what a Slurm script exports)", () => {
    const exp = { data: { name: "cifar10", path: "${DATA_ROOT}/${SET}", split: "train" }, eval: { inception: "${WEIGHTS}/pt_inception.pth" } } as never;
    expect(pathVariables(exp)).toEqual(["DATA_ROOT", "SET", "WEIGHTS"]);
    expect(pathVariables({ data: { name: "ring8", std: 0.02, radius: 1 }, eval: null } as never)).toEqual([]);
  });

  it("are all named at once when their variables are unset", () => {
    const saved = { c: process.env.DDST_TEST_DATA, w: process.env.DDST_TEST_WEIGHTS };
    delete process.env.DDST_TEST_DATA;
    delete process.env.DDST_TEST_WEIGHTS;
    try {
      const input = { ...base, data: { name: "cifar10", path: "${DDST_TEST_DATA}" }, model: { name: "sngan32" }, eval: { every: 100, inception: "${DDST_TEST_WEIGHTS}/w.pth" } };
      expect(() => experimentFrom(input, "exp.json")).toThrow(/data\.path uses \$\{DDST_TEST_DATA\}[\s\S]*eval\.inception uses \$\{DDST_TEST_WEIGHTS\}/);
    } finally {
      if (saved.c !== undefined) process.env.DDST_TEST_DATA = saved.c;
      if (saved.w !== undefined) process.env.DDST_TEST_WEIGHTS = saved.w;
    }
  });
});
