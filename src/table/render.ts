import type { Stat, TableEntry, TableResult } from "./results.js";

/** table.md (three grids: the metric with the paper's number beside it, training FLOPs, final d_D) and
 * table.csv (one line per method and density). */

const METRIC_NAMES: Record<string, string> = { fid: "FID", classifierFid: "classifier FID", kl: "KL to the true mode distribution" };

/** Enough digits for the size of the number: 958.6, 14.19, 0.403; `like` gives a spread the digits of its mean. */
export function num(x: number, like = x): string {
  const a = Math.abs(like);
  return x.toFixed(a >= 100 ? 1 : a >= 1 ? 2 : 3);
}

function cellText(s: Stat, format: (x: number, like?: number) => string, e: TableEntry, missing = 0): string {
  const notes = [missing ? `${missing} without a value` : "", e.diverged.length ? `${e.diverged.length} diverged` : "", e.failed.length ? `${e.failed.length} failed` : ""]
    .filter(Boolean)
    .join("; ");
  // (k/n) whenever a seed lacks a value, n/a included: grids read alike, and a gap is never taken for a whole row.
  const shown = s.values.length < e.planned ? ` (${[`${s.values.length}/${e.planned}`, notes].filter(Boolean).join("; ")})` : "";
  if (s.mean === null) return e.seeds.length || e.diverged.length || e.failed.length ? `n/a${shown}` : "—";
  return format(s.mean) + (s.std === null ? "" : ` ± ${format(s.std, s.mean)}`) + shown;
}

function grid(t: TableResult, text: (e: TableEntry) => string): string {
  const head = `| method | ${t.densities.map((d) => `d_G ${d}`).join(" | ")} |`;
  const rule = `| --- | ${t.densities.map(() => "---").join(" | ")} |`;
  const rows = t.methods.map((m) => `| ${m} | ${t.densities.map((d) => text(t.entries.find((e) => e.method === m && e.density === d)!)).join(" | ")} |`);
  return [head, rule, ...rows].join("\n");
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** " on 10,000 samples against the train split, BatchNorm by batch": a FID depends on all three (fewer samples
 * bias it upwards), so a published number beside it is comparable only where they agree. */
const evaluationText = (t: TableResult) => {
  if (!t.evaluation) return "";
  const on = ` on ${t.evaluation.samples.toLocaleString("en-US")} samples`;
  // The toy metrics compare with the mixture itself, and the toy networks have no BatchNorm.
  if (t.metric === "kl") return on;
  return `${on} against the ${t.evaluation.reference} split, BatchNorm ${t.evaluation.batchNorm === "batch" ? "by batch" : "by running averages"}`;
};

export function tableMarkdown(t: TableResult): string {
  const metric = t.metric ? (METRIC_NAMES[t.metric] ?? t.metric) : null;
  const hasPaper = t.entries.some((e) => e.paper !== null);
  const seeds = `seeds ${t.seeds.join(", ")}`;
  const parts = [`# ${t.name}`, ""];
  const diverged = t.entries.filter((e) => e.diverged.length > 0);
  if (diverged.length)
    parts.push(
      `Training diverged (went to NaN or infinity) in ${diverged.map((e) => `${e.method} at d_G ${e.density} (seed${e.diverged.length > 1 ? "s" : ""} ${e.diverged.join(", ")})`).join("; ")}. ` +
        `${diverged.length === 1 && diverged[0]!.diverged.length === 1 ? "That seed is" : "Those seeds are"} in no statistic below; "d diverged" counts them.`,
      "",
    );
  const failed = t.entries.filter((e) => e.failed.length > 0);
  if (failed.length)
    parts.push(
      `Training failed (the last attempt stopped on an error; the same command retries it) in ${failed.map((e) => `${e.method} at d_G ${e.density} (seed${e.failed.length > 1 ? "s" : ""} ${e.failed.join(", ")})`).join("; ")}. ` +
        `${failed.length === 1 && failed[0]!.failed.length === 1 ? "That seed is" : "Those seeds are"} in no statistic below; "f failed" counts them.`,
      "",
    );
  if (metric) {
    parts.push(
      `${metric} of the final evaluation${evaluationText(t)} (lower is better), mean ± sample std over ${seeds}` +
        `${hasPaper ? "; the paper's number in brackets" : ""}. (k/n): only k of n seeds have a value.` +
        (t.entries.some((e) => e.metricMissing > 0)
          ? ` "m without a value": m seeds finished, but their final evaluation has no ${t.metric}${t.metric === "kl" ? " (no sample near any mode: a total collapse)" : ""}.`
          : ""),
      "",
      grid(t, (e) => cellText(e.metric, (x, like) => num(x, like), e, e.metricMissing) + (e.paper === null ? "" : ` [${num(e.paper)}]`)),
      "",
    );
  } else parts.push(t.evaluates ? "No evaluation results yet." : "No metric: the table's experiments do not evaluate (they have no eval block).", "");
  const hasPaperFlops = t.entries.some((e) => e.paperFlops !== null);
  parts.push(
    `Training FLOPs normalized to the dense run (paper convention), mean ± sample std over seeds${hasPaperFlops ? "; the paper's figure in brackets" : ""}.`,
    "",
    grid(t, (e) => cellText(e.flops, pct, e) + (e.paperFlops === null ? "" : ` [${pct(e.paperFlops)}]`)),
    "",
  );
  parts.push("Final discriminator density d_D, mean ± sample std over seeds.", "", grid(t, (e) => cellText(e.densityD, (x) => x.toFixed(3), e)), "");
  return parts.join("\n");
}

export function tableCsv(t: TableResult): string {
  const head = ["method", "density", "seeds_done", "seeds_planned", "metric", "mean", "std", "paper", "flops_ratio_mean", "flops_ratio_std", "paper_flops_ratio", "density_d_mean", "density_d_std", "seeds_without_metric", "seeds_diverged", "seeds_failed"];
  const v = (x: number | null) => (x === null ? "" : String(x));
  const rows = t.entries.map((e) =>
    [e.method, e.density, e.seeds.length, e.planned, t.metric ?? "", v(e.metric.mean), v(e.metric.std), v(e.paper), v(e.flops.mean), v(e.flops.std), v(e.paperFlops), v(e.densityD.mean), v(e.densityD.std), e.metricMissing, e.diverged.length, e.failed.length].join(","),
  );
  return [head.join(","), ...rows].join("\n") + "\n";
}
