import { readFileSync, statSync } from "node:fs";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { experimentPaths } from "./data-paths.js";
import { applySets, SetOverrideError } from "./set-override.js";
import { ConfigError, resolveExperiment, type Experiment } from "./experiment.js";
import { packageRoot } from "../worker/paths.js";
import { tmpProblem } from "../files.js";
import { InputError, safeText } from "../input-error.js";

/** Reads an experiment file: JSON, or a JavaScript module whose default export is the experiment.
 * `sets` (`path=value`, from the command line) are applied to the raw input before validation. With
 * `checkPaths`, data paths must resolve (environment variables set, data packages installed). */
export async function loadExperiment(file: string, sets: readonly string[] = [], checkPaths = true): Promise<Experiment> {
  const raw = await readRaw(file);
  return readingModule(file, () => experimentOf(raw, file, sets, checkPaths));
}

function experimentOf(raw: unknown, file: string, sets: readonly string[], checkPaths: boolean): Experiment {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new ConfigError(file, [{ path: "", message: "an experiment must be a JSON object" }]);
  if (isTableFile(raw))
    throw new ConfigError(file, [{ path: "", message: `this is a table file (base, methods, densities, seeds), not an experiment: run it with \`ddst table ${file}\`; \`ddst table ${file} --plan\` lists its cells with their FLOPs` }]);
  let input: Record<string, unknown>;
  try {
    input = applySets(raw as Record<string, unknown>, sets);
  } catch (e) {
    if (e instanceof SetOverrideError) throw new ConfigError(file, [{ path: e.field ?? "", message: e.message }]);
    throw e;
  }
  return experimentFrom(input, file, checkPaths, isModule(file) ? resolve(file) : undefined);
}

/** `read()` of what `file` gave: where it is a module, whose own code (a getter, a Proxy) may run and throw, that
 * is named as the module's fault, not ddst's. JSON runs no code. */
export function readingModule<T>(file: string, read: () => T): T {
  if (!isModule(file)) return read();
  try {
    return read();
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new ConfigError(file, [{ path: "", message: `reading the module's export threw: ${safeText(e).split("\n")[0]}` }]);
  }
}

/** Content with a table file's keys (base, methods, densities, seeds), given where an experiment belongs. */
export const isTableFile = (raw: object) => ["base", "methods", "densities", "seeds"].every((k) => k in raw);

/** A JavaScript or TypeScript module (whose default export is the experiment or table), not JSON. */
export const isModule = (file: string) => [".js", ".mjs", ".ts", ".mts"].includes(extname(file));

/** Validates and expands a raw experiment (ConfigError naming `source` and every offending field); with
 * `checkPaths`, its data paths must resolve too. `module`: the file it came from, where its own controllers are. */
export function experimentFrom(input: unknown, source: string, checkPaths = true, module?: string): Experiment {
  const exp = resolveExperiment(input, source, module);
  if (checkPaths) {
    const { issues } = experimentPaths(exp);
    if (issues.length) throw new ConfigError(source, issues);
  }
  return exp;
}

/** The raw content of a JSON file, or the default export of a JavaScript / TypeScript module. */
export async function readRaw(file: string): Promise<unknown> {
  const ext = extname(file);
  if (isModule(file)) {
    let mod: { default?: unknown };
    // tsx compiles into TMPDIR: where it cannot write, it waits for ever.
    const tmp = ext.endsWith("ts") ? tmpProblem() : null;
    if (tmp) throw new ConfigError(file, [{ path: "", message: `cannot compile the TypeScript module: ${tmp}` }]);
    // A top-level await that never settles leaves nothing to run: Node exits (code 13) with no word of why.
    const unsettled = (code: number) => {
      // Only that exit (13); a module's own exit or an error thrown from its timers ends the process as they do.
      if (code !== 13 && process.exitCode !== 13) return;
      console.error(`ddst: ${file}: the module never finished loading (a top-level await that never settles)`);
      process.exitCode = 2;
    };
    process.once("exit", unsettled);
    try {
      // TypeScript modules go through tsx's loader; plain modules through Node's own import.
      mod = ext.endsWith("ts")
        ? ((await (await import("tsx/esm/api")).tsImport(pathToFileURL(resolve(file)).href, import.meta.url)) as { default?: unknown })
        : ((await import(pathToFileURL(resolve(file)).href)) as { default?: unknown });
    } catch (e) {
      // The whole message (a syntax error's file:line:column come after esbuild's first line), not the require stack.
      const lines = safeText(e).split("\n");
      const stack = lines.findIndex((l) => l.startsWith("Require stack"));
      const message = lines
        .slice(0, stack < 0 ? 8 : stack)
        .map((l) => l.trim())
        .filter(Boolean)
        .join(" ");
      // Inside the checkout "ddst" names the package itself; elsewhere it must be installed beside the file, and
      // as an ES module package (its dependencies have no CommonJS entry).
      const hint = /Cannot find (module|package) 'ddst'|No "exports" main defined/.test(message)
        ? `; outside the ddst checkout, install it where the module is (\`npm install ${packageRoot()}\` there) and make the module ESM: "type": "module" in that package.json, or name the file .mts`
        : "";
      throw new ConfigError(file, [{ path: "", message: `cannot load the module: ${message}${hint}` }]);
    } finally {
      process.off("exit", unsettled);
    }
    // Outside an ESM package (no "type": "module" above the file) tsx compiles to CommonJS, and the default
    // export arrives wrapped as { __esModule, default }.
    const value = (mod.default as { __esModule?: boolean; default?: unknown } | undefined)?.__esModule ? (mod.default as { default?: unknown }).default : mod.default;
    if (value === undefined) {
      const named = Object.keys(mod).filter((k) => k !== "default");
      const found = named.length ? ` (it exports ${named.map((k) => `'${k}'`).join(", ")}: \`export default\` the experiment)` : "";
      throw new ConfigError(file, [{ path: "", message: `the module has no default export${found}` }]);
    }
    return value;
  }
  let text: string;
  try {
    // A pipe or a device would be read until it ends, which may be never (/dev/zero: until memory runs out).
    if (!statSync(file).isFile()) throw new Error("not a regular file");
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(file, [{ path: "", message: `cannot read the file: ${(e as Error).message}` }]);
  }
  try {
    // A byte-order mark (some Windows editors write one) is no part of the JSON.
    return JSON.parse(text.replace(/^\uFEFF/, "")) as unknown;
  } catch (e) {
    throw new ConfigError(file, [{ path: "", message: `not valid JSON: ${(e as Error).message}` }]);
  }
}
