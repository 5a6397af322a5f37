import { z } from "zod";
import { DirName } from "../config/names.js";
import { canonicalMethod } from "../config/method-policies.js";
import { MethodName } from "../config/presets.js";

/** A paper table as a file: methods x generator densities x seeds, each cell an ordinary durable run of the
 * base experiment with `method`, `density` and `seed` set (and `set` applied to all). */

const Density = z.number().gt(0).max(1);

export const TableSpec = z
  .strictObject({
    $schema: z.string().optional(),
    name: DirName,
    base: z
      .union([z.string().min(1), z.record(z.string(), z.unknown())])
      .describe("the experiment every cell starts from: an object, or a path to a JSON / TypeScript experiment relative to this file"),
    methods: z.array(MethodName).min(1).describe("rows"),
    densities: z.array(Density).min(1).describe("columns: generator densities d_G"),
    seeds: z.array(z.number().int().min(0).max(2 ** 31 - 1)).min(1),
    set: z.record(z.string(), z.unknown()).default({}).describe('overrides for every cell, as {"dotted.path": value}'),
    paper: z
      .record(z.string(), z.number())
      .default({})
      .describe('published numbers shown beside the cells, keyed "<method>@<density>", e.g. "adapt-relax@0.1"'),
    paperFlops: z
      .record(z.string(), z.number().gt(0).max(1))
      .default({})
      .describe('published normalized training FLOPs (0.3667 for 36.67%), keyed like paper'),
  })
  .superRefine((t, ctx) => {
    const dupes = <T>(xs: T[], path: string) => {
      const seen = new Set<T>();
      for (const x of xs) {
        if (seen.has(x)) ctx.addIssue({ code: "custom", path: [path], message: `${JSON.stringify(x)} is listed twice` });
        seen.add(x);
      }
    };
    dupes(t.methods, "methods");
    for (const [i, m] of t.methods.entries()) {
      const same = t.methods.findIndex((n, j) => j !== i && n !== m && canonicalMethod(n) === canonicalMethod(m));
      if (same > i) ctx.addIssue({ code: "custom", path: ["methods"], message: `${JSON.stringify(m)} and ${JSON.stringify(t.methods[same])} name one method: list it once` });
    }
    dupes(t.densities, "densities");
    dupes(t.seeds, "seeds");
    for (const key of ["method", "density", "seed", "name"])
      if (key in t.set) ctx.addIssue({ code: "custom", path: ["set", key], message: `${key} is set per cell by the table; remove it from set` });
    for (const field of ["paper", "paperFlops"] as const)
      for (const key of Object.keys(t[field])) {
        const [m, d] = key.split("@");
        if (!t.methods.includes(m as MethodName) || !t.densities.includes(Number(d)) || paperKey(m!, Number(d)) !== key)
          ctx.addIssue({ code: "custom", path: [field, key], message: `'${key}' names no cell of this table (keys are "<method>@<density>" of methods and densities)` });
      }
  });

export type TableSpecInput = z.input<typeof TableSpec>;
export type TableSpec = z.infer<typeof TableSpec>;

/** Identity with types: lets a TypeScript table module get completion and checking. */
export function defineTable(spec: TableSpecInput): TableSpecInput {
  return spec;
}

/** A cell's key in `paper` and in the results. */
export const paperKey = (method: string, density: number) => `${method}@${density}`;

/** The dense baseline has no generator density: one run per seed serves every column. */
export const DENSE = "dense";
export const cellDensity = (method: string, density: number) => (method === DENSE ? 1 : density);

/** A cell's directory name under DIR/cells. */
export const cellId = (method: string, density: number, seed: number) =>
  method === DENSE ? `${DENSE}-s${seed}` : `${method}-d${density}-s${seed}`;

/** The table's cells in the order they run: seed by seed, so that a partly done table has whole rows of early
 * seeds; the dense baseline once per seed. */
export function cellKeys(spec: Pick<TableSpec, "methods" | "densities" | "seeds">): { id: string; method: TableSpec["methods"][number]; density: number; seed: number; column: number }[] {
  const keys: ReturnType<typeof cellKeys> = [];
  for (const seed of spec.seeds)
    for (const column of spec.densities)
      for (const method of spec.methods) {
        const density = cellDensity(method, column);
        const id = cellId(method, density, seed);
        if (!keys.some((k) => k.id === id)) keys.push({ id, method, density, seed, column });
      }
  return keys;
}
