/** The CLI's signal contract for long commands: the first SIGINT (Ctrl-C), SIGTERM (timeout, Slurm's scancel
 * and preemption, container stops) or SIGHUP (the terminal closed) asks for a clean stop: a checkpoint, then
 * exit 128 + the signal's number (130, 143, 129). A second SIGINT or SIGTERM, a second or more after the first,
 * stops at once. Copies that come together are one request: GNU timeout sends its SIGTERM to the command and
 * again to its process group, and a closing terminal's hangup comes from the kernel and again from the shell,
 * so a repeated SIGHUP never forces a stop. The worker ignores all three: they reach the whole process group,
 * and stopping is decided here. Standard output closing under us (`ddst run ... | head`: Node sees EPIPE
 * where C programs get SIGPIPE) is a clean stop too, exit 141. */
import { closeSync } from "node:fs";
import { isatty } from "node:tty";

const EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
const EPIPE_EXIT = 141;
/** Signals within this long of the first are copies of it, not a second request. */
const SAME_REQUEST_MS = 1000;

/** Set once a command is stopping on a signal or a closed output: from then on no output error may stop the
 * checkpoint. */
let stopping = false;

/** Whether an output error is one to drop rather than fail on (src/cli.ts asks): a reader gone (EPIPE), a
 * terminal gone (EIO: its SIGHUP may be handled before or after the first failed write), or anything once a
 * stop is under way. */
export const droppedOutputError = (e: NodeJS.ErrnoException) => {
  if (e.code === "EIO") terminalLost = true;
  return e.code === "EPIPE" || e.code === "EIO" || stopping;
};

/** Set on a hangup or a terminal write failing with EIO. */
let terminalLost = false;
/** Standard streams that were terminals at start-up: at exit Node restores their modes, and on Node 20 it aborts
 * (a failed assertion in ResetStdio, killed by SIGABRT) when the terminal is gone, so a run whose window closed
 * ended killed although its checkpoint was written (nodejs/node#51519, fixed in later Node lines). Node skips a
 * stream that is closed, so those are closed last thing, when the terminal is gone and nothing more can reach it. */
const startupTerminals = [0, 1, 2].filter((fd) => isatty(fd));
export function releaseLostTerminal(): void {
  if (!terminalLost) return;
  for (const fd of startupTerminals)
    try {
      closeSync(fd);
    } catch {
      // Already closed: nothing for Node to restore either.
    }
}

export function onInterrupt(
  clean: () => void,
  now: () => void,
  clock: () => number = Date.now,
): { exitCode: () => number; dispose: () => void } {
  let code = 0;
  let first = 0;
  const handler = (sig: NodeJS.Signals | "EPIPE") => {
    if (sig === "SIGHUP") terminalLost = true;
    if (code) {
      if (sig === "SIGHUP" || sig === "EPIPE" || clock() - first < SAME_REQUEST_MS) return;
      process.stderr.write(`\n${sig} again: stopping now without a checkpoint\n`);
      now();
      process.exit(code);
    }
    first = clock();
    code = sig === "EPIPE" ? EPIPE_EXIT : EXIT[sig]!;
    stopping = true;
    const what = sig === "EPIPE" ? "standard output was closed (EPIPE)" : sig;
    process.stderr.write(`\n${what}: interrupting; writing checkpoints${sig === "SIGINT" || sig === "SIGTERM" ? " (send it again to stop at once)" : ""}\n`);
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
