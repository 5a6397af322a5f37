import { basename, relative } from "node:path";

/** Command-line argument helpers shared by the commands. */

export class UsageError extends Error {}

/** An integer option of at least `min`: one message for '-1', 'abc', '2.5' and '0' where 0 makes no sense. */
export function intOption(name: string, v: string | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) {
    const what = min === 0 ? "a non-negative integer" : min === 1 ? "a positive integer" : `an integer of at least ${min}`;
    throw new UsageError(`--${name} must be ${what}, got '${v}'`);
  }
  // Past 2^53 a number is no longer the integer typed (and JSON would carry another one).
  if (!Number.isSafeInteger(Number(v)) || Number(v) > max)
    throw new UsageError(`--${name} is too large: '${v}'${max < Number.MAX_SAFE_INTEGER ? ` (at most ${max})` : ""}`);
  return Number(v);
}

export function densityOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!(x > 0 && x <= 1)) throw new UsageError(`--${name} must be a density in (0, 1], got '${v}'`);
  return x;
}

/** ddst as the user called it, for a command to type next: `ddst` through the package's bin (installed, or
 * `npx ddst`), else `node <the cli.js path as seen from here>` (`node dist/cli.js` in the checkout). */
export function cliName(script = process.argv[1] ?? ""): string {
  if (basename(script) !== "cli.js") return "ddst";
  const rel = relative(process.cwd(), script);
  const path = rel && !rel.startsWith("..") ? rel : script;
  return `node ${/^[\w./@+-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`}`; // quoted as a shell needs it
}
