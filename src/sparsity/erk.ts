/** Initial per-layer densities (docs/method.md, "Terms"): layer l gets eps * (sum of its dims) / (product of its dims),
 * with eps chosen so the active total equals density * total; layers that would exceed 1 are made dense and
 * eps is solved again for the rest. */

export interface LayerShape {
  name: string;
  shape: readonly number[];
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export function erkDensities(layers: readonly LayerShape[], density: number): Record<string, number> {
  if (!(density > 0 && density <= 1)) throw new RangeError(`density must be in (0, 1], got ${density}`);
  if (density === 1) return Object.fromEntries(layers.map((l) => [l.name, 1]));
  const raw = new Map(layers.map((l) => [l.name, l.shape.reduce((a, b) => a + b, 0) / numel(l.shape)]));
  const dense = new Set<string>();
  for (;;) {
    // Active weights still to place among the sparse layers, and their ERK-weighted size.
    let budget = 0;
    let divisor = 0;
    for (const l of layers) {
      const n = numel(l.shape);
      if (dense.has(l.name)) budget -= (1 - density) * n;
      else {
        budget += density * n;
        divisor += raw.get(l.name)! * n;
      }
    }
    const eps = budget / divisor;
    const over = layers.filter((l) => !dense.has(l.name) && raw.get(l.name)! * eps > 1);
    if (over.length === 0 || divisor === 0) {
      return Object.fromEntries(layers.map((l) => [l.name, dense.has(l.name) ? 1 : Math.min(1, raw.get(l.name)! * eps)]));
    }
    for (const l of over) dense.add(l.name);
  }
}

export function uniformDensities(layers: readonly LayerShape[], density: number): Record<string, number> {
  if (!(density > 0 && density <= 1)) throw new RangeError(`density must be in (0, 1], got ${density}`);
  return Object.fromEntries(layers.map((l) => [l.name, density]));
}

export function initialDensities(init: "erk" | "uniform", layers: readonly LayerShape[], density: number) {
  return init === "erk" ? erkDensities(layers, density) : uniformDensities(layers, density);
}

type TableLayer = LayerShape & { net: string; maskable: boolean };
type StartPolicy = { init: "erk" | "uniform"; density: number };

/** Both networks' starting per-layer densities (what `setMasks` is sent) from the worker's layer table: each
 * network's maskable layers allocated under its policy. */
export function startingMasks(layers: readonly TableLayer[], policies: { generator: StartPolicy; discriminator: StartPolicy }) {
  const of = (net: "generator" | "discriminator") =>
    initialDensities(policies[net].init, layers.filter((l) => l.net === net && l.maskable), policies[net].density);
  return { generator: of("generator"), discriminator: of("discriminator") };
}

/** The worker's active count for a layer of n weights at a density: round half up, within [0, n]. */
export const activeCount = (density: number, n: number) => Math.min(n, Math.max(0, Math.floor(density * n + 0.5)));

/** The maskable layers that the starting masks leave with no active weight: such a layer passes nothing on, so a
 * density that low is refused rather than trained. */
export function layersLeftEmpty(layers: readonly TableLayer[], masks: ReturnType<typeof startingMasks>) {
  return layers.flatMap((l) => {
    const d = l.maskable && (l.net === "generator" || l.net === "discriminator") ? masks[l.net][l.name] : undefined;
    return d !== undefined && activeCount(d, numel(l.shape)) === 0 ? [{ net: l.net, name: l.name, weights: numel(l.shape), density: d }] : [];
  });
}
