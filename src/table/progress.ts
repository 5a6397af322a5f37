import type { MetricRecord } from "../run/records.js";

/** One progress view for a whole table: cells done / running / queued, and each running cell's iteration,
 * speed and ETA. On a terminal the status block is redrawn in place every second; otherwise (a log file, a
 * Slurm output) it is printed as plain lines every `intervalMs`, and events (start, done, failed) are lines
 * of their own either way. */

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
}

interface Running {
  device: string;
  total: number;
  iter: number;
  /** Speed is measured from the first record this process saw, so start-up and resumed iterations do not count. */
  since?: { iter: number; time: number };
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export class TableProgress {
  private readonly running = new Map<string, Running>();
  private done = 0;
  private failed = 0;
  private diverged = 0;
  private queued: number;
  private drawn = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly tty: boolean;

  constructor(
    private readonly out: ProgressOutput,
    private readonly name: string,
    private readonly cells: number,
    alreadyDone: number,
    /** Iterations the queued cells have left (a resumed or extended one from its checkpoint), for the table's ETA. */
    private queuedLeft: number,
    intervalMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {
    this.tty = out.isTTY === true;
    this.done = alreadyDone;
    this.queued = cells - alreadyDone;
    this.timer = setInterval(() => this.tick(), this.tty ? 1000 : intervalMs);
    this.timer.unref();
  }

  /** `from`: the checkpoint a resumed cell continues from; null for a new cell. */
  start(id: string, device: string, from: number | null, total: number): void {
    this.queued--;
    this.queuedLeft -= total - (from ?? 0);
    this.running.set(id, { device, total, iter: from ?? 0 });
    this.line(`start ${id} on ${device}${from === null ? "" : `, resuming from iteration ${from}`}`);
  }

  /** A queued cell that ends without starting here (`left`: the iterations it was counted with); finish or fail follows. */
  unqueue(left: number): void {
    this.queued--;
    this.queuedLeft -= left;
  }

  record(id: string, r: MetricRecord): void {
    const c = this.running.get(id);
    if (!c || r.iter <= c.iter) return;
    c.iter = r.iter;
    c.since ??= { iter: r.iter, time: this.now() };
  }

  finish(id: string, what: string): void {
    this.running.delete(id);
    this.done++;
    this.line(`done  ${id}: ${what}`);
  }

  /** `diverged`: its training went to NaN or infinity (the table does not try it again). */
  fail(id: string, why: string, diverged = false): void {
    this.running.delete(id);
    if (diverged) this.diverged++;
    else this.failed++;
    this.line(`${diverged ? "DIVERGED" : "FAILED"} ${id}: ${why}`);
  }

  interrupted(id: string, iter: number): void {
    this.queuedLeft += (this.running.get(id)?.total ?? iter) - iter;
    this.running.delete(id);
    this.queued++;
    this.line(`interrupted ${id} at iteration ${iter} (checkpoint written)`);
  }

  note(text: string): void {
    this.line(text);
  }

  close(): void {
    clearInterval(this.timer);
    this.erase();
  }

  /** Iterations per second of a running cell, once two records have been seen. */
  private rate(c: Running): number {
    if (!c.since) return Number.NaN;
    const dt = (this.now() - c.since.time) / 1000;
    return dt > 0 && c.iter > c.since.iter ? (c.iter - c.since.iter) / dt : Number.NaN;
  }

  /** The status block: a summary line, then one line per running cell. */
  status(): string[] {
    const rates = [...this.running.values()].map((c) => this.rate(c));
    const left = [...this.running.values()].reduce((a, c) => a + c.total - c.iter, Math.max(0, this.queuedLeft));
    const eta = rates.length && rates.every(Number.isFinite) ? `, table ETA ${duration(left / rates.reduce((a, b) => a + b, 0))}` : "";
    const lines = [`table ${this.name}: ${this.done}/${this.cells} done, ${this.running.size} running, ${this.queued} queued${this.failed ? `, ${this.failed} failed` : ""}${this.diverged ? `, ${this.diverged} diverged` : ""}${eta}`];
    for (const [id, c] of this.running) {
      const r = this.rate(c);
      const speed = Number.isFinite(r) ? `${r.toFixed(r >= 10 ? 0 : 2)} it/s, ETA ${duration((c.total - c.iter) / r)}` : "measuring speed";
      lines.push(`  ${id} (${c.device}): iter ${c.iter}/${c.total}, ${speed}`);
    }
    return lines;
  }

  private tick(): void {
    if (this.tty) this.redraw();
    else if (this.running.size) this.out.write(this.status().join("\n") + "\n");
  }

  private line(text: string): void {
    this.erase();
    this.out.write(text + "\n");
    if (this.tty) this.redraw();
  }

  private erase(): void {
    if (!this.tty || this.drawn === 0) return;
    // Up to the first line of the block, then clear to the end of the screen.
    this.out.write(`\x1b[${this.drawn}F\x1b[J`);
    this.drawn = 0;
  }

  private redraw(): void {
    this.erase();
    const lines = this.status();
    this.out.write(lines.join("\n") + "\n");
    this.drawn = lines.length;
  }
}
