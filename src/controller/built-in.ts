import type { Experiment } from "../config/experiment.js";
import { balanceRule } from "./balance-rule.js";
import type { Controller } from "./controller.js";
import { generatorDst } from "./generator-dst.js";

/** The paper's rules an experiment's method and policies call for, in the order they act at a shared
 * iteration: G's DST step first, then D's balance rule (as the reference). */
export function builtInControllers(exp: Experiment) {
  return [generatorDst(exp), balanceRule(exp)].filter((c) => c !== null);
}

export const BUILT_IN_NAMES: ReadonlySet<string> = new Set(["generator-dst", "balance-rule"]);

export type BuiltIn = ReturnType<typeof builtInControllers>[number] & Controller<null>;
