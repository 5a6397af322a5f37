import { execa } from "execa";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PAPER_SETTING, paperBench, paperExperiment } from "../../src/bench/paper.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");

/** The paper setting's cadence (n_critic 5, probe every 10, ADAPT's ERK masks) on a toy network, so the real
 * protocol path, the profile and concurrent workers run in seconds on a CPU. */
const toyPaper = {
  ...PAPER_SETTING,
  model: { name: "mlp2d", hidden: 32 },
  data: { name: "ring8" },
  train: { ...PAPER_SETTING.train, batchSize: 16, genBatchSize: 32 },
} as const;

describe("ddst bench --paper", () => {
  it("times steady-state iterations, profiles some and runs workers side by side", async () => {
    const exp = paperExperiment({ cudaGraphs: true, compile: true }, toyPaper);  // both CUDA only: the CPU runs eagerly
    const r = await paperBench(exp, { device: "cpu", warmup: 1, iterations: 4, profileIterations: 2 }, [2]);
    expect(r.setting).toMatchObject({ nCritic: 5, probeEvery: 10, batchSize: 16, genBatchSize: 32, cudaGraphs: true, compile: true, precision: "fp32" });
    expect(r.setting.density).toEqual({ generator: 0.1, discriminator: exp.discriminator.density });
    expect(r.torch).toMatch(/^2\./);
    expect(r.msPerIteration).toBeGreaterThan(0);
    expect(r.warmupSeconds).toBeGreaterThan(0);
    expect(r.profile).toMatchObject({ iterations: 2, launchesPerIteration: null, kernelsPerIteration: null, busyFraction: null, syncsPerIteration: null });
    // An iteration is 5 D steps and a G step: hundreds of operators even for a toy network.
    expect(r.profile!.cpuOpsPerIteration).toBeGreaterThan(200);
    expect(r.concurrent).toHaveLength(1);
    expect(r.concurrent[0]).toMatchObject({ runs: 2 });
    const both = r.concurrent[0]!;
    expect(both.iterationsPerS).toBeGreaterThan(0);
    expect(both.overOneRun).toBeCloseTo(both.iterationsPerS * (r.msPerIteration / 1000), 6);
  });

  it("refuses options that are not its own or out of range, naming them", async () => {
    for (const [args, message] of [
      [["--warmup", "3"], /--warmup goes with --paper/],
      [["--paper", "--cuda-graphs", "yes"], /--cuda-graphs must be on or off, got 'yes'/],
      [["--masking", "off"], /--masking goes with --paper/],
      [["--compile", "on"], /--compile goes with --paper/],
      [["--paper", "--compile", "1"], /--compile must be on or off, got '1'/],
      [["--paper", "--masking", "no"], /--masking must be on or off, got 'no'/],
      [["--paper", "--precision", "fp16"], /--precision must be fp32 or bf16, got 'fp16'/],
      [["--paper", "--concurrent", "1,0"], /--concurrent takes run counts from 1 to 64/],
      [["--paper", "--device", "tpu"], /--device must be cpu or cuda, got 'tpu'/],
      // (on a machine without a GPU, as CI's)
      ...(existsSync("/dev/nvidia0") ? [] : ([[["--device", "cuda"], /--device cuda: torch sees no CUDA device with .*; use --device cpu/]] as const)),
    ] as const) {
      const r = await execa("node", [CLI, "bench", ...args], { reject: false });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });
});
