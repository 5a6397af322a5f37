import type { TopLevelSpec } from "vega-lite";
import type { MetricRecord, Summary } from "../run/records.js";

/** The plots of a run, as Vega-Lite specs built from its metrics.jsonl records: pure data in, spec out, so
 * they are unit-tested without rendering. Rendering (to SVG in Node) is render-plots.ts. */

export interface Plot {
  id: string;
  title: string;
  spec: TopLevelSpec;
}

const WIDTH = 640;
const HEIGHT = 200;
const base = (title: string) => ({ $schema: "https://vega.github.io/schema/vega-lite/v6.json", title, width: WIDTH, height: HEIGHT }) as const;
const iterAxis = { field: "iter", type: "quantitative", title: "iteration" } as const;

const of = <K extends MetricRecord["kind"]>(records: readonly MetricRecord[], kind: K) =>
  records.filter((r): r is Extract<MetricRecord, { kind: K }> => r.kind === kind);

/** BR: the window value, each probe's own ratio, the [B-, B+] band shaded and every controller decision marked. */
export function brPlot(records: readonly MetricRecord[], band: { lower: number; upper: number } | null): Plot {
  const probes = of(records, "br");
  const window = probes.filter((r) => r.br !== null).map((r) => ({ iter: r.iter, br: r.br }));
  const ratios = probes.filter((r) => r.ratio !== null).map((r) => ({ iter: r.iter, ratio: r.ratio }));
  const decisions = of(records, "controller").map((r) => ({ iter: r.iter, decision: r.decision, br: r.br, densityD: r.densityD }));
  // The y range follows the window and the band; a single wild probe (a ratio of 27 happens early in a run)
  // would otherwise flatten everything else, so probes outside it are left out (their count is in the title).
  const ys = [...window.map((w) => w.br!), ...(band ? [band.lower, band.upper] : [])];
  const pad = 0.1 * Math.max(1e-6, Math.max(...ys) - Math.min(...ys));
  const [lo, hi] = ys.length ? [Math.min(...ys) - pad, Math.max(...ys) + pad] : [-Infinity, Infinity];
  const shown = ratios.filter((r) => r.ratio! >= lo && r.ratio! <= hi);
  const y = { type: "quantitative", title: "BR", scale: ys.length ? { domain: [lo, hi] } : {} } as const;
  const layer: object[] = [];
  if (band) layer.push({ data: { values: [band] }, mark: { type: "rect", color: "#2ca02c", opacity: 0.15 }, encoding: { y: { field: "lower", type: "quantitative" }, y2: { field: "upper" } } });
  layer.push(
    { data: { values: shown }, mark: { type: "point", size: 8, color: "#aaaaaa", filled: true }, encoding: { x: iterAxis, y: { field: "ratio", ...y } } },
    { data: { values: window }, mark: { type: "line", color: "#1f77b4" }, encoding: { x: iterAxis, y: { field: "br", ...y } } },
  );
  if (decisions.length)
    layer.push({
      data: { values: decisions },
      mark: { type: "rule", strokeDash: [3, 3] },
      encoding: {
        x: iterAxis,
        color: { field: "decision", type: "nominal", scale: { domain: ["increase", "decrease", "hold", "dst"], range: ["#2ca02c", "#d62728", "#7f7f7f", "#9467bd"] }, title: "D's controller" },
        tooltip: [{ field: "iter" }, { field: "decision" }, { field: "br", format: ".3f" }, { field: "densityD", format: ".3f" }],
      },
    });
  // An experiment's own controllers: each call that acted, as a solid rule named by its controller.
  const acted = of(records, "decision")
    .filter((r) => r.actions.length)
    .map((r) => ({ iter: r.iter, controller: r.controller, actions: r.actions.map((a) => (a.op === "setDensity" ? `${a.net} -> ${a.target}` : a.op)).join(", ") }));
  if (acted.length)
    layer.push({
      data: { values: acted },
      mark: { type: "rule", opacity: 0.6 },
      encoding: { x: iterAxis, color: { field: "controller", type: "nominal", title: "controllers" }, tooltip: [{ field: "iter" }, { field: "controller" }, { field: "actions" }] },
    });
  const hidden = ratios.length - shown.length;
  const title =
    `Balance ratio: the window (blue), each probe (grey${hidden ? `; ${hidden} outside the range not drawn` : ""})${band ? ", band [B-, B+] shaded" : ""}` +
    `${decisions.length ? ", D's decisions dashed" : ""}${acted.length ? ", the experiment's controllers' actions as rules" : ""}`;
  // D's decisions and the controllers' actions have colour legends of their own.
  return { id: "br", title, spec: { ...base("Balance ratio"), layer, resolve: { scale: { color: "independent" } } } as TopLevelSpec };
}

/** d_G and d_D over iterations, as steps: a density holds until the record that changes it. */
export function densityPlot(records: readonly MetricRecord[]): Plot {
  const points: { iter: number; net: string; density: number }[] = [];
  for (const r of records) {
    if (r.kind === "density") points.push({ iter: r.iter, net: "d_G", density: r.generator }, { iter: r.iter, net: "d_D", density: r.discriminator });
    if (r.kind === "controller") points.push({ iter: r.iter, net: "d_D", density: r.densityD });
  }
  return {
    id: "density",
    title: "Densities of G and D",
    spec: {
      ...base("Densities"),
      data: { values: points },
      mark: { type: "line", interpolate: "step-after", point: true },
      encoding: { x: iterAxis, y: { field: "density", type: "quantitative", title: "density", scale: { domain: [0, 1] } }, color: { field: "net", type: "nominal", title: null } },
    } as TopLevelSpec,
  };
}

/** G's and D's losses, averaged over each logging interval. */
export function lossPlot(records: readonly MetricRecord[]): Plot {
  const points = of(records, "loss").flatMap((r) => [
    { iter: r.iter, net: "D", loss: r.d },
    { iter: r.iter, net: "G", loss: r.g },
  ]);
  return {
    id: "loss",
    title: "Losses",
    spec: {
      ...base("Losses"),
      data: { values: points },
      mark: { type: "line" },
      encoding: { x: iterAxis, y: { field: "loss", type: "quantitative" }, color: { field: "net", type: "nominal", title: null } },
    } as TopLevelSpec,
  };
}

/** One plot per evaluation metric over iterations. */
export function evalPlots(records: readonly MetricRecord[]): Plot[] {
  const evals = of(records, "eval");
  const names = [...new Set(evals.flatMap((r) => Object.keys(r.metrics)))];
  return names.map((name) => {
    // An evaluation without a value (the toy KL of a generator with no sample near a mode) is said, not dropped silently.
    const missing = evals.filter((r) => !(name in r.metrics)).map((r) => r.iter);
    const gap = missing.length ? ` (no value at iteration${missing.length === 1 ? "" : "s"} ${missing.join(", ")})` : "";
    return {
      id: `eval-${name}`,
      title: `Evaluation: ${name}${gap}`,
      spec: {
        ...base(name),
        height: 150,
        data: { values: evals.filter((r) => name in r.metrics).map((r) => ({ iter: r.iter, value: r.metrics[name] })) },
        mark: { type: "line", point: true },
        encoding: { x: iterAxis, y: { field: "value", type: "quantitative", title: name } },
      } as TopLevelSpec,
    };
  });
}

/** The run's primary metric (`primary`, configuredPrimary's) where no evaluation has a value for it, as a note
 * in place of its plot: evalPlots draws only the metrics some evaluation has, so such a metric (the toy KL of a
 * generator with no sample near any mode, at every evaluation) would otherwise vanish without a word. Null when
 * it has a value somewhere, or before the first evaluation. */
export function absentMetricNote(records: readonly MetricRecord[], primary: string | null): { title: string; text: string } | null {
  const evals = of(records, "eval");
  if (!primary || !evals.length || evals.some((r) => primary in r.metrics)) return null;
  const iters = evals.map((r) => r.iter);
  const at = `iteration${iters.length === 1 ? "" : "s"} ${iters.join(", ")}`;
  const why = primary === "kl" ? " (no generated sample near any mode: a total collapse)" : "";
  return {
    title: `Evaluation: ${primary} (no value at ${at})`,
    text: `No plot: ${iters.length === 1 ? `the evaluation (${at}) has no value` : `none of the ${iters.length} evaluations (${at}) has a value`} for ${primary}${why}.`,
  };
}

/** The dense run the FLOPs plot compares with: the summary's plan costs flops.total / ratio over the plan's
 * iterations, which config.json's `iterations` (given as a fallback, for summaries from before `planned`) may no
 * longer be: --extend records a new count before the run continues to it. Null without a summary. */
export function denseRun(summary: Summary | null, iterations: number): { total: number; iterations: number } | null {
  if (!summary || !(summary.flops.ratio > 0)) return null;
  return { total: summary.flops.total / summary.flops.ratio, iterations: summary.flops.planned ?? iterations };
}

/** Training FLOPs so far (paper convention: per iteration at the densities in force, summed over the loss
 * records' intervals) against the dense run of the same plan, pro rata over its iterations; null when the records
 * carry no FLOPs (runs from before they were recorded). */
export function flopsPlot(records: readonly MetricRecord[], dense: { total: number; iterations: number } | null): Plot | null {
  const losses = of(records, "loss");
  if (!losses.length || losses.some((r) => r.flopsPerIteration === undefined)) return null;
  let sum = 0;
  const spent = losses.map((r, i) => {
    sum += r.flopsPerIteration! * (r.iter - (i ? losses[i - 1]!.iter : 0));
    return { iter: r.iter, run: "this run", flops: sum };
  });
  const last = spent.at(-1)!.iter;
  const denseLine = dense ? [0, last].map((iter) => ({ iter, run: "dense", flops: (dense.total * iter) / dense.iterations })) : [];
  return {
    id: "flops",
    title: `Training FLOPs so far (paper convention)${dense ? ", and the dense run's" : ""}`,
    spec: {
      ...base("Training FLOPs"),
      data: { values: [...denseLine, ...spent] },
      mark: { type: "line" },
      encoding: { x: iterAxis, y: { field: "flops", type: "quantitative", title: "FLOPs", axis: { format: ".2e" } }, color: { field: "run", type: "nominal", title: null }, strokeDash: { field: "run", type: "nominal", title: null } },
    } as TopLevelSpec,
  };
}

/** The worker restarts recorded in metrics.jsonl, for the page's subtitle: "2 worker restarts (from the
 * checkpoints at iterations 100, 300)" (a restart record's iteration is that of the checkpoint the new worker
 * resumed from); "" when there were none. */
export function restartsNote(records: readonly MetricRecord[]): string {
  const at = of(records, "restart").map((r) => r.iter);
  if (!at.length) return "";
  return at.length === 1 ? `1 worker restart (from the checkpoint at iteration ${at[0]})` : `${at.length} worker restarts (from the checkpoints at iterations ${at.join(", ")})`;
}

/** The plot with each worker restart as a dotted black rule at the iteration it resumed from (a layer added to
 * the plot's own, which are kept as they are), said in its caption; the plot itself when there was none. */
export function markRestarts(plot: Plot, records: readonly MetricRecord[]): Plot {
  const restarts = of(records, "restart").map((r) => ({ iter: r.iter, attempt: r.attempt, reason: r.reason }));
  if (!restarts.length) return plot;
  const { data, mark, encoding, layer, ...rest } = plot.spec as { data?: unknown; mark?: unknown; encoding?: unknown; layer?: object[] } & Record<string, unknown>;
  const own = layer ?? [{ data, mark, encoding }];
  const rule = {
    data: { values: restarts },
    mark: { type: "rule", color: "#000000", strokeDash: [1, 3], strokeWidth: 2 },
    encoding: { x: iterAxis, tooltip: [{ field: "iter", title: "resumed from iteration" }, { field: "attempt" }, { field: "reason" }] },
  };
  return { ...plot, title: `${plot.title}; worker restarts as dotted black rules`, spec: { ...rest, layer: [...own, rule] } as TopLevelSpec };
}

export function runPlots(records: readonly MetricRecord[], band: { lower: number; upper: number } | null, dense: { total: number; iterations: number } | null = null): Plot[] {
  const flops = flopsPlot(records, dense);
  return [brPlot(records, band), densityPlot(records), lossPlot(records), ...(flops ? [flops] : []), ...evalPlots(records)].map((p) => markRestarts(p, records));
}
