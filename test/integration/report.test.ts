import { execa, execaSync } from "execa";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

/** `ddst report` on a real toy run, and on a table directory holding cells: one self-contained HTML file
 * (inline SVG plots, inline pictures, no script, nothing fetched) and, with --png, each plot as a PNG. */

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");
const EXP = {
  name: "report-toy",
  method: "adapt-relax",
  density: 0.2,
  iterations: 120,
  model: { name: "mlp2d", hidden: 64 },
  data: { name: "ring8" },
  discriminator: { controller: { every: 40, window: 40 } },
  log: { every: 10 },
  eval: { every: 60, samples: 2000 },
};
const count = (html: string, s: string) => html.split(s).length - 1;

/** Debian's chromium, which `bash scripts/setup.sh --tests` installs where it can (root and apt-get). */
const chromium = (() => {
  const found = execaSync("sh", ["-c", "command -v chromium || command -v chromium-browser"], { reject: false });
  return found.exitCode === 0 ? String(found.stdout).trim() : null;
})();
if (!chromium) console.warn("report.test.ts: no chromium on PATH (scripts/setup.sh --tests installs it as root with apt-get): the browser test is skipped");
const headless = (args: string[]) =>
  execa(chromium!, ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0", ...args], { reject: false, timeout: 60_000 });

describe("ddst report", () => {
  let report: string | undefined;
  let tableReport: string | undefined;
  let plots = 0;

  it("renders a run's BR with band and decisions, densities, losses, metrics and pictures; and a table's results and small multiples", async () => {
    const dir = tempDir();
    const file = join(dir, "exp.json");
    writeFileSync(file, JSON.stringify(EXP));
    const run = join(dir, "run");
    const r = await execa("node", [CLI, "run", file, "--out", run], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);

    const rep = await execa("node", [CLI, "report", run, "--png"], { reject: false });
    expect(rep.exitCode, rep.stderr).toBe(0);
    const html = readFileSync(join(run, "report.html"), "utf8");
    const metrics = ["modes", "highQuality", "kl"].filter((m) => new RegExp(`<h2>Evaluation: ${m}( \\(no value at [^)]*\\))?</h2>\\n<svg`).test(html));
    expect(metrics.length).toBeGreaterThanOrEqual(2);
    expect(count(html, "<svg")).toBe(4 + metrics.length); // BR, densities, losses, FLOPs, one per metric
    expect(count(html, 'aria-roledescription="rule mark"')).toBe(2); // decisions at 40 and 80
    expect(count(html, 'aria-roledescription="rect mark"')).toBe(1); // the [B-, B+] band
    expect(count(html, "<img ")).toBe(2); // the scatter plots at 60 and 120
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // self-contained: nothing to run, nothing to fetch
    expect(html).toContain('"method": "adapt-relax"');
    report = join(run, "report.html");
    plots = 4 + metrics.length;
    for (const id of ["br", "density", "loss", "flops", ...metrics.map((m) => `eval-${m}`)]) {
      const png = readFileSync(join(run, `report-${id}.png`));
      expect(png.subarray(1, 4).toString()).toBe("PNG");
    }

    // Pictures are embedded only from the run's own samples/: a metrics.jsonl edited to name another file (the
    // page is meant to be shared) or a directory leaves them out, saying so.
    const edited = join(dir, "edited");
    cpSync(run, edited, { recursive: true });
    writeFileSync(join(dir, "secret.png"), readFileSync(join(run, "report-br.png")));
    const pictures = ["../secret.png", "samples"]; // the evaluations at 60 and 120
    const lines = readFileSync(join(edited, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    // ...and with no value for the primary metric at either evaluation (the toy KL of a total collapse), which has
    // no plot then: the page says so in its place.
    for (const l of lines.filter((x) => x.kind === "eval")) {
      l.picture = pictures.shift();
      delete l.metrics.kl;
    }
    // A worker restart recorded as the run records it (after the checkpoint it resumed from, at 60): said in the
    // subtitle and drawn as a rule on every plot.
    const at = lines.map((l) => l.iter <= 60).lastIndexOf(true);
    lines.splice(at + 1, 0, { iter: 60, kind: "restart", attempt: 1, reason: "the PyTorch worker was killed by SIGKILL.", fromCheckpoint: 60 });
    writeFileSync(join(edited, "metrics.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const e = await execa("node", [CLI, "report", edited], { reject: false });
    expect(e.exitCode, e.stderr).toBe(0);
    const eh = readFileSync(join(edited, "report.html"), "utf8");
    expect(count(eh, "<img ")).toBe(0);
    expect(eh).toContain("2 pictures left out: missing, or not a PNG file of this run's samples/");
    expect(eh).not.toContain(readFileSync(join(dir, "secret.png")).toString("base64").slice(0, 200));
    expect(eh).toContain(
      "<h2>Evaluation: kl (no value at iterations 60, 120)</h2>\n<p>No plot: none of the 2 evaluations (iterations 60, 120) has a value for kl (no generated sample near any mode: a total collapse).</p>",
    );
    expect(count(eh, "<svg")).toBe(4 + metrics.filter((m) => m !== "kl").length);
    expect(eh).toMatch(/<p>adapt-relax \(d_G 0\.2\) on ring8 with mlp2d, seed 0: finished at 120\/120, final kl [^;<]+; 1 worker restart \(from the checkpoint at iteration 60\)<\/p>/);
    expect(count(eh, "; worker restarts as dotted black rules</h2>")).toBe(4 + metrics.filter((m) => m !== "kl").length);
    expect(count(eh, 'aria-roledescription="rule mark"')).toBe(2 + 4 + metrics.filter((m) => m !== "kl").length); // decisions, a restart per plot

    // A table directory: table.md and two cells (this run's records, twice).
    const table = join(dir, "table");
    for (const cell of ["adapt-relax-d0.2-s0", "adapt-relax-d0.2-s1"]) {
      mkdirSync(join(table, "cells", cell), { recursive: true });
      copyFileSync(join(run, "metrics.jsonl"), join(table, "cells", cell, "metrics.jsonl"));
    }
    writeFileSync(join(table, "table-spec.json"), JSON.stringify({ source: "t.json", spec: { name: "toy" } }));
    writeFileSync(
      join(table, "table.md"),
      "# toy\n\nKL of the final evaluation.\n\n| method | 20% |\n| --- | --- |\n| adapt-relax | 0.5 |\n\nFinal d_D.\n\n| method | 20% |\n| --- | --- |\n| adapt-relax | 0.050 |\n",
    );
    const out = join(dir, "table-report.html");
    const t = await execa("node", [CLI, "report", table, "--out", out], { reject: false });
    expect(t.exitCode, t.stderr).toBe(0);
    const th = readFileSync(out, "utf8");
    expect(th).toContain("<td>adapt-relax</td><td>0.5</td>");
    // table.md as written: its heading, each grid a table of its own under its caption.
    expect(th).toContain("<h3>toy</h3>\n<p>KL of the final evaluation.</p>\n<table>");
    expect(th).toContain("</table>\n<p>Final d_D.</p>\n<table>");
    expect(count(th, "<table>")).toBe(2);
    expect(count(th, "<svg")).toBe(2);
    expect(count(th, 'aria-roledescription="line mark"')).toBe(4); // BR and d_D, one line per cell each
    expect(existsSync(join(table, "report.html"))).toBe(false);
    tableReport = out;

    // A cell whose metrics.jsonl has a damaged line costs that cell's curves, not the report: the others are drawn,
    // and the page names the cell, the line and what to do.
    const damaged = join(table, "cells", "adapt-relax-d0.2-s1", "metrics.jsonl");
    const records = readFileSync(damaged, "utf8").split("\n");
    records[2] = '{"iter": 3'; // a line in the middle: no record being written, a damaged file
    writeFileSync(damaged, records.join("\n"));
    const partial = join(dir, "partial-report.html");
    const p = await execa("node", [CLI, "report", table, "--out", partial], { reject: false });
    expect(p.exitCode, p.stderr).toBe(0);
    expect(p.stderr).toContain(`report: adapt-relax-d0.2-s1 left out of the plots: ${damaged}:3 is not JSON`);
    const ph = readFileSync(partial, "utf8");
    expect(ph).toContain("2 cells in " + table + "; 1 left out of the plots (unreadable metrics.jsonl, see below)");
    expect(ph).toContain(`<li>adapt-relax-d0.2-s1: ${damaged}:3 is not JSON. Restore that file (from a copy of the cell), or remove the directory ${join(table, "cells", "adapt-relax-d0.2-s1")}`);
    expect(count(ph, "<table>")).toBe(2);
    expect(count(ph, "<svg")).toBe(2);
    expect(count(ph, 'aria-roledescription="line mark"')).toBe(2); // the readable cell's BR and d_D
  });

  it.skipIf(!chromium)("opens in headless Chromium from disk: no console error, every plot an SVG with its marks, a screenshot", async () => {
    expect(report, "the first test writes the report").toBeDefined();
    const dom = await headless(["--dump-dom", `file://${report}`]);
    expect(dom.exitCode, String(dom.stderr)).toBe(0);
    const page = String(dom.stdout);
    expect(count(page, "<svg")).toBe(plots);
    expect(count(page, 'aria-roledescription="rule mark"')).toBe(2);
    expect(count(page, 'aria-roledescription="line mark"')).toBeGreaterThanOrEqual(plots); // every plot draws a line
    expect(String(dom.stderr)).not.toMatch(/CONSOLE|Uncaught|Failed to load resource|net::ERR/);
    const shot = join(tempDir(), "report.png");
    const s = await headless(["--window-size=1200,2400", `--screenshot=${shot}`, `file://${report}`]);
    expect(s.exitCode, String(s.stderr)).toBe(0);
    const png = readFileSync(shot);
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(png.length).toBeGreaterThan(50_000); // a page of plots, not a blank one
    console.log(`report.test.ts: screenshot of the report in ${shot}`);

    const table = await headless(["--dump-dom", `file://${tableReport}`]);
    expect(table.exitCode, String(table.stderr)).toBe(0);
    expect(count(String(table.stdout), "<svg")).toBe(2);
    expect(count(String(table.stdout), 'aria-roledescription="line mark"')).toBe(4);
    expect(String(table.stdout)).toContain("<td>adapt-relax</td><td>0.5</td>");
    expect(String(table.stderr)).not.toMatch(/CONSOLE|Uncaught|Failed to load resource|net::ERR/);
    const tableShot = join(tempDir(), "table-report.png");
    expect((await headless(["--window-size=1000,1000", `--screenshot=${tableShot}`, `file://${tableReport}`])).exitCode).toBe(0);
    console.log(`report.test.ts: screenshot of the table report in ${tableShot}`);
  });
});
