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
