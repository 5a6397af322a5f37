/** The CLI's signal contract for long commands: the first SIGINT (Ctrl-C), SIGTERM (timeout, Slurm's scancel
 * and preemption, container stops) or SIGHUP (the terminal closed) asks for a clean stop: a checkpoint, then
 * exit 128 + the signal's number (130, 143, 129). A second one stops at once. The worker ignores all three:
 * they reach the whole process group, and stopping is decided here. */
const EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export function onInterrupt(clean: () => void, now: () => void): { exitCode: () => number; dispose: () => void } {
  let code = 0;
  const handler = (sig: NodeJS.Signals) => {
    if (code) {
      process.stderr.write(`\n${sig} again: stopping now without a checkpoint\n`);
      now();
      process.exit(code);
    }
    code = EXIT[sig]!;
    // After SIGHUP the terminal may be gone: output that cannot be written must not stop the checkpoint.
    if (sig === "SIGHUP") for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
    process.stderr.write(`\n${sig}: interrupting; writing checkpoints (send it again to stop at once)\n`);
    clean();
  };
  for (const sig of Object.keys(EXIT)) process.on(sig, handler);
  return {
    exitCode: () => code,
    dispose: () => {
      for (const sig of Object.keys(EXIT)) process.off(sig, handler);
    },
  };
}
