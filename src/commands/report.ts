import { existsSync, lstatSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { escapeHtml, GENERATOR, imageTag, markdownHtml, page, preBlock, type Section } from "../report/html.js";
import { captioned, toPng, toSvg } from "../report/render-plots.js";
import { isMarkedPng, isPng, markPng } from "../report/png-mark.js";
import { readBytes, readJsonAs, subdirectories, writeWhole } from "../files.js";
import { absentMetricNote, denseRun, restartsNote, runPlots, type Plot } from "../report/run-plots.js";
import { configuredPrimary } from "../run/evaluation.js";
import { tablePlots, type TableCell } from "../report/table-plots.js";
import { TableResult } from "../table/results.js";
import { Experiment } from "../config/experiment.js";
import { readRecords } from "../analysis/read-records.js";
import type { MetricRecord } from "../run/records.js";
import { InputError } from "../input-error.js";
import { RunDirError } from "../run/run-dir.js";
import { changesText } from "../config/config-changes.js";
import { finalMetric, runStatus } from "../run/run-status.js";
import { UsageError } from "./args.js";
import { plannedCells, tableName } from "./ls.js";

/** `ddst report RUN_DIR|TABLE_DIR [--out FILE.html] [--png]`: one self-contained HTML file with the plots
 * (Vega-Lite, rendered to SVG in Node), the sample pictures, the config and the summary; --png also writes
 * each plot as a PNG beside the HTML. */

async function plotSections(plots: Plot[], png: string | null, dir: string): Promise<{ sections: Section[]; written: string[] }> {
  const sections: Section[] = [];
  const written: string[] = [];
  const file = (plot: Plot) => `${png}-${plot.id}.png`;
  // All of them before the first is written: a refusal leaves every file as it was.
  if (png) for (const plot of plots) checkReplaceable(file(plot), dir, "png");
  for (const plot of plots) {
    const svg = await toSvg(plot);
    sections.push({ title: plot.title, html: svg });
    if (png) {
      // A PNG leaves the page behind: it carries the page's caption (what is shown, what was left out) itself.
      writeReport(file(plot), markPng(await toPng(await toSvg(captioned(plot)))));
      written.push(file(plot));
    }
  }
  return { sections, written };
}

/** An evaluation's picture, only where it is what the run writes (a PNG file in its samples/, picturePath), so
 * that a metrics.jsonl edited to name another file cannot put that file into a page meant to be shared. */
function samplePicture(dir: string, picture: string): Buffer | null {
  if (!/^samples\/iter-\d+(-[\w-]+)?\.png$/.test(picture)) return null;
  const file = join(dir, picture);
  try {
    if (!lstatSync(file).isFile()) return null;
    const png = readFileSync(file);
    return isPng(png) ? png : null;
  } catch {
    return null;
  }
}

async function runReport(dir: string, png: string | null) {
  const s = runStatus(dir);
  if (!s) throw new UsageError(`${dir} is not a ddst run or table directory (no readable config.json or table-spec.json)`);
  const e = s.experiment;
  const records = readRecords(dir);
  const c = e.discriminator.controller;
  const { sections, written } = await plotSections(runPlots(records, c ? { lower: c.lower, upper: c.upper } : null, denseRun(s.summary, e.iterations)), png, dir);
  // After the metrics' plots, where the primary metric's would be.
  const absent = absentMetricNote(records, configuredPrimary(e));
  if (absent) sections.push({ title: absent.title, html: `<p>${escapeHtml(absent.text)}</p>` });
  const named = records.flatMap((r) => (r.kind === "eval" && r.picture ? [{ iter: r.iter, png: samplePicture(dir, r.picture) }] : []));
  const pictures = named.filter((p): p is { iter: number; png: Buffer } => p.png !== null);
  const foreign = named.filter((p) => p.png === null).length;
  if (pictures.length || foreign)
    sections.push({
      title: "Samples (EMA generator) at each evaluation",
      html:
        `<div class="pictures">${pictures.map((p) => `<figure>${imageTag(p.png, `iteration ${p.iter}`)}<figcaption>iteration ${p.iter}</figcaption></figure>`).join("")}</div>` +
        (foreign ? `<p>${foreign} picture${foreign === 1 ? "" : "s"} left out: missing, or not a PNG file of this run's samples/</p>` : ""),
    });
  if (s.summary) sections.push({ title: "Summary (summary.json)", html: preBlock(JSON.stringify(s.summary, null, 2)) });
  sections.push({ title: "Configuration (config.json)", html: preBlock(JSON.stringify(e, null, 2)) });
  const metric = finalMetric(s.summary);
  const edited = s.edited.length ? ` (config.json was edited after its checkpoint: ${changesText(s.edited)}; shown is what was trained)` : "";
  const restarts = restartsNote(records);
  const subtitle = `${e.method} (d_G ${e.density}) on ${e.data.name} with ${e.model.name}, seed ${e.seed}: ${s.kind} at ${s.iter}/${s.planned}${metric ? `, final ${metric}` : ""}${restarts ? `; ${restarts}` : ""}${edited}`;
  return { html: page(`ddst run ${e.name}`, subtitle, sections), written };
}

/** A cell's experiment, for grouping its curves by method and density; null where config.json cannot be read
 * (its small multiples are still drawn). */
function cellExperiment(dir: string): Experiment | null {
  try {
    return readJsonAs(join(dir, "config.json"), Experiment);
  } catch {
    return null;
  }
}

async function tableReport(dir: string, png: string | null) {
  const cellsDir = join(dir, "cells");
  const planned = plannedCells(dir); // not the directories of cells the table file no longer names
  const cells: TableCell[] = [];
  const unreadable: { id: string; why: string }[] = [];
  for (const c of subdirectories(cellsDir).filter((c) => !planned || planned.has(c.name))) {
    // One cell's damaged metrics.jsonl costs that cell's curves, not the page: the others are still shown.
    try {
      const exp = cellExperiment(c.dir);
      cells.push({ id: c.name, records: readRecords(c.dir), ...(exp ? { method: exp.method, density: exp.generator.density, seed: exp.seed } : {}) });
    } catch (e) {
      if (!(e instanceof RunDirError)) throw e;
      unreadable.push({ id: c.name, why: e.message.replace(/\.$/, "") });
    }
  }
  for (const u of unreadable) console.error(`report: ${u.id} left out of the plots: ${u.why}`);
  const { sections, written } = await plotSections(tablePlots(cells, readJsonAs(join(dir, "table.json"), TableResult)), png, dir);
  const md = join(dir, "table.md");
  const table: Section = { title: "Results (table.md)", html: existsSync(md) ? markdownHtml(readFileSync(md, "utf8")) : "<p>no finished cell yet</p>" };
  const leftOut: Section[] = unreadable.length
    ? [
        {
          title: "Cells left out of the plots",
          html:
            `<p>The records (metrics.jsonl) of ${unreadable.length === 1 ? "this cell" : "these cells"} cannot be read, so ${unreadable.length === 1 ? "its curves are" : "their curves are"} not drawn below. ` +
            `The results above come from the cells' summary.json and are not affected.</p>\n<ul>\n` +
            unreadable
              .map((u) => `<li>${escapeHtml(u.id)}: ${escapeHtml(u.why)}. Restore that file (from a copy of the cell), or remove the directory ${escapeHtml(join(cellsDir, u.id))} so that <code>ddst table</code> trains the cell again.</li>`)
              .join("\n") +
            "\n</ul>",
        },
      ]
    : [];
  const all = cells.length + unreadable.length;
  const subtitle = `${all} cells in ${dir}${unreadable.length ? `; ${unreadable.length} left out of the plots (unreadable metrics.jsonl, see below)` : ""}`;
  return { html: page(`ddst table ${tableName(dir)}`, subtitle, [table, ...leftOut, ...sections]), written };
}

/** A report is written over nothing but an earlier report: never over a run's own files (config.json,
 * metrics.jsonl), a page or picture of the user's, or through a link to somewhere else. `kind` "png": one of
 * the plots --png writes beside the page. */
function checkReplaceable(out: string, dir: string, kind: "html" | "png" = "html"): void {
  if (kind === "html" && !/\.html$/i.test(out)) throw new InputError(`--out ${out}: a report is an HTML file; give a name ending in .html`);
  const what = kind === "html" ? `--out ${out}` : `--png: ${out}`;
  let link = false;
  try {
    link = lstatSync(out).isSymbolicLink();
  } catch {
    return; // nothing there
  }
  if (link) throw new InputError(`${what} is a symbolic link; it is left as it is: give the report a path of its own`);
  const head = statSync(out).isFile() ? readHead(out) : Buffer.alloc(0);
  const ours = kind === "html" ? isOurPage(out, dir, head) : isMarkedPng(head) || isOlderPlot(out, dir, head);
  if (!ours) throw new InputError(`${what} exists and is not ${kind === "html" ? "a ddst report" : "a plot of a ddst report"}; it is left as it is: choose another --out`);
}

/** A ddst report's page; those of versions before the mark sit at the default place. */
function isOurPage(out: string, dir: string, head: Buffer): boolean {
  const text = head.toString("utf8");
  return text.includes(`<meta name="generator" content="${GENERATOR}">`) || (resolve(out) === resolve(dir, "report.html") && text.toLowerCase().startsWith("<!doctype html"));
}

/** A plot written by a ddst version before the PNG mark: at the default place, beside the ddst report written
 * with it, and not newer than that report (the plots are written first). A picture of the user's put there later
 * is newer. */
function isOlderPlot(out: string, dir: string, head: Buffer): boolean {
  const page = join(dir, "report.html");
  if (resolve(dirname(out)) !== resolve(dir) || !basename(out).startsWith("report-") || !isPng(head) || !existsSync(page)) return false;
  return isOurPage(page, dir, readHead(page)) && statSync(out).mtimeMs <= statSync(page).mtimeMs;
}

/** Written whole or not at all (writeWhole): a full disk or a read-only directory leaves no half a file that a
 * later report would refuse as not its own, and the error names the file. */
function writeReport(file: string, data: string | Buffer): void {
  try {
    writeWhole(file, data);
  } catch (e) {
    throw new InputError(`cannot write ${file}: ${(e as Error).message}; choose another --out`);
  }
}

/** A file's first 400 bytes, where both marks are. */
const readHead = (file: string) => readBytes(file, 0, 400);

export async function cmdReport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: "string" }, png: { type: "boolean", default: false } } });
  if (positionals.length !== 1) throw new UsageError("ddst report takes one run or table directory");
  const dir = positionals[0]!;
  const out = values.out ?? join(dir, "report.html");
  const png = values.png ? join(dirname(out), basename(out).replace(/\.html$/i, "")) : null;
  // Before any rendering: the PNG files are written beside the report as they are made.
  if (!existsSync(dirname(out)) || !statSync(dirname(out)).isDirectory())
    throw new InputError(`cannot write the report to ${out}: ${dirname(out)} is not a directory; choose another --out`);
  checkReplaceable(out, dir);
  const isTable = existsSync(join(dir, "table-spec.json"));
  const { html, written } = isTable ? await tableReport(dir, png) : await runReport(dir, png);
  writeReport(out, html);
  console.log(`report: ${out}${written.length ? `\nplots as PNG: ${written.join(", ")}` : ""}`);
  return 0;
}
