import { execa } from "execa";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

const ROOT = join(import.meta.dirname, "..", "..");

describe("live PyTorch objects of a finished run (pythonia)", () => {
  it("examples/inspect-run.ts samples from the EMA generator and prints per-layer densities", async () => {
    const out = join(tempDir(), "run");
    const r = await execa("node", [join(ROOT, "dist", "cli.js"), "run", join(ROOT, "examples", "ring8-adapt.json"), "--iterations", "100", "--set", "model.hidden=64", "--out", out], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const x = await execa(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "examples", "inspect-run.ts"), out], { reject: false, cwd: ROOT, timeout: 120_000 });
    expect(x.exitCode, x.stderr).toBe(0);
    expect(x.stdout).toMatch(/checkpoint at iteration 100/);
    expect(x.stdout).toMatch(/8 samples from the generator \(the EMA one, if the run keeps one; first values of each\)/);
    const densities = [...x.stdout.matchAll(/^ {2}(\S+)\s+([01]\.\d{4})$/gm)].map((m) => Number(m[2]));
    expect(densities.length).toBeGreaterThanOrEqual(6);
    expect(densities.every((d) => d > 0 && d <= 1)).toBe(true);
  });
});
