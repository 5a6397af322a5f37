import { describe, expect, it } from "vitest";
import { formatDuration, progressPrinter } from "../../src/commands/progress.js";

/** The progress display against a fake clock: what a user sees on a log file and on a terminal. */
function harness(tty: boolean, total = 1000) {
  let t = 0;
  const out: string[] = [];
  const p = progressPrinter({ total, tty, write: (s) => out.push(s), now: () => t });
  return { p, out, at: (ms: number) => (t = ms), text: () => out.join("") };
}

describe("progress", () => {
  it("formats durations", () => {
    expect([formatDuration(12.4), formatDuration(184), formatDuration(3720), formatDuration(Infinity)]).toEqual(["12s", "3m04s", "1h02m", "?"]);
  });

  it("plain: densities known from the start of a resumed run, a first line within seconds, then one at least every 30 s, with speed and ETA", () => {
    const h = harness(false);
    h.p.progress({ iter: 400, densityG: 0.1, densityD: 0.05 }); // a resumed run: no density record yet
    h.at(1000);
    h.p.progress({ iter: 410 });
    expect(h.out).toEqual([]); // nothing before firstMs
    h.at(2500);
    h.p.progress({ iter: 420 });
    expect(h.out).toHaveLength(1);
    expect(h.out[0]).toMatch(/iter {5}420\/1000 {2}8\.00 it\/s {2}ETA 1m13s {2}BR {3}n\/a {2}d_G 0\.100 {2}d_D 0\.050\n$/);
    h.at(20_000);
    h.p.progress({ iter: 450 });
    expect(h.out).toHaveLength(1); // under 30 s since the last line
    h.at(33_000);
    h.p.record({ iter: 460, kind: "br", br: 0.5, probes: 10 } as never);
    h.p.progress({ iter: 460 });
    expect(h.out).toHaveLength(2);
    expect(h.out[1]).toMatch(/iter {5}460\/1000 .* BR 0\.500 /);
    expect(h.text()).not.toMatch(/NaN/);
  });

  it("plain: a resumed run shows its restored BR, and one iteration never gets two status lines", () => {
    const h = harness(false, 300);
    h.p.progress({ iter: 100, densityG: 0.2, densityD: 0.1, br: 0.42 });
    h.at(2500);
    h.p.progress({ iter: 120 }); // the first line, from progress: overdue
    h.p.record({ iter: 120, kind: "loss", d: 1, g: 2, n: 10 } as never); // a stride record for the same iteration
    expect(h.out).toHaveLength(1);
    expect(h.out[0]).toMatch(/iter {5}120\/300 .* BR 0\.420 /);
  });

  it("plain: about twenty status lines a run at loss records, and every decision on its own line", () => {
    const h = harness(false);
    for (let i = 10; i <= 1000; i += 10) {
      h.at(i * 10);
      h.p.record({ iter: i, kind: "loss", d: 1, g: 2, n: 10 } as never);
      if (i === 200) h.p.record({ iter: 200, kind: "controller", br: 0.3, lower: 0.45, upper: 0.55, decision: "decrease", densityD: 0.05 } as never);
    }
    const lines = h.text().trim().split("\n");
    expect(lines.filter((l) => /it\/s/.test(l))).toHaveLength(20);
    expect(lines.filter((l) => /controller: BR 0\.300/.test(l))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/iter {4}1000\/1000 .*ETA 0s.*loss D 1\.0000 G 2\.0000$/);
  });

  it("tty: one line updated in place, decisions printed above it, ended by done()", () => {
    const h = harness(true);
    h.p.progress({ iter: 0, densityG: 0.1, densityD: 0.1 });
    h.at(300);
    h.p.progress({ iter: 5 });
    h.at(400);
    h.p.progress({ iter: 6 }); // under 250 ms since the last draw: not redrawn
    h.at(700);
    h.p.record({ iter: 10, kind: "controller", br: 0.7, lower: 0.45, upper: 0.55, decision: "increase", densityD: 0.15 } as never);
    h.p.done();
    expect(h.out.filter((s) => s.startsWith("\r\x1b[K  iter"))).toHaveLength(2);
    expect(h.text()).toMatch(/\r\x1b\[K {2}iter {6}10 {2}controller: BR 0\.700.*\n$/);
    expect(h.text().split("\n")).toHaveLength(2);
  });
});
