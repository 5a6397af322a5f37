import type { TopLevelSpec } from "vega-lite";
import type { MetricRecord } from "../run/records.js";
import type { Plot } from "./run-plots.js";

/** A table's small multiples: each cell's BR window and d_D over iterations, one small panel per cell. */
export function tablePlots(cells: readonly { id: string; records: readonly MetricRecord[] }[]): Plot[] {
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
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
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
  return [multiples("cells-br", "BR window per cell", br, "BR", false), multiples("cells-density-d", "d_D per cell", dD, "d_D", true)];
}
