import { z } from "zod";

/** Small shape tools shared by the experiment file and the wire protocol. */

/** `schema` with every default removed (a field with a default becomes plain, its description kept): the
 * basis of an override, which names only what it changes, and of a wire argument, which names everything. */
export function withoutDefaults<S extends z.ZodRawShape>(schema: z.ZodObject<S>) {
  // A description sits on the default wrapper; it goes with the field.
  const bare = (v: z.ZodDefault) => (v.description ? (v.unwrap() as z.ZodType).describe(v.description) : v.unwrap());
  const shape = Object.fromEntries(Object.entries(schema.shape).map(([k, v]) => [k, v instanceof z.ZodDefault ? bare(v) : v]));
  return z.strictObject(shape as { [K in keyof S]: S[K] extends z.ZodDefault<infer T> ? T : S[K] });
}

/** A JSON object (not null, not an array): raw experiment and table input is checked with it before zod. */
export const isJsonObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
