import type { TopLevelSpec } from "vega-lite";
import type { MetricRecord } from "../run/records.js";
import type { TableResult } from "../table/results.js";
import { DENSE } from "../table/spec.js";
import type { Plot } from "./run-plots.js";

/** A table's plots: the primary metric over iterations per method (mean over seeds, their range as a band), the
 * final metric against training FLOPs (the trade-off the paper's tables are about), and each cell's BR window and
 * d_D as small multiples. */

export interface TableCell {
  id: string;
  /** From the cell's config.json; absent where it cannot be read (the cell still has its small multiples). */
  method?: string;
  density?: number;
  seed?: number;
  records: readonly MetricRecord[];
}

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** `metric` (the table's primary) at every evaluation of every cell, one panel per density, one colour per method:
 * the mean over the seeds with a value at that iteration, and the band from their lowest to their highest. The
 * dense baseline, trained once per seed for every column, is drawn in every panel. */
function metricCurves(cells: readonly TableCell[], metric: string): Plot | null {
  const known = cells.filter((c): c is TableCell & { method: string; density: number } => c.method !== undefined && c.density !== undefined);
  const columns = [...new Set(known.filter((c) => c.method !== DENSE).map((c) => c.density))].sort((a, b) => a - b);
  const values = known.flatMap((c) =>
    (c.method === DENSE ? (columns.length ? columns : [c.density]) : [c.density]).flatMap((d) =>
      c.records.flatMap((r) => (r.kind === "eval" && metric in r.metrics ? [{ method: c.method, density: `d_G ${d}`, seed: c.seed, iter: r.iter, value: r.metrics[metric] }] : [])),
    ),
  );
  if (!values.length) return null;
  const unknown = cells.length - known.length;
  const x = { field: "iter", type: "quantitative", title: "iteration" };
  const color = { field: "method", type: "nominal", title: null };
  return {
    id: "table-metric",
    title:
      `${metric} over iterations: the mean over the seeds with a value there (line) and their range (band), per method` +
      `${known.some((c) => c.method === DENSE) ? "; dense in every panel" : ""}` +
      `${unknown ? `; ${unknown} cell${unknown === 1 ? "" : "s"} left out (config.json unreadable)` : ""}`,
    spec: {
      $schema: SCHEMA,
      title: `${metric} over iterations`,
      data: { values },
      facet: { column: { field: "density", type: "nominal", title: null, sort: columns.map((d) => `d_G ${d}`) } },
      spec: {
        width: 220,
        height: 160,
        layer: [
          { mark: { type: "errorband", extent: "min-max", opacity: 0.2 }, encoding: { x, y: { field: "value", type: "quantitative", title: metric }, color } },
          { mark: { type: "line", point: true }, encoding: { x, y: { aggregate: "mean", field: "value", type: "quantitative", title: metric }, color } },
        ],
      },
    } as TopLevelSpec,
  };
}

/** The final metric against normalized training FLOPs, one point per method and density (means over the seeds
 * that have both), error bars of one sample std where two seeds or more have the metric. */
function metricVsFlops(result: TableResult): Plot | null {
  const metric = result.metric;
  if (!metric) return null;
  // The dense baseline fills every column with the same cells: one point, labelled as such.
  const entries = result.entries.filter((e) => e.method !== DENSE || e === result.entries.find((f) => f.method === DENSE));
  const values = entries.flatMap((e) =>
    e.metric.mean === null || e.flops.mean === null
      ? []
      : [{ method: e.method, density: e.method === DENSE ? "dense" : String(e.density), flops: 100 * e.flops.mean, value: e.metric.mean, low: e.metric.mean - (e.metric.std ?? 0), high: e.metric.mean + (e.metric.std ?? 0) }],
  );
  if (!values.length) return null;
  const x = { field: "flops", type: "quantitative", title: "training FLOPs, % of dense (paper convention)" };
  const color = { field: "method", type: "nominal", title: null };
  return {
    id: "table-metric-flops",
    title: `Final ${metric} against training FLOPs: one point per method and density (mean over seeds; bars: ± one sample std)`,
    spec: {
      $schema: SCHEMA,
      title: `final ${metric} against training FLOPs`,
      width: 420,
      height: 260,
      data: { values },
      layer: [
        { mark: "rule", encoding: { x, y: { field: "low", type: "quantitative", title: metric }, y2: { field: "high" }, color } },
        { mark: { type: "line", point: { size: 60 } }, encoding: { x, y: { field: "value", type: "quantitative", title: metric }, color, order: { field: "flops" } } },
        { mark: { type: "text", dx: 6, dy: -8, fontSize: 9 }, encoding: { x, y: { field: "value", type: "quantitative" }, text: { field: "density" }, color } },
      ],
    } as TopLevelSpec,
  };
}

export function tablePlots(cells: readonly TableCell[], result: TableResult | null): Plot[] {
  const br = cells.flatMap((c) => c.records.flatMap((r) => (r.kind === "br" && r.br !== null ? [{ cell: c.id, iter: r.iter, value: r.br }] : [])));
  const dD = cells.flatMap((c) =>
    c.records.flatMap((r) =>
      r.kind === "density" ? [{ cell: c.id, iter: r.iter, value: r.discriminator }] : r.kind === "controller" ? [{ cell: c.id, iter: r.iter, value: r.densityD }] : [],
    ),
  );
  const multiples = (id: string, title: string, values: object[], y: string, step: boolean): Plot => ({
    id,
    title,
    spec: {
      $schema: SCHEMA,
      title,
      data: { values },
      facet: { field: "cell", type: "nominal", title: null },
      columns: 3,
      spec: {
        width: 200,
        height: 100,
        mark: { type: "line", interpolate: step ? "step-after" : "linear" },
        encoding: { x: { field: "iter", type: "quantitative", title: "iteration" }, y: { field: "value", type: "quantitative", title: y } },
      },
    } as TopLevelSpec,
  });
  const metric = result?.metric ?? null;
  return [
    ...(metric ? [metricCurves(cells, metric)] : []),
    ...(result ? [metricVsFlops(result)] : []),
    multiples("cells-br", "BR window per cell", br, "BR", false),
    multiples("cells-density-d", "d_D per cell", dD, "d_D", true),
  ].filter((p): p is Plot => p !== null);
}
