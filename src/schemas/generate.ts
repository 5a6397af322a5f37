import { z } from "zod";
import { OpResults, ReplyHeader, Request } from "../protocol/messages.js";
import { ExperimentInput } from "../config/experiment.js";
import { TableSpec } from "../table/spec.js";

/** The JSON Schema files generated from the zod schemas: file name -> content. schemas/ holds them,
 * committed; a test fails when they drift from the zod source. */
export function generateSchemas(): Record<string, string> {
  const doc = (schema: z.ZodType, id: string, title: string) =>
    JSON.stringify({ $id: id, title, ...z.toJSONSchema(schema, { io: "input", target: "draft-2020-12" }) }, null, 2) + "\n";
  return {
    "experiment.schema.json": doc(ExperimentInput, "ddst/experiment.schema.json", "ddst experiment"),
    "table.schema.json": doc(TableSpec, "ddst/table.schema.json", "ddst table"),
    "request.schema.json": doc(Request, "ddst/request.schema.json", "ddst worker request header"),
    // The reply envelope, and under $defs each op's `result` (what an ok reply to that op carries).
    "reply.schema.json":
      JSON.stringify(
        {
          $id: "ddst/reply.schema.json",
          title: "ddst worker reply header",
          ...z.toJSONSchema(ReplyHeader, { io: "output", target: "draft-2020-12" }),
          $defs: Object.fromEntries(Object.entries(OpResults).map(([op, schema]) => [op, z.toJSONSchema(schema, { io: "output", target: "draft-2020-12" })])),
        },
        null,
        2,
      ) + "\n",
  };
}
