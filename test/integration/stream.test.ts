import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveExperiment } from "../../src/config/experiment.js";
import type { MetricRecord } from "../../src/run/records.js";
import { streamExperiment } from "../../src/run/stream.js";
import { toyExperiment } from "../toy.js";
import { tempDir } from "./helpers.js";

describe("a run as an event stream", () => {
  it("yields every record, then resolves the summary", async () => {
    const exp = toyExperiment({
      density: 0.2,
      iterations: 100,
      model: { name: "mlp2d", hidden: 32 },
      train: { batchSize: 64 },
      generator: { dst: { every: 25 } },
      discriminator: { controller: { every: 50, window: 50 } },
      log: { every: 10 },
    });
    const run = streamExperiment(exp, { out: join(tempDir(), "run") });
    const seen: MetricRecord[] = [];
    for await (const r of run.events) seen.push(r);
    const summary = await run.summary;
    expect(summary.iterations).toBe(100);
    expect(seen.filter((r) => r.kind === "loss")).toHaveLength(10);
    expect(seen.filter((r) => r.kind === "controller").map((r) => r.iter)).toEqual([50]);
  });

  it("ends the stream and rejects the summary when the run fails", async () => {
    const exp = resolveExperiment({ method: "dense", density: 1, iterations: 10, model: { name: "dcgan32" }, data: { name: "cifar10", path: "/nonexistent/cifar" } });
    const run = streamExperiment(exp, { out: join(tempDir(), "run") });
    for await (const _ of run.events) void _;
    await expect(run.summary).rejects.toThrow(/nonexistent\/cifar/);
  });
});
