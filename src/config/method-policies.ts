import { isJsonObject } from "../vocabulary/schema-shapes.js";
import { MethodName, presetPolicies } from "./presets.js";

/** A method decides which policies exist: whether G runs DST, whether D has a density controller and which
 * rule it follows. An experiment may tune those policies but not add, remove or change them, or it would
 * silently be another method under the first one's name. Pure, and on raw (unvalidated) input, so that the
 * same rule serves resolveExperiment (an error) and the table runner (which drops what does not apply). */

export interface PolicyConflict {
  path: string;
  message: string;
}

/** Other names of a method (DDST is ADAPT's working name), each with the paper's; the aliases are left out of the
 * lists of methods that messages suggest. */
const ALIAS_OF: Partial<Record<MethodName, MethodName>> = { "ddst-relax": "adapt-relax", "ddst-strict": "adapt-strict" };
const ALIASES: ReadonlySet<MethodName> = new Set(Object.keys(ALIAS_OF) as MethodName[]);

/** The method's paper name: two names of one method train the same cells. */
export const canonicalMethod = (m: MethodName): MethodName => ALIAS_OF[m] ?? m;

interface Shape {
  generatorDst: boolean;
  rule: "relaxed" | "strict" | null;
}

function shapeOf(method: MethodName): Shape {
  const p = presetPolicies(method, 0.5);
  return { generatorDst: p.generator.dst !== null, rule: p.discriminator.controller?.rule ?? null };
}

function methodsWhere(test: (s: Shape) => boolean): string {
  return MethodName.options.filter((m) => !ALIASES.has(m) && test(shapeOf(m))).join(", ");
}


/** Fields of `input` that tune a policy `method` does not have, or that would change the method's policies. */
export function policyConflicts(method: MethodName, input: { generator?: unknown; discriminator?: unknown }): PolicyConflict[] {
  const shape = shapeOf(method);
  const out: PolicyConflict[] = [];
  const g = input.generator;
  if (isJsonObject(g) && "dst" in g) {
    if (isJsonObject(g.dst) && !shape.generatorDst)
      out.push({
        path: "generator.dst",
        message: `${method} keeps the generator's masks fixed (methods with generator DST: ${methodsWhere((s) => s.generatorDst)}); remove this block or choose one of those methods`,
      });
    if (g.dst === null && shape.generatorDst)
      out.push({
        path: "generator.dst",
        message: `${method} runs DST on the generator and null would turn it off, which is another method (without generator DST: ${methodsWhere((s) => !s.generatorDst)}); remove this field or choose one of those methods`,
      });
  }
  const d = input.discriminator;
  if (!isJsonObject(d) || !("controller" in d)) return out;
  const c = d.controller;
  if (c === null && shape.rule !== null)
    out.push({
      path: "discriminator.controller",
      message: `${method} adjusts D's density by BR and null would remove its controller, which is another method (without one: ${methodsWhere((s) => s.rule === null)}); remove this field or choose one of those methods`,
    });
  if (!isJsonObject(c)) return out;
  if (shape.rule === null) {
    out.push({
      path: "discriminator.controller",
      message: `${method} has no density controller (methods with one: ${methodsWhere((s) => s.rule !== null)}); remove this block or choose one of those methods`,
    });
    return out;
  }
  // A rule that is not one of the two is the schema's to report.
  if ((c.rule === "relaxed" || c.rule === "strict") && c.rule !== shape.rule)
    out.push({
      path: "discriminator.controller.rule",
      message: `${method} follows the ${shape.rule} rule and the rule follows the method (${c.rule} rule: ${methodsWhere((s) => s.rule === c.rule)}); remove this field or choose one of those methods`,
    });
  if (isJsonObject(c.capDst) && shape.rule === "relaxed")
    out.push({
      path: "discriminator.controller.capDst",
      message: `only the strict rule runs D's DST step at the cap, and ${method} follows the relaxed rule (strict: ${methodsWhere((s) => s.rule === "strict")}); remove this block or choose one of those methods`,
    });
  return out;
}

/** A copy of a raw experiment input without the fields policyConflicts names (`dropped`: their dotted paths),
 * for applying one base experiment to several methods. The input itself is left untouched. */
export function dropInapplicable(method: MethodName, input: Record<string, unknown>): { input: Record<string, unknown>; dropped: string[] } {
  const dropped = [...new Set(policyConflicts(method, input).map((c) => c.path))];
  let out = { ...input };
  for (const path of dropped) out = without(out, path.split("."));
  return { input: out, dropped };
}

function without(obj: Record<string, unknown>, path: string[]): Record<string, unknown> {
  const [head, ...rest] = path as [string, ...string[]];
  const copy = { ...obj };
  if (rest.length === 0) delete copy[head];
  else if (isJsonObject(copy[head])) copy[head] = without(copy[head], rest);
  return copy;
}
