/** The balance-ratio window (docs/method.md, "The balance ratio"): BR of one probe is
 *   (mean D(G_post(z)) - mean D(G_pre(z))) / (mean D(x) - mean D(G_pre(z)))
 * and the window's value is the mean of the last `size` per-probe ratios (mean of ratios, as the reference). */

export interface Probe {
  iter: number;
  fakePre: number;
  fakePost: number;
  real: number;
}

export function probeRatio(p: Probe): number {
  return (p.fakePost - p.fakePre) / (p.real - p.fakePre);
}

export interface BrWindowState {
  size: number;
  ratios: number[];
}

export class BrWindow {
  private ratios: number[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`BR window size must be a positive integer, got ${size}`);
  }

  /** Adds a probe; a probe whose denominator is zero (D sees no gap) carries no ratio and is skipped. */
  push(p: Probe): number {
    const r = probeRatio(p);
    if (Number.isFinite(r)) {
      this.ratios.push(r);
      if (this.ratios.length > this.size) this.ratios.shift();
    }
    return r;
  }

  get full(): boolean {
    return this.ratios.length >= this.size;
  }

  get count(): number {
    return this.ratios.length;
  }

  /** Mean of the ratios held; NaN while empty. */
  get value(): number {
    if (this.ratios.length === 0) return Number.NaN;
    return this.ratios.reduce((a, b) => a + b, 0) / this.ratios.length;
  }

  state(): BrWindowState {
    return { size: this.size, ratios: [...this.ratios] };
  }

  static restore(s: BrWindowState): BrWindow {
    const w = new BrWindow(s.size);
    w.ratios = [...s.ratios];
    return w;
  }
}
