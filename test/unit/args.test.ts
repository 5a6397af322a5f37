import { describe, expect, it } from "vitest";
import { cliName, intOption, UsageError } from "../../src/commands/args.js";
import { join } from "node:path";

describe("intOption", () => {
  it("reads integers of at least its minimum and names the option and the value otherwise", () => {
    expect(intOption("seed", "0")).toBe(0);
    expect(intOption("jobs", "3", 1)).toBe(3);
    expect(intOption("jobs", undefined, 1)).toBeUndefined();
    // One message whether the value is not a number or a number below the minimum.
    for (const bad of ["0", "abc", "2.5", "", "-1"]) {
      expect(() => intOption("jobs", bad, 1)).toThrow(UsageError);
      expect(() => intOption("jobs", bad, 1)).toThrow(`--jobs must be a positive integer, got '${bad}'`);
    }
    expect(() => intOption("seed", "x")).toThrow("--seed must be a non-negative integer, got 'x'");
    expect(() => intOption("n", "2", 3)).toThrow("--n must be an integer of at least 3, got '2'");
    expect(intOption("n", String(2 ** 53 - 1))).toBe(2 ** 53 - 1);
    expect(() => intOption("iterations", "99999999999999999999")).toThrow("--iterations is too large: '99999999999999999999'");
    // A maximum of the option's own (a timer's longest delay, the largest batch).
    expect(intOption("status-every", "2000000", 1, 2_000_000)).toBe(2_000_000);
    expect(() => intOption("status-every", "3000000", 1, 2_000_000)).toThrow("--status-every is too large: '3000000' (at most 2000000)");
  });
});

describe("cliName", () => {
  it("is ddst through the package's bin, and node with the script's path otherwise", () => {
    expect(cliName("/usr/local/bin/ddst")).toBe("ddst");
    expect(cliName(join(process.cwd(), "dist", "cli.js"))).toBe(`node ${join("dist", "cli.js")}`);
    expect(cliName("/elsewhere/ddst/dist/cli.js")).toBe("node /elsewhere/ddst/dist/cli.js");
    expect(cliName("/my tools/ddst/dist/cli.js")).toBe("node '/my tools/ddst/dist/cli.js'");
  });
});
