#!/usr/bin/env node
import { ConfigError } from "./config/experiment.js";
import { RunDirError } from "./run/run-dir.js";
import { BuildRefusedError } from "./run/run-experiment.js";
import { UsageError } from "./commands/args.js";
import { cmdBench } from "./commands/bench.js";
import { cmdDoctor } from "./commands/doctor.js";
import { cmdFlops } from "./commands/flops.js";
import { cmdInspect } from "./commands/inspect.js";
import { cmdRun } from "./commands/run.js";
import { cmdTable } from "./commands/table.js";
import { TableError } from "./table/run-table.js";
import { WorkerEnvironmentError } from "./worker/worker.js";

const USAGE = `usage:
  ddst run <experiment.json|.ts> [--out DIR] [--iterations N] [--seed N] [--device cpu|cuda] [--set path=value ...] [--until N]
  ddst run --resume DIR [--iterations N] [--until N]
  ddst table <table.json|.ts> [--out DIR] [--jobs N] [--devices cpu|cuda|cuda:0,cuda:1] [--plan] [--status-every S]
               a paper table (methods x densities x seeds); the same command skips finished cells and resumes the rest
  ddst inspect <model> [--density-g X] [--density-d Y] [--init erk|uniform] [--json]
               models: mlp2d, sngan32, sngan48, dcgan28, dcgan32
  ddst flops <experiment> [--json] [--set path=value ...]
               training FLOPs of a plan whose densities are known ahead (dense, static, SDST)
  ddst bench [--model sngan32] [--batch 64] [--iters 3] [--device cpu|cuda]
               masked vs dense training iteration, and one global prune-and-grow of G vs an iteration
  ddst doctor          which Python ddst would use, and why other candidates were rejected`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
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
      console.error(`ddst: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    console.error(`ddst: ${(e as Error).message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
