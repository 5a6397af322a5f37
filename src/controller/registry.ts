import type { Experiment } from "../config/experiment.js";
import { readRaw } from "../config/load.js";
import { InputError } from "../input-error.js";
import { isController, type Controller } from "./controller.js";

/** The code behind config.json's controller references: the experiment module is imported again (a new run
 * and a resume alike), and each controller found in its `controllers` by name. */
export async function controllersOf(exp: Experiment): Promise<Controller[]> {
  const out: Controller[] = [];
  for (const ref of exp.controllers ?? []) {
    const raw = (await readRaw(ref.module)) as { controllers?: unknown } | null;
    const list = Array.isArray(raw?.controllers) ? raw.controllers.filter(isController) : [];
    const c = list.find((x) => x.name === ref.name);
    if (!c)
      throw new InputError(
        `the run's controller '${ref.name}' comes from ${ref.module}, whose experiment no longer has it` +
          ` (it has ${list.length ? list.map((x) => `'${x.name}'`).join(", ") : "no controllers"}); restore the module to continue this run`,
      );
    out.push(c);
  }
  return out;
}
