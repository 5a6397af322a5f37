import { afterEach, describe, expect, it, vi } from "vitest";
import { droppedOutputError, onInterrupt } from "../../src/commands/signals.js";

/** The signal contract against a fake clock, with process.emit standing in for the kernel. In this order: a
 * stop, once begun, stays begun for the process (droppedOutputError). */
describe("signals", () => {
  afterEach(() => vi.restoreAllMocks());

  const setUp = () => {
    let t = 0;
    const clean = vi.fn();
    const now = vi.fn();
    const exit = vi.spyOn(process, "exit").mockImplementation((() => undefined) as never);
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const s = onInterrupt(clean, now, () => t);
    return { clean, now, exit, s, at: (ms: number) => (t = ms) };
  };

  it("a repeated hangup (the kernel's and the shell's) never forces a stop, and output errors are dropped from then on", () => {
    const h = setUp();
    try {
      expect(droppedOutputError({ code: "ENOSPC" } as NodeJS.ErrnoException)).toBe(false);
      expect(droppedOutputError({ code: "EIO" } as NodeJS.ErrnoException)).toBe(true); // a terminal gone
      process.emit("SIGHUP", "SIGHUP");
      h.at(5000);
      process.emit("SIGHUP", "SIGHUP");
      expect(h.clean).toHaveBeenCalledTimes(1);
      expect(h.now).not.toHaveBeenCalled();
      expect(h.s.exitCode()).toBe(129);
      expect(droppedOutputError({ code: "ENOSPC" } as NodeJS.ErrnoException)).toBe(true);
    } finally {
      h.s.dispose();
    }
  });

  it("a second Ctrl-C a second or more after the first stops at once; copies that come together are one request", () => {
    const h = setUp();
    try {
      process.emit("SIGTERM", "SIGTERM");
      h.at(300);
      process.emit("SIGTERM", "SIGTERM"); // GNU timeout: to the command, then to its process group
      expect(h.clean).toHaveBeenCalledTimes(1);
      expect(h.now).not.toHaveBeenCalled();
      expect(h.s.exitCode()).toBe(143);
      h.at(1500);
      process.emit("SIGINT", "SIGINT");
      expect(h.now).toHaveBeenCalledTimes(1);
      expect(h.exit).toHaveBeenCalledWith(143);
    } finally {
      h.s.dispose();
    }
  });
});
