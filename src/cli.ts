#!/usr/bin/env node
import { UsageError } from "./commands/args.js";
import { InputError } from "./input-error.js";
import { droppedOutputError, releaseLostTerminal } from "./commands/signals.js";
import { COMMANDS, USAGE, wantsHelp, type CommandName } from "./commands/usage.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PROTOCOL_VERSION } from "./protocol/messages.js";
import { packageRoot } from "./worker/paths.js";

/** The package version (package.json) and the worker protocol it speaks. */
function version(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string };
  return `ddst ${pkg.version} (worker protocol ${PROTOCOL_VERSION})`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd && Object.hasOwn(COMMANDS, cmd) && wantsHelp(rest)) {
      console.log(COMMANDS[cmd as CommandName].usage);
      return 0;
    }
    switch (cmd) {
      case "run":
        return await (await import("./commands/run.js")).cmdRun(rest);
      case "table":
        return await (await import("./commands/table.js")).cmdTable(rest);
      case "inspect":
        return await (await import("./commands/inspect.js")).cmdInspect(rest);
      case "flops":
        return await (await import("./commands/flops.js")).cmdFlops(rest);
      case "bench":
        return await (await import("./commands/bench.js")).cmdBench(rest);
      case "doctor":
        return await (await import("./commands/doctor.js")).cmdDoctor();
      case "ls":
        return await (await import("./commands/ls.js")).cmdLs(rest);
      case "show":
        return await (await import("./commands/ls.js")).cmdShow(rest);
      case "report":
        return await (await import("./commands/report.js")).cmdReport(rest);
      case "--version":
      case "-V":
      case "version":
        console.log(version());
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return cmd ? 0 : 2;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof InputError) {
      console.error(`ddst: ${e.message}`);
      return 2;
    }
    const code = (e as { code?: unknown }).code;
    if (e instanceof UsageError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))) {
      const usage = cmd && Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd as CommandName].usage : USAGE;
      console.error(`ddst: ${(e as Error).message}\n${usage}`);
      return 2;
    }
    console.error(`ddst: ${(e as Error).message}`);
    return 1;
  }
}

// A reader that went away (`ddst ls | head`) ends the output, not the command with a stack trace; a run
// turns it into a clean stop (commands/signals.ts).
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (!droppedOutputError(e)) throw e;
  });
process.on("exit", releaseLostTerminal);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Nothing of ddst's is left running once main returns, but an experiment module's may be: a controller's promise
// still pending after its timeout, an interval it started. Those must not keep a finished run (or a Slurm
// allocation) alive, so after a moment for output to drain the process leaves; the timer itself keeps nothing alive.
// Output still queued for a slow reader (a pager) is written first.
setTimeout(() => process.stdout.write("", () => process.stderr.write("", () => process.exit(code))), 1000).unref();
