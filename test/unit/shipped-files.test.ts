import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadExperiment } from "../../src/config/load.js";
import { loadTableSpec, planTable } from "../../src/table/cells.js";
import { tempDir } from "../integration/helpers.js";

/** The experiments and tables the project ships load under today's schema: a field renamed or tightened in the
 * schema must not leave an example that fails for the user who tries it first. Paths are not checked: the paper's
 * files name data (${CIFAR10_DIR}, ...) this machine does not have. */

const ROOT = join(import.meta.dirname, "..", "..");
/** Paths relative to the project root (the tests' names). */
const files = (dir: string, pattern: RegExp) => readdirSync(join(ROOT, dir)).filter((f) => pattern.test(f)).map((f) => `${dir}/${f}`);

describe("shipped files", () => {
  // inspect-run.ts is a script that reads a run, not an experiment.
  const experiments = files("examples", /\.(json|ts)$/).filter((f) => !f.endsWith("inspect-run.ts"));

  it.each(experiments)("%s is a valid experiment", async (file) => {
    const e = await loadExperiment(join(ROOT, file), [], false);
    expect(e.iterations).toBeGreaterThan(0);
  });

  it.each(files("tables", /\.(json|ts)$/))("%s plans its cells", async (file) => {
    const spec = await loadTableSpec(join(ROOT, file));
    const plan = await planTable(spec, join(ROOT, file), join(tempDir(), "out"));
    expect(plan.cells.length).toBeGreaterThan(0);
    // Every published number names a cell (the schema checks the keys); each cell's d_G is its column.
    for (const c of plan.cells) expect(c.experiment.generator.density).toBe(c.density);
  });
});
