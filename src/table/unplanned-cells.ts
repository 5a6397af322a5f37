import { existsSync } from "node:fs";
import { subdirectories } from "../files.js";
import { join } from "node:path";
import { canonicalMethod } from "../config/method-policies.js";
import { MethodName } from "../config/presets.js";
import type { TablePlan } from "./cells.js";
import { cellId } from "./spec.js";

/** Cell directories under DIR/cells that the table file does not name (it was edited since): left as they
 * are, and said, since a cell renamed by accident is trained again from nothing. One whose method is another
 * name of a planned cell's (ddst-relax for adapt-relax) is that cell's training under the other name: it is
 * named with the directory it would have to be moved to. */
export function unplannedCells(plan: TablePlan): string[] {
  const cells = join(plan.out, "cells");
  const planned = new Map(plan.cells.map((c) => [c.id, c]));
  return subdirectories(cells)
    .filter(({ name }) => !name.startsWith(".") && !planned.has(name))
    .map(({ name: id, dir: where }) => {
      const same = sameCellAs(id, planned);
      return same && !existsSync(join(cells, same))
        ? `${where} is ${same} of this table under the method's other name: move it to ${join(cells, same)} to count it instead of training that cell anew`
        : `${where} is not a cell of this table (the table file no longer names it); it is left as it is`;
    });
}

/** The planned cell id that `id` names with another name of its method, if any. */
function sameCellAs(id: string, planned: ReadonlyMap<string, TablePlan["cells"][number]>): string | undefined {
  const m = /^(.+)-d([^-]+)-s(\d+)$/.exec(id);
  if (!m) return undefined;
  const method = MethodName.safeParse(m[1]);
  if (!method.success) return undefined;
  const canonical = canonicalMethod(method.data);
  for (const cell of planned.values())
    if (canonicalMethod(cell.method) === canonical && cell.method !== method.data && cellId(method.data, cell.density, cell.seed) === id) return cell.id;
  return undefined;
}
