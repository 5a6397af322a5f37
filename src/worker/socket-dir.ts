import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where a worker's socket and key live: a private directory (0700 from mkdtemp; the key file is 0600). */

/** A Unix socket path holds at most 107 bytes (108 with the terminating NUL) on Linux; macOS allows 103. */
export const MAX_SOCKET_PATH = 103;
const SOCKET = "worker.sock";
/** What mkdtemp adds to the prefix, and the separators around it. */
const pathFor = (base: string) => join(base, "ddst-XXXXXX", SOCKET);

/** The base directory for the private directory: TMPDIR when the socket path fits under it, else /tmp (a
 * cluster's TMPDIR is often a long per-job path). Refuses, naming TMPDIR, when neither fits. */
export function socketBase(tmp = tmpdir(), fallback = "/tmp"): string {
  for (const base of [tmp, fallback]) if (Buffer.byteLength(pathFor(base)) <= MAX_SOCKET_PATH) return base;
  throw new Error(`no short enough directory for the worker's socket: ${pathFor(tmp)} is over ${MAX_SOCKET_PATH} bytes; set TMPDIR to a shorter directory`);
}

export function privateSocketDir(tmp = tmpdir()): { dir: string; endpoint: string; keyFile: string } {
  const dir = mkdtempSync(join(socketBase(tmp), "ddst-"));
  return { dir, endpoint: `ipc://${join(dir, SOCKET)}`, keyFile: join(dir, "key") };
}
