/** `--set path=value` on the command line: a dotted path into the experiment and a value parsed as JSON
 * when it is JSON (numbers, booleans, null, arrays, objects) and kept as a string otherwise. The result is
 * validated like the file, so a wrong path or value is reported by its full path. */

export class SetOverrideError extends Error {
  constructor(
    message: string,
    /** The experiment's field at fault, where it is not the overridden path. */
    readonly field?: string,
  ) {
    super(message);
    this.name = "SetOverrideError";
  }
}

export function parseSet(arg: string): { path: string[]; value: unknown } {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new SetOverrideError(`--set expects path=value, got '${arg}'`);
  const path = arg.slice(0, eq).split(".");
  if (path.some((p) => p === "" || p === "__proto__" || p === "constructor" || p === "prototype"))
    throw new SetOverrideError(`--set: '${arg.slice(0, eq)}' is not a valid dotted path`);
  const text = arg.slice(eq + 1);
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    /* a bare string such as adapt-relax */
  }
  return { path, value };
}

/** Returns a copy of `input` with each override applied (later ones win). */
export function applySets(input: Record<string, unknown>, sets: readonly string[]): Record<string, unknown> {
  let out = input;
  for (const arg of sets) {
    const { path, value } = parseSet(arg);
    out = setPath(out, path, value);
  }
  return out === input ? copyOf(input) : out;
}

/** A deep copy of an experiment's data; its own controllers (code, which cannot be cloned) are shared. */
function copyOf(input: Record<string, unknown>): Record<string, unknown> {
  const { controllers, ...data } = input;
  const code = codeIn(data);
  if (code !== null)
    throw new SetOverrideError(`a ${code.kind}: code is only allowed in \`controllers\` (the rest of an experiment is data, saved in config.json)`, code.path);
  const out = structuredClone(data);
  if (controllers !== undefined) out.controllers = controllers;
  return out;
}

/** The first function (or other value structuredClone cannot copy) in an experiment's data, with its path. */
function codeIn(x: unknown, path = "", seen = new Set<object>()): { path: string; kind: string } | null {
  if (typeof x === "function" || typeof x === "symbol") return { path, kind: typeof x };
  if (x === null || typeof x !== "object" || seen.has(x)) return null; // a cycle is structuredClone's to copy
  seen.add(x);
  for (const [k, v] of Object.entries(x)) {
    const found = codeIn(v, path ? `${path}.${k}` : k, seen);
    if (found) return found;
  }
  return null;
}

/** Returns a copy of `input` with `value` at the dotted `path` (objects created on the way). */
export function setPath(input: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  if (path.length === 0 || path.some((p) => p === "" || p === "__proto__" || p === "constructor" || p === "prototype"))
    throw new SetOverrideError(`'${path.join(".")}' is not a valid dotted path`);
  if (path[0] === "controllers") throw new SetOverrideError("controllers are code: change them in the experiment module");
  const out = copyOf(input);
  let node: Record<string, unknown> = out;
  for (const [i, key] of path.slice(0, -1).entries()) {
    const next = node[key];
    // train.betas.0 where the file leaves betas to its default: the default list is not known here.
    if ((next === undefined || next === null) && /^\d+$/.test(path[i + 1]!))
      throw new SetOverrideError(
        `${path.join(".")}: '${path.slice(0, i + 1).join(".")}' is ${next === null ? "null" : "not in the experiment, so it holds its default"}: set the whole list: --set '${path.slice(0, i + 1).join(".")}=[...]'`,
      );
    if (next === undefined || next === null) node[key] = {};
    else if (typeof next !== "object")
      throw new SetOverrideError(`${path.join(".")}: '${path.slice(0, i + 1).join(".")}' is not an object`);
    else if (Array.isArray(next)) checkIndex(path, i + 1, next.length); // train.betas.0=0.3: an element of a list
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = structuredClone(value);
  return out;
}

/** path[at] must name an element of the list before it (of `length`): a list is set element by element, never grown. */
function checkIndex(path: readonly string[], at: number, length: number): void {
  const index = path[at]!;
  if (!/^\d+$/.test(index) || Number(index) >= length)
    throw new SetOverrideError(`${path.join(".")}: '${path.slice(0, at).join(".")}' is a list of ${length}: give an index from 0 to ${length - 1}`);
}
