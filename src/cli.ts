#!/usr/bin/env node
import { ConfigError } from "./config/experiment.js";
import { RunDirError } from "./run/run-dir.js";
import { BuildRefusedError } from "./run/run-experiment.js";
import { UsageError } from "./commands/args.js";
import { cmdBench } from "./commands/bench.js";
import { cmdDoctor } from "./commands/doctor.js";
import { cmdFlops } from "./commands/flops.js";
import { cmdInspect } from "./commands/inspect.js";
import { cmdLs, cmdShow } from "./commands/ls.js";
import { cmdReport } from "./commands/report.js";
import { cmdRun } from "./commands/run.js";
import { cmdTable } from "./commands/table.js";
import { COMMANDS, USAGE, wantsHelp, type CommandName } from "./commands/usage.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PROTOCOL_VERSION } from "./protocol/messages.js";
import { packageRoot } from "./worker/paths.js";
import { TableError } from "./table/run-table.js";
import { WorkerEnvironmentError } from "./worker/worker.js";

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
        return await cmdRun(rest);
      case "table":
        return await cmdTable(rest);
      case "inspect":
        return await cmdInspect(rest);
      case "flops":
        return await cmdFlops(rest);
      case "bench":
        return await cmdBench(rest);
      case "doctor":
        return await cmdDoctor();
      case "ls":
        return await cmdLs(rest);
      case "show":
        return await cmdShow(rest);
      case "report":
        return await cmdReport(rest);
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
    if (e instanceof ConfigError || e instanceof RunDirError || e instanceof TableError || e instanceof WorkerEnvironmentError || e instanceof BuildRefusedError) {
      console.error(`ddst: ${e.message}`);
      return 2;
    }
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      const usage = cmd && Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd as CommandName].usage : USAGE;
      console.error(`ddst: ${(e as Error).message}\n${usage}`);
      return 2;
    }
    console.error(`ddst: ${(e as Error).message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
