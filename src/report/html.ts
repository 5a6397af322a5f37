/** The report as one self-contained HTML file: plots inline as SVG, pictures inline as data URIs, no script
 * and nothing fetched when it is opened. */

export interface Section {
  title: string;
  /** Trusted markup (an SVG from the renderer, an <img>, a <table>). */
  html: string;
}

/** Text as element content; `escapeHtml` also escapes quotes, for attribute values. */
const escapeText = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
export const escapeHtml = (s: string) => escapeText(s).replace(/"/g, "&quot;");

export const preBlock = (text: string) => `<pre>${escapeText(text)}</pre>`;

export const imageTag = (png: Buffer, alt: string) => `<img alt="${escapeHtml(alt)}" src="data:image/png;base64,${png.toString("base64")}">`;

/** table.md as HTML, block by block in its order: a `#` heading as a heading (one level below the section's
 * h2, so "# name" is an h3), each run of `|` lines as a table of its own (the row above a `| --- |` rule as its
 * header), every other run of lines as a paragraph. So each grid has its caption paragraph directly above it.
 * All text is escaped; nothing else of markdown is interpreted (table.md uses nothing else). */
export function markdownHtml(md: string): string {
  const lines = md.split(/\r?\n/);
  const blocks: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!.trim();
    if (!line) {
      i++;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (heading) {
      const level = Math.min(6, heading[1]!.length + 2);
      blocks.push(`<h${level}>${escapeText(heading[2]!)}</h${level}>`);
      i++;
      continue;
    }
    const block: string[] = [];
    const isRow = line.startsWith("|");
    while (i < lines.length) {
      const l = lines[i]!.trim();
      if (!l || /^#{1,6}\s/.test(l) || l.startsWith("|") !== isRow) break;
      block.push(l);
      i++;
    }
    blocks.push(isRow ? htmlTable(block) : `<p>${escapeText(block.join(" "))}</p>`);
  }
  return blocks.join("\n");
}

/** A delimiter row: `| --- | :--: |`. */
const isRule = (row: string) => /^\|?(\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?$/.test(row);

/** The cells of a row, split at the pipes that are not escaped (`\|` is a pipe in a cell). */
const rowCells = (row: string) =>
  row
    .replace(/^\|/, "")
    .replace(/(?<!\\)\|$/, "")
    .split(/(?<!\\)\|/)
    .map((c) => escapeText(c.trim().replace(/\\\|/g, "|")));

/** One markdown table: the rows above its delimiter row are header cells (none without one). */
function htmlTable(rows: readonly string[]): string {
  const rule = rows.findIndex(isRule);
  const tr = (row: string, tag: "th" | "td") => `<tr>${rowCells(row).map((c) => `<${tag}>${c}</${tag}>`).join("")}</tr>`;
  return ["<table>", ...rows.flatMap((row, j) => (j === rule ? [] : [tr(row, j < rule ? "th" : "td")])), "</table>"].join("\n");
}

/** Marks a page as ddst's: `report --out` replaces no other file. */
export const GENERATOR = "ddst report";

export function page(title: string, subtitle: string, sections: readonly Section[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="${GENERATOR}"><title>${escapeHtml(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
table { border-collapse: collapse; margin-bottom: 1em; } td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; } td:first-child, th:first-child { text-align: left; }
.pictures { display: flex; flex-wrap: wrap; gap: 1em; } .pictures figure { margin: 0; } .pictures img { width: 240px; image-rendering: pixelated; }
</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(subtitle)}</p>
${sections.map((s) => `<section><h2>${escapeHtml(s.title)}</h2>\n${s.html}\n</section>`).join("\n")}
</body></html>
`;
}
