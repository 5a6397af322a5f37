import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MetricRecord, readRecords, Summary } from "../../src/index.js";

describe("reading a run back through the package's API", () => {
  it("parses metrics.jsonl line by line and names a bad line by number", () => {
    const dir = mkdtempSync(join(tmpdir(), "ddst-read-"));
    const loss = { iter: 10, kind: "loss", d: 1.5, g: 0.5 };
    writeFileSync(join(dir, "metrics.jsonl"), `${JSON.stringify(loss)}\n`);
    expect(readRecords(dir)).toEqual([loss]);
    expect(MetricRecord.parse(loss)).toEqual(loss);
    writeFileSync(join(dir, "metrics.jsonl"), `${JSON.stringify(loss)}\n${JSON.stringify({ iter: 20, kind: "lose" })}\n`);
    expect(() => readRecords(dir)).toThrow(`${join(dir, "metrics.jsonl")}:2 is not a ddst metrics record`);
    // Lines numbered as an editor shows them, blank ones included.
    writeFileSync(join(dir, "metrics.jsonl"), `${JSON.stringify(loss)}\n\n${JSON.stringify(loss)}\ngarbage\n`);
    expect(() => readRecords(dir)).toThrow(`${join(dir, "metrics.jsonl")}:4 is not JSON`);
    // A last line still being written (or cut by a crash) is left out; what comes before is whole.
    writeFileSync(join(dir, "metrics.jsonl"), `${JSON.stringify(loss)}\n{"iter":20,"ki`);
    expect(readRecords(dir)).toEqual([loss]);
    // Not a run directory: said, not an empty list.
    expect(() => readRecords(join(dir, "nope"))).toThrow(`${join(dir, "nope")} does not exist; readRecords takes a run directory`);
    expect(() => readRecords(join(dir, "metrics.jsonl"))).toThrow(/metrics\.jsonl is a file; readRecords takes the run directory/);
    const other = mkdtempSync(join(tmpdir(), "ddst-read-"));
    mkdirSync(join(other, "metrics.jsonl"));
    expect(() => readRecords(other)).toThrow(`cannot read ${join(other, "metrics.jsonl")}: it is a directory, not a file (EISDIR)`);
    expect(Summary.safeParse({}).success).toBe(false);
  });
});
