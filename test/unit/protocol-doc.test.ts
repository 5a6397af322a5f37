import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ErrorCode, OP_NAMES, OpArgs, OpResults } from "../../src/protocol/messages.js";

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

  it("names every error code", () => {
    for (const code of ErrorCode.options) expect(doc, code).toContain(`\`${code}\``);
  });
});
