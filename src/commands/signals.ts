/** The CLI's signal contract for long commands: the first SIGINT (Ctrl-C), SIGTERM (timeout, Slurm's scancel
 * and preemption, container stops) or SIGHUP (the terminal closed) asks for a clean stop: a checkpoint, then
 * exit 128 + the signal's number (130, 143, 129). A second one stops at once. The worker ignores all three:
 * they reach the whole process group, and stopping is decided here. Standard output closing under us
 * (`ddst run ... | head`: Node sees EPIPE where C programs get SIGPIPE) is a clean stop too, exit 141. */
const EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
const EPIPE_EXIT = 141;

/** Set once a command is stopping on a signal or a closed output: from then on output that cannot be written
 * (EPIPE, a closed terminal's EIO) is dropped, so it cannot stop the checkpoint. */
let stopping = false;

/** Whether an error of standard output is one to drop rather than fail on (src/cli.ts asks). */
export const droppedOutputError = (e: NodeJS.ErrnoException) => e.code === "EPIPE" || stopping;

export function onInterrupt(clean: () => void, now: () => void): { exitCode: () => number; dispose: () => void } {
  let code = 0;
  const handler = (sig: NodeJS.Signals | "EPIPE") => {
    if (code) {
      process.stderr.write(`\n${sig} again: stopping now without a checkpoint\n`);
      now();
      process.exit(code);
    }
    code = sig === "EPIPE" ? EPIPE_EXIT : EXIT[sig]!;
    stopping = true;
    // After SIGHUP the terminal may be gone: stderr that cannot be written must not stop the checkpoint either.
    if (sig === "SIGHUP") process.stderr.on("error", () => undefined);
    const what = sig === "EPIPE" ? "standard output was closed (EPIPE)" : sig;
    process.stderr.write(`\n${what}: interrupting; writing checkpoints${sig === "EPIPE" ? "" : " (send it again to stop at once)"}\n`);
    clean();
  };
  // Every later write fails too: only the first one stops the run. Whether an error is fatal is src/cli.ts's
  // listener's to say (droppedOutputError), not this one's.
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE" && !code) handler("EPIPE");
  };
  for (const sig of Object.keys(EXIT)) process.on(sig, handler);
  process.stdout.on("error", onStdoutError);
  return {
    exitCode: () => code,
    dispose: () => {
      for (const sig of Object.keys(EXIT)) process.off(sig, handler);
      process.stdout.off("error", onStdoutError);
    },
  };
}
