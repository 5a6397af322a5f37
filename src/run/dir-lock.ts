import { linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { hostname } from "node:os";
import { currentSlurmJob, slurmJobQueued, slurmRestartCount } from "../slurm/job-id.js";

/** An exclusive lock held by this process: a file holding "pid host [slurm-job@restart]", created only if absent.
 * A lock left by a process that is gone is stale and taken over: on this host, its pid no longer runs; on
 * another host, its pid cannot be checked, so only a lock taken inside a Slurm job can be judged there, by the
 * job: gone from the queue, or an earlier start of this very job (a requeued task starts again, often on another
 * node, with a higher SLURM_RESTART_COUNT; Slurm runs a job once at a time). Any other lock from another host is
 * respected. */

export interface LockHolder {
  pid: number;
  host: string;
  /** The Slurm job ("123_4" for an array task) the holder ran in, if any, and its restart count then. */
  job?: string;
  restart?: number;
}

const isMe = (h: LockHolder) => h.pid === process.pid && h.host === hostname();

/** Takes the lock `file`, or throws `refuse(holder)`. Returns the release function. */
export function takeLock(file: string, refuse: (holder: LockHolder) => Error): () => void {
  const job = currentSlurmJob();
  const me = `${process.pid} ${hostname()}${job ? ` ${job}@${slurmRestartCount()}` : ""}\n`;
  const guardSeen: GuardSighting = { content: null, since: 0, times: 0 };
  for (;;) {
    try {
      createWhole(file, me);
      return () => {
        // Released only if still ours: a stale-lock takeover by another process must not be undone.
        const holder = readLock(file);
        if (holder && isMe(holder)) rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const text = readText(file);
      if (text === null) continue; // gone meanwhile: try again
      const holder = parseLock(text);
      if (holder && !isMe(holder) && isLive(holder)) throw refuse(holder);
      removeStale(file, text, me, guardSeen); // stale, unreadable (an older ddst died writing it) or this process's
    }
  }
}

/** Removes the stale lock `file` (or an unreadable one, left by a process that died before writing it), under a
 * takeover guard: two processes that both judged it stale must not both remove it, or the second would remove
 * the lock the first has just taken and both would hold it. `judged` is the content found stale. */
function removeStale(file: string, judged: string, me: string, seen: GuardSighting): void {
  const guard = join(dirname(file), `.${basename(file)}.takeover`); // hidden: a table directory's check ignores it
  try {
    createWhole(guard, me);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    // A takeover lasts microseconds: the same guard seen again and again for GUARD_ABANDONED_MS was left by a
    // process that died holding it (on any host; timed by this process's clock, not the file's, which may be
    // skewed on a network file system, and by sightings, since a look at a lock may itself take seconds when it
    // asks Slurm). The wait blocks, signals included, so it is short.
    const content = readText(guard);
    if (content === null) return; // gone: look again
    if (content !== seen.content) Object.assign(seen, { content, since: Date.now(), times: 0 });
    seen.times += 1;
    if (seen.times >= 10 && Date.now() - seen.since > GUARD_ABANDONED_MS) {
      rmSync(guard, { force: true });
      Object.assign(seen, { content: null, since: 0, times: 0 });
    } else sleepMs(20); // another process is taking over: look again after it
    return;
  }
  try {
    // Only the very lock judged stale is removed, if it is still there: while it is there nobody can create one,
    // and only a guard's holder removes one. A lock found gone or changed was taken or removed meanwhile: removing
    // it now could remove the lock another process has just created, without the guard, in its place. Nothing
    // slow happens under the guard (judging a lock may ask Slurm), so no waiter takes it for abandoned.
    if (readText(file) === judged) rmSync(file, { force: true }); // else gone or changed: look again
  } finally {
    rmSync(guard, { force: true });
  }
}

const GUARD_ABANDONED_MS = 2_000;

/** The takeover guard as one process last saw it: its content, since when, how many times. */
interface GuardSighting {
  content: string | null;
  since: number;
  times: number;
}

/** Creates `file` holding `content`, or fails with EEXIST, so that no reader ever sees it half written (an empty
 * lock would pass for one left by a process that died): written under a hidden name of its own, then hard-linked
 * into place, which fails if the name exists. Where the file system has no hard links, an exclusive create. */
function createWhole(file: string, content: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  writeFileSync(tmp, content, { flag: "wx" });
  try {
    linkSync(tmp, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw e;
    writeFileSync(file, content, { flag: "wx" });
  } finally {
    rmSync(tmp, { force: true });
  }
}

const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Who holds the lock `file`, unless nobody does: no file, an unreadable one, or a process gone from this host. */
export function liveHolder(file: string): LockHolder | null {
  const holder = readLock(file);
  return holder && isLive(holder) ? holder : null;
}

function isLive(holder: LockHolder): boolean {
  if (holder.host === hostname()) return alive(holder.pid);
  const earlierStartOfMine = holder.job === currentSlurmJob() && (holder.restart ?? 0) < slurmRestartCount();
  return !(holder.job && (earlierStartOfMine || slurmJobQueued(holder.job) === false));
}

function readLock(file: string): LockHolder | null {
  const text = readText(file);
  return text === null ? null : parseLock(text);
}

/** The file's text, or null when it cannot be read (gone, above all). */
function readText(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** "pid host [job@restart]", or null for anything else (a lock written half by an older ddst that died). */
function parseLock(text: string): LockHolder | null {
  const [pid, host, slurm] = text.trim().split(/\s+/);
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return null;
  const [job, restart] = (slurm ?? "").split("@");
  return { pid: n, host: host ?? hostname(), ...(job ? { job, restart: Number(restart) || 0 } : {}) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** "pid 123" on this host, "pid 123 on node7" elsewhere. */
export const holderText = (h: LockHolder) =>
  (h.host === hostname() ? `pid ${h.pid}` : `pid ${h.pid} on ${h.host}`) + (h.job ? `, Slurm job ${h.job}` : "");
