import { execa } from "execa";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "./paths.js";
import { InputError } from "../input-error.js";

/** Finding a Python that can run the worker: DDST_PYTHON first, then the project's own .venv, then the
 * usual names on PATH. Every rejected candidate keeps its reason, for `ddst doctor` and error messages. */

export interface Candidate {
  path: string;
  source: string;
  ok: boolean;
  reason?: string;
  python?: string;
  torch?: string;
  zmq?: string;
  cuda?: boolean;
  /** How many GPUs torch sees (under the inherited CUDA_VISIBLE_DEVICES); full probe only. */
  gpus?: number;
}

/** `ddst doctor`'s probe imports everything, as the worker will (seconds: torch loads). */
const FULL_PROBE = [
  "import json, sys",
  "out = {'python': sys.version.split()[0]}",
  "import torch; out['torch'] = torch.__version__; out['cuda'] = bool(torch.cuda.is_available()); out['gpus'] = torch.cuda.device_count() if out['cuda'] else 0",
  "import zmq; out['zmq'] = zmq.__version__",
  "import jsonschema",
  "print(json.dumps(out))",
].join("\n");

/** Choosing the interpreter for a run only finds the packages and reads their versions (tens of
 * milliseconds instead of a torch import per command); an install that is found but broken still fails
 * when the worker starts, with its last stderr lines. */
const QUICK_PROBE = [
  "import json, sys, importlib.util, importlib.metadata as md",
  "out = {'python': sys.version.split()[0]}",
  "for m in ('torch', 'zmq', 'jsonschema'):",
  "    if importlib.util.find_spec(m) is None: raise ModuleNotFoundError(f\"No module named '{m}'\")",
  "out['torch'] = md.version('torch'); out['zmq'] = md.version('pyzmq')",
  "print(json.dumps(out))",
].join("\n");

export async function probePython(path: string, source: string, full = true, timeoutMs = 120_000): Promise<Candidate> {
  // In a process group of its own, killed whole at the time limit: a wrapper script's child that keeps the pipes
  // open (a `sleep`, a hung `module load`) would otherwise hold the answer past any timeout.
  const child = execa(path, ["-c", full ? FULL_PROBE : QUICK_PROBE], { reject: false, detached: true, env: { PYTHONNOUSERSITE: "1" } });
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, timeoutMs);
  // Detached, it would outlive this process (execa's cleanup skips detached children): the group goes with us.
  process.once("exit", killGroup);
  const r = await child.finally(() => {
    clearTimeout(timer);
    process.removeListener("exit", killGroup);
  });
  if (timedOut) return { path, source, ok: false, reason: `gave no answer within ${timeoutMs / 1000} s (${full ? "importing torch" : "looking for its packages"})` };
  if (r.failed) {
    const lines = `${r.stderr ?? ""}`.trim().split("\n");
    const code = (r as { code?: string }).code;
    // Not execa's shortMessage: it quotes the whole probe script.
    const silent = r.signal ? `killed by ${r.signal}` : `exited with code ${r.exitCode} without a message`;
    const isDir = (() => {
      try {
        return statSync(path).isDirectory();
      } catch {
        return false;
      }
    })();
    const spawnFailure: Record<string, string> = { ENOENT: "not found", EACCES: isDir ? "a directory, not an interpreter" : "not executable (chmod +x it, or name the interpreter itself)" };
    const last = (code && spawnFailure[code]) ?? (lines[lines.length - 1] || silent);
    return { path, source, ok: false, reason: last };
  }
  try {
    const info = JSON.parse(`${r.stdout}`.trim().split("\n").pop() ?? "") as Omit<Candidate, "path" | "source" | "ok">;
    return { path, source, ok: true, ...info };
  } catch {
    const out = String(r.stdout).trim();
    return { path, source, ok: false, reason: out ? `unexpected output: ${out.slice(0, 200)}` : "printed nothing (is it a Python interpreter?)" };
  }
}

export function candidatePaths(env: NodeJS.ProcessEnv = process.env): { path: string; source: string }[] {
  const out: { path: string; source: string }[] = [];
  const venv = join(packageRoot(), ".venv", "bin", "python");
  if (existsSync(venv)) out.push({ path: venv, source: "project .venv" });
  for (const name of ["python3", "python"]) out.push({ path: name, source: "PATH" });
  for (const p of ["/usr/local/bin/python3", "/usr/bin/python3"]) if (existsSync(p)) out.push({ path: p, source: "system" });
  return out;
}

/** Bad input (the environment): exit 2. */
export class NoPythonError extends InputError {
  constructor(readonly candidates: Candidate[]) {
    super(
      "no Python that can import torch, zmq and jsonschema was found. Tried:\n" +
        candidates.map((c) => `  - ${c.path} (${c.source}): ${c.reason}`).join("\n") +
        "\nRun `npm run setup` to create the project's .venv, or point DDST_PYTHON at an interpreter with torch>=2.1, pyzmq and jsonschema.",
    );
    this.name = "NoPythonError";
  }
}

/** All candidates with their verdicts (ddst doctor). */
export async function surveyPythons(env: NodeJS.ProcessEnv = process.env): Promise<Candidate[]> {
  const list = env.DDST_PYTHON ? [{ path: env.DDST_PYTHON, source: "DDST_PYTHON" }, ...candidatePaths(env)] : candidatePaths(env);
  return Promise.all(list.map((c) => probePython(c.path, c.source)));
}

/** The interpreter to use. DDST_PYTHON, when set, must work: a broken explicit choice is an error, not a fallback. */
export async function findPython(env: NodeJS.ProcessEnv = process.env): Promise<Candidate> {
  if (env.DDST_PYTHON) {
    const c = await probePython(env.DDST_PYTHON, "DDST_PYTHON", false);
    if (!c.ok) throw new NoPythonError([c]);
    return c;
  }
  const tried: Candidate[] = [];
  for (const { path, source } of candidatePaths(env)) {
    const c = await probePython(path, source, false);
    if (c.ok) return c;
    tried.push(c);
  }
  throw new NoPythonError(tried);
}
