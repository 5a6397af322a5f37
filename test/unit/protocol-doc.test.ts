import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ErrorCode, OP_NAMES, OpArgs, OpResults } from "../../src/protocol/messages.js";
import { DataArgs, ModelArgs, TrainArgs } from "../../src/vocabulary/networks.js";

/** docs/protocol.md against the zod source: every op documented with exactly its argument fields (optional
 * ones marked `?`) and its result fields, and every error code named, so the document cannot drift. */

const doc = readFileSync(join(import.meta.dirname, "..", "..", "docs", "protocol.md"), "utf8");
/** The top-level field names of "{a, b: [{c, d}], e?}" (nested brackets skipped, values after ':' dropped). */
function fields(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if ("[{(".includes(ch)) depth++;
    if ("]})".includes(ch)) depth--;
    if (ch === "," && depth === 0) {
      out.push(current);
      current = "";
    } else current += ch;
  }
  out.push(current);
  return out
    .map((f) => f.split(":")[0]!.trim())
    .filter(Boolean)
    .sort();
}
const keysOf = (schema: z.ZodType, markOptional: boolean) =>
  Object.entries((schema as z.ZodObject).shape)
    .map(([k, v]) => (markOptional && (v as z.ZodType).safeParse(undefined).success ? `${k}?` : k))
    .sort();

describe("docs/protocol.md", () => {
  // "- `dstStep {net, dropRate, prune, growth, alpha?}` -> `{net, pruned, grown, active, total}`"
  const ops = new Map<string, { args: string[]; result: string[] | null }>();
  for (const m of doc.matchAll(/^- `(\w+) \{(.*?)\}` ->\s+(?:result )?(?:`\{(.*?)\}`(?:[;,: ]|$)|stats)/gms))
    ops.set(m[1]!, { args: fields(m[2]!), result: m[3] === undefined ? null : fields(m[3]) });

  it("documents every op, and no other", () => {
    expect([...ops.keys()].sort()).toEqual([...OP_NAMES].sort());
  });

  it("gives each op's argument fields as the request schema has them", () => {
    for (const op of OP_NAMES) expect(ops.get(op)?.args, op).toEqual(keysOf(OpArgs[op], true));
  });

  it("gives each op's result fields as the reply schema has them", () => {
    for (const op of OP_NAMES) {
      const documented = ops.get(op)?.result ?? keysOf(OpResults.stats, false); // "-> stats (below)"
      expect(documented, op).toEqual(keysOf(OpResults[op], false));
    }
  });

  it("gives each model and data spec's fields as the request schema has them", () => {
    // "`sngan32|sngan48 {variant: "lottery", latentDim, ...}`": names -> the field lists documented for them.
    const specs = [...doc.matchAll(/`([\w|-]+) \{([^`]*?)\}`/g)].map((m) => ({ names: m[1]!, fields: fields(m[2]!).join(",") }));
    const leaves = (u: z.ZodType): z.ZodObject[] => (u instanceof z.ZodObject ? [u] : (u as z.ZodDiscriminatedUnion).options.flatMap((o) => leaves(o as z.ZodType)));
    for (const spec of [...leaves(ModelArgs), ...leaves(DataArgs)]) {
      const name = spec.shape.name as z.ZodLiteral | z.ZodEnum;
      const names = (name instanceof z.ZodEnum ? name.options : [name.value]).join("|");
      const expected = keysOf(spec, true).filter((k) => k !== "name").join(",");
      expect(specs.filter((s) => s.names === names).map((s) => s.fields), names).toContain(expected);
    }
  });

  it("names every field of build's train block", () => {
    const block = /`train`, every field required[\s\S]*?(?=\n {2}- )/.exec(doc)?.[0] ?? "";
    for (const field of Object.keys(TrainArgs.shape)) expect(block, field).toContain(`\`${field}\``);
  });

  it("names every error code", () => {
    for (const code of ErrorCode.options) expect(doc, code).toContain(`\`${code}\``);
  });
});
