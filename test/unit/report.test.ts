import { describe, expect, it } from "vitest";
import { markdownHtml } from "../../src/report/html.js";
import { captioned, toPng, toSvg } from "../../src/report/render-plots.js";
import { isMarkedPng, isPng, markPng } from "../../src/report/png-mark.js";
import { crc32 } from "node:zlib";
import { absentMetricNote, brPlot, denseRun, densityPlot, evalPlots, flopsPlot, lossPlot, markRestarts, restartsNote, runPlots } from "../../src/report/run-plots.js";
import { tablePlots } from "../../src/report/table-plots.js";
import type { MetricRecord, Summary } from "../../src/run/records.js";

/** The report's plot specs, built from metrics records, and what they render to (SVG in Node). */

const probe = { fakePre: 0, fakePost: 0, real: 0 };
const records: MetricRecord[] = [
  { iter: 0, kind: "density", generator: 0.1, discriminator: 0.1 },
  ...Array.from({ length: 20 }, (_, i): MetricRecord => ({ iter: 10 * (i + 1), kind: "br", br: 0.3 + 0.01 * i, ratio: i === 5 ? 27 : 0.3, probe })),
  ...Array.from({ length: 4 }, (_, i): MetricRecord => ({ iter: 50 * (i + 1), kind: "loss", d: 1, g: 2, flopsPerIteration: i < 2 ? 2e7 : 4e7 })),
  { iter: 100, kind: "controller", br: 0.35, lower: 0.45, upper: 0.55, decision: "decrease", densityD: 0.05 },
  { iter: 200, kind: "controller", br: 0.5, lower: 0.45, upper: 0.55, decision: "hold", densityD: 0.05 },
  { iter: 100, kind: "eval", metrics: { kl: 0.5, modes: 6 }, picture: null },
  { iter: 200, kind: "eval", metrics: { kl: 0.2, modes: 8 }, picture: null },
];
const count = (svg: string, role: string) => svg.split(`aria-roledescription="${role}"`).length - 1;

describe("report plots", () => {
  it("BR: the window, the probes within range, the band, and a rule per controller decision", async () => {
    const plot = brPlot(records, { lower: 0.45, upper: 0.55 });
    const layers = (plot.spec as { layer: { data: { values: unknown[] }; mark: { type: string } }[] }).layer;
    expect(layers.map((l) => l.mark.type)).toEqual(["rect", "point", "line", "rule"]);
    expect(layers.map((l) => l.data.values.length)).toEqual([1, 19, 20, 2]); // the ratio of 27 is left out...
    expect(plot.title).toMatch(/1 outside the range not drawn/); // ...and said so
    const svg = await toSvg(plot);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(count(svg, "rule mark")).toBe(2);
    expect(count(svg, "line mark")).toBe(1);
    expect(count(svg, "rect mark")).toBe(1);
    // A PNG carries the caption itself, in lines, since it leaves the page behind.
    const title = (captioned(plot).spec as { title: { text: string; subtitle: string[] } }).title;
    expect(title.text).toBe("Balance ratio");
    expect(title.subtitle.join(" ")).toBe(plot.title);
    expect(Math.max(...title.subtitle.map((l) => l.length))).toBeLessThanOrEqual(100);
    expect(await toSvg(captioned(plot))).toContain("outside the range not drawn");
  });

  it("BR: an experiment's own controller's actions as rules of their own colour", async () => {
    const own: MetricRecord[] = [
      ...records,
      { iter: 150, kind: "decision", controller: "mine", event: "cadence", actions: [{ op: "setDensity", net: "generator", target: 0.2, growth: "global_gradient", prune: "global_magnitude" }], note: null },
      { iter: 180, kind: "decision", controller: "mine", event: "cadence", actions: [], note: { why: "nothing to do" } },
    ];
    const plot = brPlot(own, { lower: 0.45, upper: 0.55 });
    const layers = (plot.spec as { layer: { data: { values: { actions?: string }[] }; mark: { type: string } }[] }).layer;
    expect(layers.map((l) => l.mark.type)).toEqual(["rect", "point", "line", "rule", "rule"]);
    expect(layers[4]!.data.values).toEqual([{ iter: 150, controller: "mine", actions: "generator -> 0.2" }]);
    expect(plot.title).toMatch(/the experiment's controllers' actions as rules/);
    expect(count(await toSvg(plot), "rule mark")).toBe(3);
  });

  it("densities as steps from the density and controller records; losses; one plot per metric", async () => {
    const d = densityPlot(records);
    expect((d.spec as { data: { values: unknown[] } }).data.values).toEqual([
      { iter: 0, net: "d_G", density: 0.1 },
      { iter: 0, net: "d_D", density: 0.1 },
      { iter: 100, net: "d_D", density: 0.05 },
      { iter: 200, net: "d_D", density: 0.05 },
    ]);
    expect(count(await toSvg(d), "line mark")).toBe(2);
    expect((lossPlot(records).spec as { data: { values: unknown[] } }).data.values).toHaveLength(8);
    const evals = evalPlots(records);
    expect(evals.map((p) => p.id)).toEqual(["eval-kl", "eval-modes"]);
    expect(count(await toSvg(evals[0]!), "line mark")).toBe(1);
    expect(evals[0]!.title).toBe("Evaluation: kl");
    // An evaluation without a value for a metric is named in that plot's caption.
    const collapsed = evalPlots([...records, { iter: 300, kind: "eval", metrics: { modes: 0 }, picture: null }]);
    expect(collapsed.map((p) => p.title)).toEqual(["Evaluation: kl (no value at iteration 300)", "Evaluation: modes"]);
  });

  it("a primary metric without a value at any evaluation gets a note in place of its plot", () => {
    const collapsed: MetricRecord[] = [
      ...records.filter((r) => r.kind !== "eval"),
      { iter: 100, kind: "eval", metrics: { modes: 0, highQuality: 0 }, picture: null },
      { iter: 200, kind: "eval", metrics: { modes: 0, highQuality: 0 }, picture: null },
    ];
    expect(evalPlots(collapsed).map((p) => p.id)).toEqual(["eval-modes", "eval-highQuality"]); // no plot for kl...
    expect(absentMetricNote(collapsed, "kl")).toEqual({
      // ...so the page says why, in the words the plots' captions use
      title: "Evaluation: kl (no value at iterations 100, 200)",
      text: "No plot: none of the 2 evaluations (iterations 100, 200) has a value for kl (no generated sample near any mode: a total collapse).",
    });
    expect(absentMetricNote(collapsed.slice(0, -1), "fid")).toEqual({
      title: "Evaluation: fid (no value at iteration 100)",
      text: "No plot: the evaluation (iteration 100) has no value for fid.",
    });
    expect(absentMetricNote(records, "kl")).toBeNull(); // it has a plot
    expect(absentMetricNote(collapsed.filter((r) => r.kind !== "eval"), "kl")).toBeNull(); // no evaluation yet
    expect(absentMetricNote(collapsed, null)).toBeNull(); // a run without evaluations configured
  });

  it("worker restarts: in the subtitle, and as a rule at the iteration resumed from on every plot", async () => {
    const restart = (iter: number, attempt: number): MetricRecord => ({ iter, kind: "restart", attempt, reason: "the PyTorch worker was killed by SIGKILL.", fromCheckpoint: iter });
    const restarted = [...records, restart(100, 1), restart(100, 2), restart(150, 3)];
    expect(restartsNote(records)).toBe("");
    expect(restartsNote([...records, restart(100, 1)])).toBe("1 worker restart (from the checkpoint at iteration 100)");
    expect(restartsNote(restarted)).toBe("3 worker restarts (from the checkpoints at iterations 100, 100, 150)");

    // Without restarts every plot is as it was; with them, each gets a rule layer of its own and says so.
    const plain = runPlots(records, { lower: 0.45, upper: 0.55 });
    expect(plain.map((p) => markRestarts(p, records))).toEqual(plain);
    const plots = runPlots(restarted, { lower: 0.45, upper: 0.55 });
    expect(plots.map((p) => p.id)).toEqual(["br", "density", "loss", "flops", "eval-kl", "eval-modes"]);
    for (const [i, plot] of plots.entries()) {
      const layers = (plot.spec as { layer: { data: { values: unknown[] }; mark: { type: string; color?: string } }[] }).layer;
      expect(layers.at(-1)!.mark).toMatchObject({ type: "rule", color: "#000000" });
      expect(layers.at(-1)!.data.values).toEqual([100, 100, 150].map((iter, a) => ({ iter, attempt: a + 1, reason: "the PyTorch worker was killed by SIGKILL." })));
      expect(plot.title).toBe(`${plain[i]!.title}; worker restarts as dotted black rules`);
    }
    // A single-view plot keeps its own data, mark and encoding as the first layer, and its size and title.
    const density = plots[1]!.spec as { layer: object[]; title: string; width: number };
    expect(density.layer[0]).toEqual({ data: { values: (plain[1]!.spec as { data: { values: unknown[] } }).data.values }, mark: { type: "line", interpolate: "step-after", point: true }, encoding: (plain[1]!.spec as { encoding: object }).encoding });
    expect([density.title, density.width]).toEqual(["Densities", 640]);
    const svg = await toSvg(plots[1]!);
    expect(count(svg, "rule mark")).toBe(3);
    expect(count(svg, "line mark")).toBe(2);
    expect(count(await toSvg(plots[0]!), "rule mark")).toBe(2 + 3); // D's decisions, and the restarts
  });

  it("compares with the dense run of the summary's plan, whatever config.json's count says since (--extend)", () => {
    const summary = { flops: { total: 2e10, ratio: 0.2, planned: 200 } } as Summary;
    expect(denseRun(summary, 400)).toEqual({ total: 1e11, iterations: 200 });
    // A summary from before `planned`: config.json's count is all there is.
    expect(denseRun({ flops: { total: 2e10, ratio: 0.2 } } as Summary, 400)).toEqual({ total: 1e11, iterations: 400 });
    expect(denseRun(null, 400)).toBeNull();
  });

  it("training FLOPs so far, summed from the per-iteration cost, against the dense run pro rata; none for records without it", async () => {
    const plot = flopsPlot(records, { total: 1e11, iterations: 400 })!;
    expect((plot.spec as { data: { values: unknown[] } }).data.values).toEqual([
      { iter: 0, run: "dense", flops: 0 },
      { iter: 200, run: "dense", flops: 5e10 },
      ...[1e9, 2e9, 4e9, 6e9].map((flops, i) => ({ iter: 50 * (i + 1), run: "this run", flops })),
    ]);
    expect(count(await toSvg(plot), "line mark")).toBe(2);
    expect(flopsPlot([{ iter: 10, kind: "loss", d: 1, g: 1 }], null)).toBeNull();
  });

  it("a table's small multiples: one panel per cell", async () => {
    const plots = tablePlots(
      [
        { id: "adapt-relax-d0.1-s0", records },
        { id: "dense-d0.1-s0", records },
        { id: "static-balance-d0.1-s0", records },
      ],
      null,
    );
    expect(plots.map((p) => p.id)).toEqual(["cells-br", "cells-density-d"]);
    const svg = await toSvg(plots[0]!);
    expect(count(svg, "line mark")).toBe(3);
  });

  it("a table's metric over iterations per method and density, and the final metric against training FLOPs", async () => {
    const shifted = records.map((r) => (r.kind === "eval" ? { ...r, metrics: { kl: r.metrics.kl! + 0.1 } } : r));
    const cells = [
      { id: "adapt-relax-d0.1-s0", method: "adapt-relax", density: 0.1, seed: 0, records },
      { id: "adapt-relax-d0.1-s1", method: "adapt-relax", density: 0.1, seed: 1, records: shifted },
      { id: "static-balance-d0.1-s0", method: "static-balance", density: 0.1, seed: 0, records },
      { id: "static-balance-d0.5-s0", method: "static-balance", density: 0.5, seed: 0, records },
      { id: "dense-s0", method: "dense", density: 1, seed: 0, records },
    ];
    const stat = (values: number[]) => ({ values, mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : null, std: values.length > 1 ? 0.07 : null });
    const entry = (method: string, density: number, metric: number[], flops: number) => ({
      method, density, seeds: [0], planned: 2, diverged: [], failed: [], metric: stat(metric), metricMissing: 0, flops: stat([flops]), densityD: stat([density]), perSeed: [], paper: null, paperFlops: null,
    });
    const result = {
      name: "t", metric: "kl", evaluates: true, evaluation: null, methods: ["adapt-relax", "static-balance"], densities: [0.1, 0.5], seeds: [0, 1],
      entries: [entry("adapt-relax", 0.1, [0.2, 0.3], 0.4), entry("adapt-relax", 0.5, [], 0.6), entry("static-balance", 0.1, [0.2], 0.1), entry("static-balance", 0.5, [0.2], 0.5), entry("dense", 0.1, [0.1], 1), entry("dense", 0.5, [0.1], 1)],
    };
    const plots = tablePlots(cells, result);
    expect(plots.map((p) => p.id)).toEqual(["table-metric", "table-metric-flops", "cells-br", "cells-density-d"]);
    const curves = plots[0]!.spec as { data: { values: { method: string; density: string; iter: number; value: number }[] } };
    expect(curves.data.values.filter((v) => v.method === "adapt-relax" && v.iter === 200).map((v) => v.value)).toEqual([0.2, 0.2 + 0.1]);
    expect(new Set(curves.data.values.map((v) => v.density))).toEqual(new Set(["d_G 0.1", "d_G 0.5"]));
    // The dense baseline (trained once per seed) is drawn in every density panel.
    expect(curves.data.values.filter((v) => v.method === "dense" && v.iter === 200).map((v) => v.density)).toEqual(["d_G 0.1", "d_G 0.5"]);
    // One point per method and density with a mean (the entry without one is left out); dense once, as such.
    const points = (plots[1]!.spec as { data: { values: { method: string; density: string; flops: number }[] } }).data.values;
    expect(points.map((p) => [p.method, p.density, p.flops])).toEqual([["adapt-relax", "0.1", 40], ["static-balance", "0.1", 10], ["static-balance", "0.5", 50], ["dense", "dense", 100]]);
    for (const p of plots.slice(0, 2)) expect(await toSvg(p)).toContain("<svg");
    // Without a table.json (or a metric), only the small multiples.
    expect(tablePlots(cells, { ...result, metric: null }).map((p) => p.id)).toEqual(["cells-br", "cells-density-d"]);
  });

  it("renders table.md as an HTML table", () => {
    const html = markdownHtml("Table 1\n\n| method | 10% |\n| --- | --- |\n| adapt-relax | 1.0 <b> |\n");
    expect(html).toBe("<p>Table 1</p>\n<table>\n<tr><th>method</th><th>10%</th></tr>\n<tr><td>adapt-relax</td><td>1.0 &lt;b&gt;</td></tr>\n</table>");
  });

  it("renders a table.md of several grids block by block: its heading, each caption directly above its own table", () => {
    // As `ddst table` writes it (src/table/render.ts), with text to escape in the name, a caption and a cell.
    const md = [
      "# toy <script>",
      "",
      "KL to the true mode distribution of the final evaluation (lower is better), mean ± sample std over seeds 0, 1.",
      "(k/n): only k of n seeds have a value.",
      "",
      "| method | d_G 0.5 |",
      "| --- | --- |",
      "| adapt-relax | 1.40 (1/2; 1 without a value) |",
      "| static-balance | 0.558 ± 0.744 [0.5 & up] |",
      "",
      "Training FLOPs normalized to the dense run (paper convention), mean ± std over seeds.",
      "",
      "| method | d_G 0.5 |",
      "| --- | --- |",
      "| adapt-relax | 50.25% ± 0.00% |",
      "",
      "Final discriminator density d_D, mean ± std over seeds.",
      "",
      "| method | d_G 0.5 |",
      "| --- | --- |",
      "| adapt-relax | 0.450 ± 0.000 |",
      "",
    ].join("\n");
    expect(markdownHtml(md).split("\n")).toEqual([
      "<h3>toy &lt;script&gt;</h3>",
      "<p>KL to the true mode distribution of the final evaluation (lower is better), mean ± sample std over seeds 0, 1. (k/n): only k of n seeds have a value.</p>",
      "<table>",
      "<tr><th>method</th><th>d_G 0.5</th></tr>",
      "<tr><td>adapt-relax</td><td>1.40 (1/2; 1 without a value)</td></tr>",
      "<tr><td>static-balance</td><td>0.558 ± 0.744 [0.5 &amp; up]</td></tr>",
      "</table>",
      "<p>Training FLOPs normalized to the dense run (paper convention), mean ± std over seeds.</p>",
      "<table>",
      "<tr><th>method</th><th>d_G 0.5</th></tr>",
      "<tr><td>adapt-relax</td><td>50.25% ± 0.00%</td></tr>",
      "</table>",
      "<p>Final discriminator density d_D, mean ± std over seeds.</p>",
      "<table>",
      "<tr><th>method</th><th>d_G 0.5</th></tr>",
      "<tr><td>adapt-relax</td><td>0.450 ± 0.000</td></tr>",
      "</table>",
    ]);
    // A table right under its caption (no blank line), a table without a delimiter row (no header), an escaped pipe.
    expect(markdownHtml("## a\nb\n| x \\| y | z |\n\n| 1 |")).toBe(
      "<h4>a</h4>\n<p>b</p>\n<table>\n<tr><td>x | y</td><td>z</td></tr>\n</table>\n<table>\n<tr><td>1</td></tr>\n</table>",
    );
  });
});

describe("png marks", () => {
  it("mark a rendered plot with a valid tEXt chunk that only ddst's PNGs have", async () => {
    const png = await toPng(await toSvg(lossPlot([{ iter: 10, kind: "loss", d: 1, g: 2 }])!));
    expect(isPng(png) && !isMarkedPng(png)).toBe(true);
    const marked = markPng(png);
    expect(isMarkedPng(marked)).toBe(true);
    // The chunk: length 20, "tEXt", "Software\0ddst report", and the CRC-32 of type and data (zlib's).
    const at = 33;
    expect(marked.readUInt32BE(at)).toBe(20);
    expect(marked.subarray(at + 4, at + 28).toString("latin1")).toBe("tEXtSoftware\0ddst report");
    expect(marked.readUInt32BE(at + 28)).toBe(crc32(marked.subarray(at + 4, at + 28)));
    expect(Buffer.concat([marked.subarray(0, at), marked.subarray(at + 32)]).equals(png)).toBe(true);
  });
});
