/** The CLI's signal contract for long commands: the first Ctrl-C / SIGTERM asks for a clean stop (a
 * checkpoint, exit 130 / 143), a second one stops at once. */
export function onInterrupt(clean: () => void, now: () => void): { exitCode: () => number; dispose: () => void } {
  let code = 0;
  const handler = (sig: NodeJS.Signals) => {
    if (code) {
      process.stderr.write(`\n${sig} again: stopping now without a checkpoint\n`);
      now();
      process.exit(code);
    }
    code = sig === "SIGINT" ? 130 : 143;
    process.stderr.write(`\n${sig}: interrupting; writing checkpoints (send it again to stop at once)\n`);
    clean();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    exitCode: () => code,
    dispose: () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}
