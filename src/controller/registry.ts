import { checkControllers, ConfigError, evaluatesDuringTraining, type Experiment } from "../config/experiment.js";
import { readingModule, readRaw } from "../config/load.js";
import { InputError, safeText } from "../input-error.js";
import { isController, type Controller } from "./controller.js";

/** The code behind config.json's controller references: the experiment module is imported again (a new run
 * and a resume alike), held to the checks a new run's controllers pass (the module may have been edited since),
 * and each controller found in its `controllers` by name. */
export async function controllersOf(exp: Experiment): Promise<Controller[]> {
  const out: Controller[] = [];
  const checked = new Set<string>();
  for (const [i, ref] of (exp.controllers ?? []).entries()) {
    let raw: { controllers?: unknown } | null;
    try {
      raw = (await readRaw(ref.module)) as { controllers?: unknown } | null;
    } catch (e) {
      throw new InputError(
        `the run's controller '${ref.name}' comes from ${ref.module} (config.json's controllers.${i}.module), which cannot be loaded: ` +
          `${e instanceof ConfigError ? e.issues.map((x) => x.message).join("; ") : safeText(e)}\nrestore the module there, or, if it moved, write its new path into controllers.${i}.module of the run's config.json`,
      );
    }
    const { list, c } = readingModule(ref.module, () => {
      const all = Array.isArray(raw?.controllers) ? (raw.controllers as unknown[]) : [];
      if (!checked.has(ref.module)) {
        checked.add(ref.module);
        const issues = checkControllers(all, ref.module, evaluatesDuringTraining(exp));
        if (issues.length) throw new ConfigError(ref.module, issues);
      }
      const list = all.filter(isController);
      return { list, c: list.find((x) => x.name === ref.name) };
    });
    if (!c)
      throw new InputError(
        `the run's controller '${ref.name}' comes from ${ref.module}, whose experiment no longer has it` +
          ` (it has ${list.length ? list.map((x) => `'${x.name}'`).join(", ") : "no controllers"}); restore the module to continue this run`,
      );
    out.push(c);
  }
  return out;
}
