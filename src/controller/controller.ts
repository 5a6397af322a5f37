import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { Experiment } from "../config/experiment.js";
import { DensityGrowth, GrowthCriterion, NetName, PruneCriterion } from "../vocabulary/criteria.js";
import { safeText } from "../input-error.js";

/** The decision layer's plug-in point (docs/controllers.md). A controller is called by the run loop after
 * iterations of its own cadence (and, if it asks, after evaluations) with a read-only view of what the
 * orchestrator knows, and answers with actions from a closed set. Its state is plain JSON, saved in every
 * checkpoint, so a run with any controller resumes exactly. The paper's own rules (G's DST schedule, the
 * relaxed and strict BR rules, DDA) are controllers too (built-in.ts). */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Deeper than this is refused: JSON.stringify and the checkpoint's reader would run out of stack. */
const JSON_DEPTH = 1000;

/** Why `x` is not plain JSON, or null. A cycle or a depth past JSON_DEPTH would only fail later, when the
 * checkpoint is written (and name the file, not the controller); -0 is a number JSON writes as 0. */
function notPlainJson(x: unknown): string | null {
  const open = new Set<object>(); // the objects on the path from the root: a cycle meets one of them again
  const walk = (v: unknown, path: string, depth: number): string | null => {
    const at = (what: string) => (path ? `${path}: ${what}` : what);
    if (v === null || typeof v === "string" || typeof v === "boolean") return null;
    if (typeof v === "number") return Number.isFinite(v) ? null : at(`${v}, not a finite number`);
    if (v === undefined) return at("undefined");
    if (typeof v !== "object") return at(`a ${typeof v}`);
    if (depth > JSON_DEPTH) return at(`nested deeper than ${JSON_DEPTH} levels`);
    if (open.has(v)) return at("refers to itself (a cycle)");
    const proto = Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null;
    if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return at(`a ${proto.constructor?.name || "object"}, not a plain object`);
    open.add(v);
    for (const [k, c] of Object.entries(v)) {
      const problem = walk(c, Array.isArray(v) ? `${path}[${k}]` : path ? `${path}.${k}` : k, depth + 1);
      if (problem) return problem;
    }
    open.delete(v);
    return null;
  };
  return walk(x, "", 0);
}

/** Plain JSON as JSON would carry it: -0 becomes 0, so a state kept in memory and one read back from a
 * checkpoint are the same (a resume is exact). */
const withoutNegativeZero = (x: Json): Json =>
  Object.is(x, -0) ? 0 : Array.isArray(x) ? x.map(withoutNegativeZero) : x && typeof x === "object" ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, withoutNegativeZero(v)])) : x;

export const Json: z.ZodType<Json> = z
  .unknown()
  .superRefine((x, ctx) => {
    const problem = notPlainJson(x);
    if (problem) ctx.addIssue({ code: "custom", message: `must be plain JSON (strings, finite numbers, booleans, null, arrays and objects of them): ${problem}` });
  })
  .transform((x) => withoutNegativeZero(x as Json));

/** What a controller may do. Densities and drop rates are fractions in (0, 1]. */
export const ControllerAction = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("setDensity"),
    net: NetName,
    target: z.number().gt(0).max(1),
    /** Going down prunes the smallest weights across the network; going up grows by this criterion. */
    growth: DensityGrowth.default("global_gradient"),
    prune: z.literal("global_magnitude").default("global_magnitude"),
  }),
  z.strictObject({
    op: z.literal("dstStep"),
    net: NetName,
    dropRate: z.number().gt(0).max(1),
    /** Prune-and-regrow criteria; other fields of a DST policy may ride along (the built-in rules pass theirs). */
    policy: z.object({
      prune: PruneCriterion.default("global_magnitude"),
      growth: GrowthCriterion.default("global_gradient"),
      alpha: z.number().min(0).max(1).default(0.5).describe("hybrid growth: share grown by gradient"),
    }),
  }),
  z.strictObject({ op: z.literal("stop"), reason: z.string().min(1).max(500) }),
]);
export type ControllerActionInput = z.input<typeof ControllerAction>;
export type ControllerAction = z.infer<typeof ControllerAction>;
/** An action that changes masks (every one but stop). */
export type MaskAction = Exclude<ControllerActionInput, { op: "stop" }>;

/** A decision of the BR band rules in the paper's form, written as a `controller` record (reports draw it). */
export const BandDecision = z.strictObject({
  br: z.number(),
  lower: z.number(),
  upper: z.number(),
  decision: z.enum(["increase", "decrease", "hold", "dst"]),
  densityD: z.number(),
});

/** A controller's state is written into every checkpoint.json: past this it would be the run's largest file
 * (and, some hundred MB on, more than one JavaScript string holds, failing the checkpoint, not the controller). */
const STATE_MAX_CHARS = 10_000_000;
const jsonChars = (x: Json) => {
  try {
    return JSON.stringify(x).length;
  } catch {
    return Infinity; // longer than a string can be
  }
};

export const ControllerDecision = z.strictObject({
  actions: z.array(ControllerAction).default([]),
  /** The controller's new state (plain JSON); absent keeps the old one. */
  state: Json.refine((x) => jsonChars(x) <= STATE_MAX_CHARS, `more than ${STATE_MAX_CHARS / 1e6} million characters as JSON: keep what the next decisions need (a summary, not every value seen)`).optional(),
  /** Anything worth keeping about the decision: written, with the actions, as a `decision` record. */
  note: z.record(z.string(), Json).optional(),
  band: BandDecision.optional(),
});
/** What `decide` returns; its `state` is checked against the controller's own state type. */
export type ControllerDecisionInput<S extends Json = Json> = Omit<z.input<typeof ControllerDecision>, "state"> & { state?: S };
export type ControllerDecision = z.infer<typeof ControllerDecision>;

export interface NetDensities {
  /** Measured: active weights over all prunable weights. */
  readonly density: number;
  /** What the network was last set to: its starting density, or the target of the last setDensity. */
  readonly target: number;
  readonly layers: readonly { readonly name: string; readonly density: number; readonly active: number; readonly total: number }[];
}

/** What a controller sees. Everything in it is a copy, frozen: changing it changes nothing. */
export interface ControllerView {
  /** The iteration just finished (1-based); the controller decides what happens before the next. */
  readonly iteration: number;
  readonly iterations: number;
  /** Why it is called now: its own cadence, or an evaluation that just finished (cadence wins if both). */
  readonly event: "cadence" | "evaluation";
  readonly experiment: Experiment;
  /** The balance-ratio window: its value (mean of the per-probe ratios held), whether it is full, the newest ratio. */
  readonly br: { readonly value: number | null; readonly full: boolean; readonly count: number; readonly size: number; readonly latest: number | null };
  /** The newest loss record (means since the record before it). */
  readonly loss: { readonly iter: number; readonly d: number; readonly g: number } | null;
  readonly densities: { readonly generator: NetDensities; readonly discriminator: NetDensities };
  /** Every evaluation so far, oldest first. */
  readonly evaluations: readonly { readonly iter: number; readonly metrics: Readonly<Record<string, number>> }[];
  /** Training FLOPs so far (paper convention) and their share of the dense run of the whole plan. */
  readonly flops: { readonly total: number; readonly ratio: number };
}

export interface Controller<S extends Json = Json> {
  /** Names it in records and error messages; unique in a run. */
  readonly name: string;
  /** Iterations between calls: after every iteration t with t % every === 0, never after the last. */
  readonly every?: number;
  /** Also called after each evaluation during training (not after the final one). */
  readonly atEvaluations?: boolean;
  /** How long one call may take, in milliseconds (default 10 000). A call still running then fails the run. */
  readonly timeoutMs?: number;
  /** What metrics.jsonl keeps of its calls. "decisions" (the default): a `decision` record for each call that
   * returned actions or a note, before the records of what the actions did (`dst`, `density`, `stop`).
   * "effects": only the latter (and a `band` answer as a `controller` record), the paper's rules' layout. */
  readonly records?: "decisions" | "effects";
  /** The state before its first call. */
  initialState(experiment: Experiment): S;
  decide(view: ControllerView, state: S): ControllerDecisionInput<S> | Promise<ControllerDecisionInput<S>>;
}

/** Identity with types, for experiment modules: `controllers: [defineController({...})]`. */
export function defineController<S extends Json>(c: Controller<S>): Controller<S> {
  return c;
}

export function isController(x: unknown): x is Controller {
  const c = x as Partial<Controller> | null;
  return typeof c === "object" && c !== null && typeof c.name === "string" && typeof c.decide === "function" && typeof c.initialState === "function";
}

/** A controller failed: it threw, answered with something not in the closed set, or took too long. */
export class ControllerError extends Error {
  constructor(
    readonly controller: string,
    readonly iter: number,
    message: string,
  ) {
    super(`controller '${controller}' at iteration ${iter}: ${message}`);
    this.name = "ControllerError";
  }
}

/** Whether `c` is due after iteration t (and after an evaluation there, if it wants those). */
export function controllerEvent(c: Pick<Controller, "every" | "atEvaluations">, t: number, iterations: number, evaluated: boolean): ControllerView["event"] | null {
  if (t >= iterations) return null;
  if (c.every !== undefined && t % c.every === 0) return "cadence";
  if (c.atEvaluations && evaluated) return "evaluation";
  return null;
}

/** One call, held to its time limit, its answer checked against the closed set of actions. */
export async function callController(c: Controller, view: ControllerView, state: Json): Promise<ControllerDecision> {
  const t = view.iteration;
  const ms = c.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  let answer: unknown;
  try {
    answer = await Promise.race([
      Promise.resolve().then(() => c.decide(view, structuredClone(state))),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new ControllerError(c.name, t, `no answer within ${ms} ms (its timeoutMs)`)), ms);
      }),
    ]);
  } catch (e) {
    if (e instanceof ControllerError) throw e;
    throw new ControllerError(c.name, t, `it threw: ${thrownText(e)}`);
  } finally {
    clearTimeout(timer);
  }
  let parsed: ReturnType<typeof ControllerDecision.safeParse>;
  try {
    parsed = ControllerDecision.safeParse(answer ?? {});
  } catch (e) {
    // Its own code ran while the answer was read (a getter, a Proxy) and threw.
    throw new ControllerError(c.name, t, `reading its answer threw: ${thrownText(e)}`);
  }
  if (!parsed.success)
    throw new ControllerError(
      c.name,
      t,
      `invalid answer ${short(answer)}: ${parsed.error.issues.map((i) => `${i.path.map(String).join(".") || "(answer)"}: ${i.message}`).join("; ")}`,
    );
  return parsed.data;
}

/** What a controller threw: its message and the stack frames of its own code; ddst's and Node's frames below
 * them say nothing about the controller's mistake. */
export function thrownText(e: unknown): string {
  let stack: unknown;
  try {
    stack = (e as Error | undefined)?.stack;
  } catch {
    /* a getter of its own that throws: its text is all there is */
  }
  if (typeof stack !== "string") return safeText(e);
  const ours = fileURLToPath(new URL("..", import.meta.url)); // dist/ (or src/ under a TypeScript runner)
  const lines = stack.split("\n");
  const kept = lines.filter((l, i) => i === 0 || !/^\s+at /.test(l) || !(l.includes(ours) || l.includes("node:internal") || l.includes("(native)")));
  return kept.join("\n");
}

/** The answer as the controller gave it, for an error message: JSON, except that what JSON would turn into null or
 * drop (NaN, Infinity, undefined, functions, bigints) is shown as it is, since it is usually the culprit. */
const short = (x: unknown) => {
  const odd = (v: unknown) =>
    (typeof v === "number" && !Number.isFinite(v)) || typeof v === "function" || typeof v === "bigint" || typeof v === "symbol" || v === undefined;
  const marks = new Map<string, string>();
  let s: string;
  try {
    s =
      JSON.stringify(x, (_k, v: unknown) => {
        if (!odd(v)) return v;
        const mark = `\u0000${marks.size}\u0000`;
        marks.set(mark, typeof v === "function" ? "[function]" : String(v));
        return mark;
      }) ?? String(x);
    for (const [mark, shown] of marks) s = s.replace(JSON.stringify(mark), shown);
  } catch {
    s = safeText(x);
  }
  return s.length > 300 ? `${s.slice(0, 300)}...` : s;
};

/** A deep-frozen copy, so a controller cannot reach the run's own objects. */
export function frozenCopy<T>(x: T): T {
  const freeze = (v: unknown): unknown => {
    if (v && typeof v === "object") {
      for (const k of Object.keys(v)) freeze((v as Record<string, unknown>)[k]);
      Object.freeze(v);
    }
    return v;
  };
  return freeze(structuredClone(x)) as T;
}
