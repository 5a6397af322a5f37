import { parse, View } from "vega";
import { compile } from "vega-lite";
import type { Plot } from "./run-plots.js";

/** A Vega-Lite plot rendered to SVG in Node (no browser, no network): the SVG goes inline into the report,
 * and --png rasterizes the same SVG. */
export async function toSvg(plot: Plot): Promise<string> {
  const view = new View(parse(compile(plot.spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The SVG as a PNG at twice its size (for papers and READMEs). */
export async function toPng(svg: string): Promise<Buffer> {
  const { Resvg } = await import("@resvg/resvg-js");
  return Buffer.from(new Resvg(svg, { background: "white", fitTo: { mode: "zoom", value: 2 } }).render().asPng());
}

/** The plot with its caption as the chart's subtitle, in lines short enough for the chart's width. */
export function captioned(plot: Plot): Plot {
  const lines: string[] = [];
  for (const word of plot.title.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last]!.length + word.length < 90) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  const text = (plot.spec as { title?: unknown }).title;
  return { ...plot, spec: { ...plot.spec, title: { text: typeof text === "string" ? text : "", subtitle: lines } } as Plot["spec"] };
}
