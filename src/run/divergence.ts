/** Training that has gone to NaN or infinity. A GAN that diverges does not come back, and a non-finite value
 * has no JSON form (it would be written as null, which no reader of metrics.jsonl accepts), so the run stops
 * at the segment where it happened, keeping everything written before it. */

/** The first iteration of a segment at which a loss or a probe is not a finite number, and what was. Rows are
 * the worker's: losses [iter, lossD, lossG], probes [iter, fakePre, fakePost, real]. */
export function firstNonFinite(losses: readonly number[][], probes: readonly number[][]): { iter: number; values: string[] } | null {
  const named: [readonly number[][], string[]][] = [
    [losses, ["the D loss", "the G loss"]],
    [probes, ["D(G(z)) before G's step", "D(G(z)) after it", "D(x)"]],
  ];
  let first: { iter: number; values: string[] } | null = null;
  for (const [rows, names] of named)
    for (const [iter, ...values] of rows) {
      const bad = names.flatMap((name, i) => (Number.isFinite(values[i]) ? [] : [`${name} is ${values[i]}`]));
      if (!bad.length) continue;
      if (!first || iter! < first.iter) first = { iter: iter!, values: bad };
      else if (iter === first.iter) first.values.push(...bad);
      break;
    }
  return first;
}

export class DivergedError extends Error {
  /** `recorded`: the iteration metrics.jsonl goes up to; `checkpoint`: the newest checkpoint's, if any. */
  constructor(
    readonly at: { iter: number; values: string[] },
    recorded: number,
    checkpoint: number | null,
  ) {
    super(
      `training diverged at iteration ${at.iter}: ${at.values.join(", ")}. metrics.jsonl goes up to iteration ${recorded}` +
        (checkpoint === null ? "" : `, the last checkpoint is of iteration ${checkpoint} (resuming it repeats the same steps)`) +
        ". Start a new run with other settings: lower learning rates, or data scaled to [-1, 1] for images and a few units for points",
    );
    this.name = "DivergedError";
  }
}
