import { closeSync, existsSync, mkdtempSync, fsyncSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { z } from "zod";
import { InputError } from "./input-error.js";

/** Reading and writing the files ddst keeps: whole or not at all, and read without trusting them. */

/** Writes `file` whole or not at all: a hidden temporary file beside it (one file system, so the rename is
 * atomic; named per host and process, since the array tasks of one table write its files side by side from
 * several nodes), then a rename. The temporary file is removed when anything fails, and the error thrown on. */
export function writeWhole(file: string, data: string | Buffer, mode?: number): void {
  const tmp = join(dirname(file), `.${basename(file)}.${hostname()}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, "w", mode);
    try {
      writeFileSync(fd, data);
      // On disk before the rename: after a power cut the name holds the old file or the new one, never an empty one.
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dirname(file));
}

/** Makes a rename in `dir` durable; a file system that cannot sync a directory (some network ones) is left to its own order. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    /* best effort, as the rename itself is already done */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Up to `length` bytes of `file` from `position` (fewer where the file ends first). */
export function readBytes(file: string, position: number, length: number): Buffer {
  const fd = openSync(file, "r");
  try {
    const b = Buffer.alloc(length);
    return b.subarray(0, readSync(fd, b, 0, length, position));
  } finally {
    closeSync(fd);
  }
}

/** The last `length` bytes of `file` (all of it when shorter), and whether they start at its beginning (else their
 * first line is cut). */
export function readTail(file: string, length: number): { text: string; whole: boolean } {
  const size = statSync(file).size;
  return { text: readBytes(file, Math.max(0, size - length), length).toString("utf8"), whole: size <= length };
}

/** A file that is there but cannot be read (permissions, a directory in its place, an I/O error): not the same
 * as a missing one, which a reader may take for a run not yet that far. */
export class UnreadableFileError extends InputError {
  constructor(readonly file: string, cause: NodeJS.ErrnoException) {
    super(`${file} cannot be read (${cause.code ?? cause.message}): fix its permissions or put the right file back`);
  }
}

/** The JSON file read through `schema`, or null when it is missing, not JSON or not what the schema says (damaged,
 * or written by another ddst). A file there that cannot be read throws UnreadableFileError. */
export function readJsonAs<T>(file: string, schema: z.ZodType<T>): T | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return null;
    throw new UnreadableFileError(file, e as NodeJS.ErrnoException);
  }
  try {
    const r = schema.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** The directories in `dir` (none when it does not exist), sorted by name; a link that leads nowhere, or anything
 * else stat cannot follow, is not one. */
export function subdirectories(dir: string): { name: string; dir: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => ({ name, dir: join(dir, name) }))
    .filter((e) => {
      try {
        return statSync(e.dir).isDirectory();
      } catch {
        return false;
      }
    });
}

/** Why the temporary directory (TMPDIR) cannot hold ddst's files (the worker's socket, tsx's compiled modules),
 * or null when it can. */
export function tmpProblem(): string | null {
  const dir = tmpdir();
  try {
    // Tried, not asked: root passes access() where nothing can be made (/proc).
    rmSync(mkdtempSync(join(dir, ".ddst-probe-")), { recursive: true, force: true });
    return null;
  } catch (e) {
    return `TMPDIR ${dir} cannot hold temporary files (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): set TMPDIR to a writable directory`;
  }
}
