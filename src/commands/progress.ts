import type { MetricRecord } from "../run/records.js";
import type { RunProgress } from "../run/run-options.js";

/** What `ddst run` shows while it trains: a status line (iteration, speed, ETA, BR, densities, losses) and one
 * line per controller decision, evaluation and restart. On a terminal the status is one line updated in place;
 * otherwise (a log file, Slurm's output) it is a plain line about twenty times a run, the first within a few
 * seconds, and at least every 30 s however slow the hardware. */

export interface ProgressOptions {
  total: number;
  /** Update one line in place (stdout is a terminal) instead of printing lines. */
  tty: boolean;
  write?: (text: string) => void;
  now?: () => number;
  /** Plain mode: the longest silence between status lines. */
  everyMs?: number;
  /** Plain mode: the first status line comes once this much time has passed. */
  firstMs?: number;
}

export interface ProgressPrinter {
  record: (r: MetricRecord) => void;
  progress: (p: RunProgress) => void;
  /** Ends the in-place line (call before printing anything else at the end). */
  done: () => void;
}

/** "1h02m", "3m04s", "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

export function progressPrinter(opts: ProgressOptions): ProgressPrinter {
  const { total, tty } = opts;
  const write = opts.write ?? ((t: string) => process.stdout.write(t));
  const now = opts.now ?? Date.now;
  const everyMs = opts.everyMs ?? 30_000;
  const firstMs = opts.firstMs ?? 2_000;
  const stride = Math.max(1, Math.round(total / 20));
  const started = now();
  let br: number | null = null;
  let dG: number | null = null;
  let dD: number | null = null;
  let loss: { d: number; g: number } | null = null;
  let iter = 0;
  // Speed is measured from the first iteration seen, so a resumed run's rate is its own.
  let from: { iter: number; at: number } | null = null;
  let nextStride = stride;
  let lastLine = -Infinity;
  let lastLineIter = -1;
  let lastDraw = -Infinity;
  let drawn = false;

  const fmt = (x: number | null) => (x === null ? "  n/a" : x.toFixed(3));
  const status = () => {
    const elapsed = from ? (now() - from.at) / 1000 : 0;
    const rate = from && elapsed > 0 ? (iter - from.iter) / elapsed : 0;
    const speed = rate > 0 ? `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)} it/s  ETA ${formatDuration((total - iter) / rate)}` : "   - it/s  ETA ?";
    const losses = loss ? `  loss D ${loss.d.toFixed(4)} G ${loss.g.toFixed(4)}` : "";
    return `  iter ${String(iter).padStart(7)}/${total}  ${speed}  BR ${fmt(br)}  d_G ${fmt(dG)}  d_D ${fmt(dD)}${losses}`;
  };
  const clear = () => {
    if (tty && drawn) write("\r\x1b[K");
    drawn = false;
  };
  const line = (text: string) => {
    clear();
    write(text + "\n");
  };
  const draw = (force: boolean) => {
    const t = now();
    if (tty) {
      if (!force && t - lastDraw < 250) return;
      write(`\r\x1b[K${status()}`);
      drawn = true;
      lastDraw = t;
      return;
    }
    if (iter === lastLineIter) return; // one plain status line per iteration: progress and its loss record meet
    line(status());
    lastLine = t;
    lastLineIter = iter;
  };
  const seen = (i: number) => {
    iter = Math.max(iter, i);
    if (!from) from = { iter: i, at: now() };
  };
  const maybeStatus = (atStride: boolean) => {
    const t = now();
    if (tty) return draw(atStride);
    const overdue = lastLine === -Infinity ? t - started >= firstMs : t - lastLine >= everyMs;
    if (atStride || overdue) draw(true);
  };

  return {
    record(r) {
      if (r.kind === "br") br = r.br;
      if (r.kind === "density") {
        dG = r.generator;
        dD = r.discriminator;
        seen(r.iter); // a new run's first record (iteration 0): the speed counts from here
      }
      if (r.kind === "restart") line(`  iter ${String(r.iter).padStart(7)}  worker restarted (attempt ${r.attempt}) from the checkpoint at ${r.fromCheckpoint}: ${r.reason}`);
      if (r.kind === "eval")
        line(
          `  iter ${String(r.iter).padStart(7)}  eval: ` +
            Object.entries(r.metrics)
              .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
              .join(", ") +
            (r.picture ? `  -> ${r.picture}` : ""),
        );
      if (r.kind === "controller")
        line(`  iter ${String(r.iter).padStart(7)}  controller: BR ${r.br.toFixed(3)} in (${r.lower}, ${r.upper})? -> ${r.decision}, d_D ${r.densityD.toFixed(3)}`);
      if (r.kind === "decision" && r.actions.length)
        line(
          `  iter ${String(r.iter).padStart(7)}  ${r.controller}: ` +
            r.actions.map((a) => (a.op === "setDensity" ? `d_${a.net === "generator" ? "G" : "D"} -> ${a.target}` : a.op === "dstStep" ? `DST step on ${a.net} (drop ${a.dropRate})` : `stop`)).join(", "),
        );
      if (r.kind === "stop") line(`  iter ${String(r.iter).padStart(7)}  ${r.controller} stops the run: ${r.reason}`);
      if (r.kind === "loss") {
        loss = { d: r.d, g: r.g };
        seen(r.iter);
        const atStride = r.iter >= nextStride || r.iter === total;
        if (atStride) nextStride = r.iter + stride;
        maybeStatus(atStride);
      }
    },
    progress(p) {
      if (p.densityG !== undefined) dG = p.densityG;
      if (p.densityD !== undefined) dD = p.densityD;
      if (p.br !== undefined) br = p.br;
      seen(p.iter);
      maybeStatus(false);
    },
    done() {
      if (tty && drawn) write("\n");
      drawn = false;
    },
  };
}
