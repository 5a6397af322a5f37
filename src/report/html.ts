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

/** A markdown table (table.md) as an HTML table; other lines are kept as paragraphs. */
export function markdownTable(md: string): string {
  const rows = md.split("\n").filter((l) => l.trim().startsWith("|"));
  const cells = (l: string) => l.trim().replace(/^\||\|$/g, "").split("|").map((c) => escapeHtml(c.trim()));
  const body = rows.filter((l) => !/^\|\s*-/.test(l.trim()));
  const [head, ...rest] = body;
  const text = md.split("\n").filter((l) => l.trim() && !l.trim().startsWith("|")).map((l) => `<p>${escapeHtml(l)}</p>`);
  if (!head) return text.join("\n");
  return [
    ...text,
    "<table>",
    `<tr>${cells(head).map((c) => `<th>${c}</th>`).join("")}</tr>`,
    ...rest.map((l) => `<tr>${cells(l).map((c) => `<td>${c}</td>`).join("")}</tr>`),
    "</table>",
  ].join("\n");
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
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
.pictures { display: flex; flex-wrap: wrap; gap: 1em; } .pictures figure { margin: 0; } .pictures img { width: 240px; image-rendering: pixelated; }
</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(subtitle)}</p>
${sections.map((s) => `<section><h2>${escapeHtml(s.title)}</h2>\n${s.html}\n</section>`).join("\n")}
</body></html>
`;
}
