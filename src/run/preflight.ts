import { accessSync, constants, existsSync, statSync } from "node:fs";
import { ConfigError, type Experiment } from "../config/experiment.js";
import { experimentPaths } from "../config/data-paths.js";

/** What a run will need, checked before iteration 1 (and before a new run creates its directory): the data
 * path and the InceptionV3 weights exist and can be read, and every `${VAR}` they use is set. Otherwise a
 * missing file would surface hours in, at the first evaluation. The worker still checks the files' contents
 * when it builds (a malformed file is refused then, before the first iteration too). */
export function preflight(exp: Experiment, source: string): void {
  const { paths, issues } = experimentPaths(exp);
  for (const { field, path, kind } of paths) {
    const problem = unreadable(path, kind);
    if (problem) issues.push({ path: field, message: `${path}: ${problem}${field === "eval.inception" ? INCEPTION_HELP : ""}` });
  }
  // The evaluations cache what they train and compute there; a file in its place would make every run train
  // the domain classifier anew (minutes), saying so only in worker.log.
  const cache = process.env.DDST_CACHE;
  if (exp.eval && cache && existsSync(cache) && !statSync(cache).isDirectory())
    issues.push({ path: "DDST_CACHE", message: `${cache} is not a directory: point DDST_CACHE at a directory for the evaluations' cache, or unset it` });
  if (issues.length) throw new ConfigError(source, issues);
}

/** Nothing is downloaded at run time: where the weights come from. */
const INCEPTION_HELP =
  " (the FID InceptionV3 weights: download pt_inception-2015-12-05-6726825d.pth from the pytorch-fid GitHub releases, tag fid_weights, on a machine with internet)";

function unreadable(path: string, kind: "file" | "directory or file"): string | null {
  try {
    const s = statSync(path);
    if (kind === "file" && !s.isFile()) return "not a file";
    accessSync(path, constants.R_OK);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "not readable (permission denied)" : (e as Error).message;
  }
}
