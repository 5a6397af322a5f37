import type { Experiment } from "../config/experiment.js";
import type { MetricRecord, Summary } from "./records.js";
import { runExperiment, type RunOptions } from "./run-experiment.js";

/** A run as an event stream, for scripts that drive several runs:
 *
 *   const run = streamExperiment(exp, { out: "runs/a" });
 *   for await (const r of run.events) if (r.kind === "controller") console.log(r.iter, r.densityD);
 *   const summary = await run.summary;
 *
 * The stream ends when the run ends; a failed run ends it and rejects `summary`. */
export function streamExperiment(exp: Experiment, opts: Omit<RunOptions, "onRecord">): { events: AsyncIterable<MetricRecord>; summary: Promise<Summary> } {
  const queue: MetricRecord[] = [];
  let done = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const summary = runExperiment(exp, {
    ...opts,
    onRecord: (r) => {
      queue.push(r);
      notify();
    },
  }).finally(() => {
    done = true;
    notify();
  });
  // The caller may iterate without awaiting `summary`; a failure is still delivered through `summary`.
  summary.catch(() => undefined);
  const events = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (done) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
  return { events, summary };
}
