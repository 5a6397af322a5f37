import { z } from "zod";
import type { Summary } from "../run/records.js";
import { cellDensity, paperKey, type TableSpec } from "./spec.js";

/** A table's numbers from its cells' summary.json files: rows = methods, columns = densities, each entry the
 * mean and sample standard deviation over the seeds that finished. Pure, so it is tested without a worker; what
 * the cells hold is read by run-table.ts's cellOutcomes. */

export const Stat = z.object({
  values: z.array(z.number()).describe("one per finished seed that has the value, in seed order"),
  mean: z.number().nullable(),
  std: z.number().nullable().describe("sample standard deviation (n - 1); null below two values"),
});
export type Stat = z.infer<typeof Stat>;

export const TableEntry = z.object({
  method: z.string(),
  density: z.number(),
  seeds: z.array(z.number().int()).describe("the seeds whose cells finished"),
  planned: z.number().int().describe("how many seeds the table asks for"),
  diverged: z.array(z.number().int()).default([]).describe("the seeds whose training went to NaN or infinity (not in the statistics)"),
  failed: z
    .array(z.number().int())
    .default([])
    .describe("the seeds whose last attempt failed otherwise (a worker that died past its restarts, say): not in the statistics; the same command retries them"),
  metric: Stat.describe("the primary metric of the final evaluation"),
  metricMissing: z
    .number()
    .int()
    .default(0)
    .describe("finished seeds whose final evaluation has no value of the metric (kl: no high-quality sample, a total collapse)"),
  flops: Stat.describe("normalized training FLOPs, paper convention"),
  densityD: Stat.describe("final discriminator density"),
  perSeed: z
    .array(z.object({ seed: z.number().int(), metric: z.number().nullable(), flops: z.number(), densityD: z.number() }))
    .default([])
    .describe("each finished seed's values, in seed order (metric null: its final evaluation has none)"),
  paper: z.number().nullable().describe("the published number, where the table file gives one"),
  paperFlops: z.number().nullable().describe("the published normalized training FLOPs, where the table file gives them"),
});
export type TableEntry = z.infer<typeof TableEntry>;

export const TableResult = z.object({
  name: z.string(),
  metric: z.string().nullable().describe("fid, classifierFid or kl: lower is better"),
  evaluates: z.boolean().default(true).describe("whether the table's experiments evaluate (an eval block): false, there is never a metric"),
  evaluation: z
    .object({ samples: z.number().int(), reference: z.string(), batchNorm: z.string() })
    .nullable()
    .default(null)
    .describe("how the cells evaluate: samples, the real split compared with, how BatchNorm normalizes the samples (null: not known, or no evaluation)"),
  methods: z.array(z.string()),
  densities: z.array(z.number()),
  seeds: z.array(z.number().int()),
  entries: z.array(TableEntry),
});
export type TableResult = z.infer<typeof TableResult>;

export function stat(values: number[]): Stat {
  const n = values.length;
  if (n === 0) return { values, mean: null, std: null };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  // Equal values have a spread of exactly 0, not the rounding error of their mean (3e-17).
  const same = values.every((v) => v === values[0]);
  const std = n < 2 ? null : same ? 0 : Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { values, mean, std };
}

/** A cell with nothing more to train: finished (its summary), or diverged (the iteration it happened at). */
export type SettledCell = { method: string; density: number; seed: number } & ({ summary: Summary } | { divergedAt: number });
type FinishedCell = Extract<SettledCell, { summary: Summary }>;
/** A cell whose last attempt failed (its failed.json, not a divergence): it has training left, which a retry may do. */
export type FailedCell = { method: string; density: number; seed: number };

/** The metric the table reports: the primary metric most cells' summaries name. */
function tableMetric(cells: readonly FinishedCell[]): string | null {
  const counts = new Map<string, number>();
  for (const c of cells) {
    const m = c.summary.eval?.primary;
    if (m) counts.set(m, (counts.get(m) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

export function tableResult(
  spec: Pick<TableSpec, "name" | "methods" | "densities" | "seeds" | "paper" | "paperFlops">,
  settled: readonly SettledCell[],
  failed: readonly FailedCell[] = [],
  evaluates = true,
  evaluation: TableResult["evaluation"] = null,
): TableResult {
  const finished = settled.filter((c): c is FinishedCell => "summary" in c);
  const metric = tableMetric(finished);
  const entries = spec.methods.flatMap((method) =>
    spec.densities.map((density): TableEntry => {
      const mine = spec.seeds.flatMap((seed) => settled.filter((c) => c.method === method && c.density === cellDensity(method, density) && c.seed === seed));
      const cells = mine.filter((c): c is FinishedCell => "summary" in c);
      const metricValues = cells.map((c) => (metric ? c.summary.eval?.final?.metrics[metric] : undefined)).filter((v): v is number => v !== undefined);
      // Evaluated, but without a value: counted and shown, never silently left out of the comparison.
      const missing = metric ? cells.filter((c) => c.summary.eval?.final && c.summary.eval.final.metrics[metric] === undefined).length : 0;
      return {
        method,
        density,
        seeds: cells.map((c) => c.seed),
        planned: spec.seeds.length,
        diverged: mine.filter((c) => !("summary" in c)).map((c) => c.seed),
        failed: spec.seeds.filter((seed) => failed.some((c) => c.method === method && c.density === cellDensity(method, density) && c.seed === seed)),
        metric: stat(metricValues),
        metricMissing: missing,
        flops: stat(cells.map((c) => c.summary.flops.ratio)),
        densityD: stat(cells.map((c) => c.summary.final.densityD)),
        perSeed: cells.map((c) => ({
          seed: c.seed,
          metric: (metric ? c.summary.eval?.final?.metrics[metric] : undefined) ?? null,
          flops: c.summary.flops.ratio,
          densityD: c.summary.final.densityD,
        })),
        paper: spec.paper[paperKey(method, density)] ?? null,
        paperFlops: spec.paperFlops[paperKey(method, density)] ?? null,
      };
    }),
  );
  return { name: spec.name, metric, evaluates, evaluation, methods: [...spec.methods], densities: [...spec.densities], seeds: [...spec.seeds], entries };
}
