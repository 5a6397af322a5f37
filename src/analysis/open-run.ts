import { resolve, join, delimiter } from "node:path";
import { findPython } from "../worker/discover.js";
import { packageRoot } from "../worker/paths.js";

/** The low-frequency escape hatch (docs/architecture.md, "pythonia"): live PyTorch objects of a finished run in a TypeScript
 * script, through the pythonia bridge. Training never goes through here; the ZeroMQ worker is the hot path.
 *
 *   const run = await openRun("runs/ring8-adapt");
 *   const points = await run.sample(8);          // EMA generator samples as nested arrays
 *   const dens = await run.densities();          // per-layer densities of G and D
 *   const G = run.generator;                     // a live torch.nn.Module proxy
 *   await run.close();
 */

// pythonia proxies are dynamic; these are the members ddst_worker.run_access.Run exposes.
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface OpenedRun {
  /** The Python `Run` object (ddst_worker/run_access.py). */
  readonly py: any;
  /** The EMA generator (G when the run had no EMA), in eval mode. */
  readonly generator: any;
  readonly discriminator: any;
  iteration(): Promise<number>;
  sample(n: number, seed?: number): Promise<number[][]>;
  densities(): Promise<Record<"generator" | "discriminator", Record<string, number>>>;
  /** Ends the Python bridge process. */
  close(): Promise<void>;
}

export async function openRun(dir: string, opts: { device?: "cpu" | "cuda"; python?: string } = {}): Promise<OpenedRun> {
  const python = opts.python ?? (await findPython()).path;
  // pythonia spawns its interpreter from these variables when it is first imported.
  process.env.PYTHON_BIN = python;
  const ours = join(packageRoot(), "python");
  process.env.PYTHONPATH = process.env.PYTHONPATH ? `${ours}${delimiter}${process.env.PYTHONPATH}` : ours;
  const bridge = (await import("pythonia")) as any;
  const mod = await bridge.python("ddst_worker.run_access");
  const run = await mod.open_run(resolve(dir), opts.device ?? "cpu");
  const toJs = async (x: any) => (typeof x?.valueOf === "function" ? await x.valueOf() : x);
  return {
    py: run,
    generator: await run.generator,
    discriminator: await run.discriminator,
    iteration: async () => Number(await run.iteration),
    sample: async (n, seed = 0) => (await toJs(await run.sample(n, seed))) as number[][],
    densities: async () => (await toJs(await run.densities())) as Record<"generator" | "discriminator", Record<string, number>>,
    close: async () => {
      bridge.python.exit();
    },
  };
}
