import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (where package.json, python/ and schemas/ live), from dist/ or src/ alike. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) || !existsSync(join(dir, "python"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the ddst package root (package.json beside python/)");
    dir = up;
  }
  return dir;
}

/** Where trained domain classifiers and reference statistics are cached: DDST_CACHE, else .cache/ in the package. */
export function cacheDir(): string {
  return process.env.DDST_CACHE ?? join(packageRoot(), ".cache");
}
