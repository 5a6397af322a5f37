import type { z } from "zod";
import { execa, type ResultPromise } from "execa";
import { appendFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WorkerClient, type Reply, type RequestOptions } from "../protocol/client.js";
import { HelloResult, MAX_THREADS, PROTOCOL_VERSION, type OpName } from "../protocol/messages.js";
import { newKey } from "../protocol/signing.js";
import { findPython } from "./discover.js";
import { packageRoot } from "./paths.js";
import { privateSocketDir } from "./socket-dir.js";
import { InputError } from "../input-error.js";
import { tmpProblem } from "../files.js";

/** Starting, handshaking and supervising one `python -m ddst_worker` process. */

/** A worker's last stderr lines, on lines of their own below the message's first line (which a restart record
 * keeps as its reason). */
const lastWordsText = (lines: string[]) => `\nIts last stderr lines:\n${lines.map((l) => `  | ${l}`).join("\n") || "  | (nothing)"}`;

/** How long this process did not run before a check due every `intervalMs` came, `elapsedMs` after the last:
 * one so late means it was stopped (SIGSTOP or Ctrl-Z, a suspended job or machine, a blocked event loop), so it
 * heard nothing because it was not listening, and the worker's answers wait unread in the socket. That time is
 * nobody's silence, and the check, which runs before those answers are read, judges nothing. 0 otherwise. */
export function stoppedFor(elapsedMs: number, intervalMs: number): number {
  const late = elapsedMs - intervalMs;
  return late > Math.max(2 * intervalMs, 2000) ? late : 0;
}

export class WorkerDiedError extends Error {
  constructor(
    readonly exitCode: number | undefined,
    readonly signal: string | undefined,
    readonly lastWords: string[],
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    super(`the PyTorch worker ${how}.${lastWordsText(lastWords)}`);
    this.name = "WorkerDiedError";
  }
}

export class WorkerHungError extends Error {
  constructor(
    readonly silentMs: number,
    readonly lastWords: string[],
    setting: string,
  ) {
    super(
      `the PyTorch worker did not answer for ${(silentMs / 1000).toFixed(1)} s and was stopped (raise ${setting} if ` +
        `that legitimately takes longer).${lastWordsText(lastWords)}`,
    );
    this.name = "WorkerHungError";
  }
}

/** The machine cannot host a worker as asked (e.g. a socket path too long): exit 2, no stack trace. */
export class WorkerEnvironmentError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = "WorkerEnvironmentError";
  }
}

export interface WorkerOptions {
  /** Interpreter; default: DDST_PYTHON or discovery. */
  python?: string;
  /** File that receives the worker's stderr. */
  logFile?: string;
  /** torch threads in the worker (DDST_THREADS). */
  threads?: number;
  maxMessageBytes?: number;
  handshakeTimeoutMs?: number;
  /** No message from a busy worker for this long means it hangs. */
  hangTimeoutMs?: number;
  /** The setting a user raises when the worker is declared hung, named in the message. */
  hangSetting?: string;
  pingIntervalMs?: number;
  /** Extra environment for the worker process (the table runner pins a GPU with CUDA_VISIBLE_DEVICES). */
  env?: Record<string, string>;
}

const TAIL_LINES = 40;

export class Worker {
  readonly client: WorkerClient;
  hello!: HelloResult;
  private readonly proc: ResultPromise;
  private readonly dir: string;
  private readonly stderrLines: string[] = [];
  private partialLine = "";
  private failure?: Error;
  private readonly watchdog: NodeJS.Timeout;
  private pinging = false;
  private readonly pingIntervalMs: number;
  /** When the watchdog last ran. */
  private lastCheck = Date.now();
  /** No message from a busy worker for this long means it hangs (changeable, e.g. after a slow build). */
  hangTimeoutMs: number;
  /** The setting named when the worker is declared hung. */
  hangSetting: string;
  private readonly exited: Promise<void>;
  private readonly onExit = () => this.killNow();

  private constructor(python: string, private readonly opts: WorkerOptions) {
    let made: ReturnType<typeof privateSocketDir>;
    try {
      made = privateSocketDir();
    } catch (e) {
      throw new WorkerEnvironmentError(tmpProblem() ?? (e as Error).message);
    }
    const { dir, endpoint, keyFile } = made;
    this.dir = dir;
    const key = newKey();
    try {
      writeFileSync(keyFile, key, { mode: 0o600 });
      // The client first: once the process runs, its exit handler fails the client's requests.
      this.client = new WorkerClient(endpoint, Buffer.from(key, "ascii"), opts.maxMessageBytes);
    } catch (e) {
      this.cleanupDir();
      throw new WorkerEnvironmentError(`cannot set up the worker's socket in ${dir}: ${(e as Error).message}`);
    }
    const root = packageRoot();
    // --private-dir: the worker removes the directory too when it exits, which covers this process dying by SIGKILL.
    const args = ["-m", "ddst_worker", "--endpoint", endpoint, "--key-file", keyFile, "--private-dir", dir];
    if (opts.maxMessageBytes) args.push("--max-message-bytes", String(opts.maxMessageBytes));
    this.proc = execa(python, args, {
      reject: false,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      // Read as it comes (onStderr): execa's buffer would hold all of it and, past its cap, close the pipe, which
      // kills the worker at its next write.
      buffer: false,
      cleanup: true,
      env: {
        PYTHONPATH: join(root, "python"),
        DDST_SCHEMAS: join(root, "schemas"),
        PYTHONUNBUFFERED: "1",
        // The worker exits when this process is gone, even where a wrapper script (DDST_PYTHON) is its parent.
        DDST_ORCHESTRATOR_PID: String(process.pid),
        ...(opts.threads ? { DDST_THREADS: String(opts.threads) } : {}),
        ...opts.env,
      },
    });
    // One decoder per stream: a character split between two chunks is put back together.
    this.proc.stderr?.setEncoding("utf8");
    this.proc.stdout?.setEncoding("utf8");
    this.proc.stderr?.on("data", (text: string) => this.onStderr(text));
    this.proc.stdout?.on("data", (text: string) => this.onStderr(text));
    this.exited = this.proc.then((r) => {
      this.flushPartial();
      if (!this.failure) {
        this.failure = new WorkerDiedError(r.exitCode, r.signal ?? undefined, this.lastWords());
      }
      this.client.failAll(this.failure);
      this.cleanupDir();
    });
    this.hangTimeoutMs = opts.hangTimeoutMs ?? 120_000;
    this.hangSetting = opts.hangSetting ?? "the hang timeout";
    this.pingIntervalMs = opts.pingIntervalMs ?? 1000;
    this.watchdog = setInterval(() => this.checkLiveness(), this.pingIntervalMs);
    this.watchdog.unref();
    process.once("exit", this.onExit);
  }

  /** Starts a worker and waits for its handshake. */
  static async start(opts: WorkerOptions = {}): Promise<Worker> {
    // Inherited from the environment unless the experiment sets supervision.threads: a bad one is the
    // environment's fault, said before a worker starts (the worker would exit, or die starting that many threads).
    const inherited = opts.env?.DDST_THREADS ?? (opts.threads === undefined ? process.env.DDST_THREADS : undefined);
    if (inherited !== undefined && inherited !== "" && !(/^\d+$/.test(inherited) && Number(inherited) >= 1 && Number(inherited) <= MAX_THREADS))
      throw new WorkerEnvironmentError(`DDST_THREADS is ${JSON.stringify(inherited)}: it must be a number of torch threads from 1 to ${MAX_THREADS}, or unset (torch's own choice)`);
    const python = opts.python ?? (await findPython()).path;
    const w = new Worker(python, opts);
    try {
      const timeout = opts.handshakeTimeoutMs ?? 120_000;
      const reply = await w.withDeadline(w.client.request("hello", {}), timeout, "handshake (hello)");
      const hello = HelloResult.parse(reply.result);
      if (hello.protocol !== PROTOCOL_VERSION)
        throw new Error(`worker speaks protocol ${hello.protocol}, this ddst speaks ${PROTOCOL_VERSION}: reinstall so both come from the same version`);
      w.hello = hello;
      return w;
    } catch (e) {
      await w.stop();
      throw e;
    }
  }

  /** SIGKILL to the process started and, where a wrapper script started Python (its pid is not ours), to the
   * worker itself: killing the wrapper alone would leave the worker running. */
  private killHard(): void {
    this.proc.kill("SIGKILL");
    const worker = this.hello?.pid;
    if (worker && worker !== this.proc.pid)
      try {
        process.kill(worker, "SIGKILL");
      } catch {
        /* gone already */
      }
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.failure === undefined && this.proc.exitCode === null;
  }

  lastWords(n = TAIL_LINES): string[] {
    return this.stderrLines.slice(-n);
  }

  /** One request; rejects with WorkerDiedError / WorkerHungError if the process fails meanwhile. */
  async call(op: OpName, args: object, opts?: RequestOptions): Promise<Reply> {
    if (this.failure) throw this.failure;
    return this.client.request(op, args, opts);
  }

  /** One request whose result is checked against `schema`; a mismatch means worker and orchestrator
   * come from different versions, and the error says which fields disagree. */
  async ask<T>(op: OpName, args: object, schema: z.ZodType<T>, opts?: RequestOptions): Promise<T> {
    const reply = await this.call(op, args, opts);
    const r = schema.safeParse(reply.result);
    if (!r.success) {
      const fields = r.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(result)"}: ${i.message}`);
      throw new Error(
        `the worker's reply to ${op} does not match this ddst's protocol (${fields.join("; ")}); ` +
          "reinstall so the worker and the orchestrator come from the same version",
      );
    }
    return r.data;
  }

  /** Asks the worker to exit, then makes sure it did; removes the private directory. */
  async stop(graceMs = 3000): Promise<void> {
    clearInterval(this.watchdog);
    if (this.alive) {
      this.client.request("shutdown", {}).catch(() => undefined);
      const t = setTimeout(() => this.killHard(), graceMs);
      await this.exited.catch(() => undefined);
      clearTimeout(t);
    } else {
      this.killHard();
      await this.exited.catch(() => undefined);
    }
    this.client.close();
    process.removeListener("exit", this.onExit);
    this.cleanupDir();
  }

  /** Synchronous last resort (process exit): no orphan worker, no leftover socket directory. */
  killNow(): void {
    try {
      this.killHard();
    } catch {
      /* already gone */
    }
    this.cleanupDir();
  }

  /** `p`, or an error once it has taken `ms` of the time this process ran: time it was stopped (see
   * stoppedFor) is not the worker's, and its answer may be waiting unread in the socket. */
  private withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      let used = 0;
      let last = Date.now();
      timer = setInterval(() => {
        const now = Date.now();
        const elapsed = now - last;
        last = now;
        if (stoppedFor(elapsed, this.pingIntervalMs) > 0) return;
        used += elapsed;
        if (used >= ms) reject(new Error(`the PyTorch worker gave no ${what} within ${ms / 1000} s (raise ${this.hangSetting} if it legitimately takes longer).${lastWordsText(this.lastWords())}`));
      }, Math.min(this.pingIntervalMs, ms));
    });
    return Promise.race([p, deadline]).finally(() => clearInterval(timer));
  }

  private checkLiveness(): void {
    const now = Date.now();
    const lost = stoppedFor(now - this.lastCheck, this.pingIntervalMs);
    this.lastCheck = now;
    if (!this.alive || this.client.inFlight === 0) {
      this.client.lastHeard = now;
      return;
    }
    if (lost > 0) {
      this.client.lastHeard += lost;
      return;
    }
    const silent = now - this.client.lastHeard;
    if (silent > this.hangTimeoutMs) {
      this.failure = new WorkerHungError(silent, this.lastWords(), this.hangSetting);
      this.client.failAll(this.failure);
      this.killHard();
      return;
    }
    // A ping is answered between training iterations; its reply refreshes lastHeard.
    if (!this.pinging) {
      this.pinging = true;
      this.client
        .request("ping", {})
        .catch(() => undefined)
        .finally(() => (this.pinging = false));
    }
  }

  private onStderr(text: string): void {
    if (this.opts.logFile) {
      try {
        appendFileSync(this.opts.logFile, text);
      } catch {
        /* the run directory may be gone; the tail below still holds the words */
      }
    }
    const lines = (this.partialLine + text).split("\n");
    this.partialLine = lines.pop() ?? "";
    for (const l of lines) this.pushLine(l);
  }

  private flushPartial(): void {
    if (this.partialLine) this.pushLine(this.partialLine);
    this.partialLine = "";
  }

  private pushLine(l: string): void {
    this.stderrLines.push(l);
    if (this.stderrLines.length > 500) this.stderrLines.splice(0, this.stderrLines.length - TAIL_LINES);
  }

  private cleanupDir(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
