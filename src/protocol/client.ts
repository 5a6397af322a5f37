import { Dealer } from "zeromq";
import { decodeTensors, encodeTensor, type Tensor } from "./frames.js";
import { PROTOCOL_VERSION, ReplyHeader, type ErrorCode, type OpName } from "./messages.js";
import { sign, verify } from "./signing.js";

/** The worker's default --max-message-bytes (python/ddst_worker/__main__.py). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 24;

/** A typed error reply from the worker. */
export class WorkerRequestError extends Error {
  constructor(
    readonly op: string,
    readonly code: ErrorCode,
    message: string,
    readonly detail?: unknown,
  ) {
    super(`worker ${op}: ${code}: ${message}`);
    this.name = "WorkerRequestError";
  }
}

export interface Reply {
  result: Record<string, unknown>;
  tensors: Map<string, Tensor>;
}

export interface Progress {
  op: string;
  iter: number;
  done: number;
  total: number;
}

interface Pending {
  op: string;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  onProgress?: (p: Progress) => void;
}

export interface RequestOptions {
  tensors?: Record<string, Tensor>;
  onProgress?: (p: Progress) => void;
}

/** The orchestrator's end of the wire: a DEALER that signs requests, matches replies to request ids,
 * and forwards progress events. It knows nothing about processes; the supervisor fails it when the
 * worker dies or hangs. */
export class WorkerClient {
  private readonly socket = new Dealer({ linger: 0 });
  private readonly pending = new Map<string, Pending>();
  private sendChain: Promise<void> = Promise.resolve();
  private nextId = 1;
  private closed = false;
  /** Time of the last authentic message from the worker (any reply or progress). */
  lastHeard = Date.now();
  /** Replies dropped because their signature did not verify. */
  droppedReplies = 0;
  /** Called with replies that match no pending request (an id the worker could not read). */
  onUnmatched?: (header: ReplyHeader) => void;

  constructor(
    readonly endpoint: string,
    private readonly key: Buffer,
    /** The worker's --max-message-bytes: ZeroMQ drops a larger frame without a word, so it is refused here. */
    private readonly maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
  ) {
    this.socket.connect(endpoint);
    void this.receiveLoop();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  request(op: OpName, args: object, opts: RequestOptions = {}): Promise<Reply> {
    if (this.closed) return Promise.reject(new Error(`worker connection closed; cannot send ${op}`));
    const seq = this.takeSeq();
    const id = `r${seq}`;
    const encoded = Object.entries(opts.tensors ?? {}).map(([name, t]) => encodeTensor(name, t));
    const header = Buffer.from(
      JSON.stringify({ v: PROTOCOL_VERSION, id, seq, op, args, tensors: encoded.map((e) => e.desc) }),
    );
    const frames = [header, ...encoded.map((e) => e.frame)];
    const size = frames.reduce((a, f) => a + f.length, 0);
    if (size > this.maxMessageBytes)
      return Promise.reject(new Error(`${op}: the request is ${size} bytes, over the worker's limit of ${this.maxMessageBytes} (--max-message-bytes); it was not sent`));
    return this.sendSigned(frames, id, op, opts.onProgress);
  }

  /** The next sequence number. It rises with every request, under the signature: a captured request sent again
   * is a replay the worker drops. Requests leave in this order (one send chain), so the worker sees it rise.
   * Public for tests that build raw headers. */
  takeSeq(): number {
    return this.nextId++;
  }

  /** Sends frames exactly as given, signed or not: for tests of the worker's defences. */
  async sendRaw(frames: Buffer[], signed = true): Promise<void> {
    const sig = signed ? Buffer.from(sign(this.key, frames)) : Buffer.from("0".repeat(64));
    await this.enqueue([sig, ...frames]);
  }

  /** Registers a pending request under an id the caller chose (tests of raw frames). */
  expectReply(id: string, op = "raw"): Promise<Reply> {
    return new Promise((resolve, reject) => this.pending.set(id, { op, resolve, reject }));
  }

  /** Fails every pending request (the worker died or hung) and refuses new ones. */
  failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error("worker connection closed"));
    this.socket.close();
  }

  private sendSigned(frames: Buffer[], id: string, op: string, onProgress?: (p: Progress) => void): Promise<Reply> {
    const reply = new Promise<Reply>((resolve, reject) => this.pending.set(id, { op, resolve, reject, onProgress }));
    const sig = Buffer.from(sign(this.key, frames));
    this.enqueue([sig, ...frames]).catch((e: Error) => {
      this.pending.get(id)?.reject(e);
      this.pending.delete(id);
    });
    return reply;
  }

  // zeromq.js allows one send in flight per socket; chain them.
  private enqueue(frames: Buffer[]): Promise<void> {
    const next = this.sendChain.then(() => this.socket.send(frames));
    this.sendChain = next.catch(() => undefined);
    return next;
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        this.handle(frames);
      }
    } catch (e) {
      if (!this.closed) this.failAll(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private handle(frames: Buffer[]): void {
    const [sig, head, ...rest] = frames;
    if (!sig || !head || !verify(this.key, sig, [head, ...rest])) {
      this.droppedReplies++;
      return;
    }
    this.lastHeard = Date.now();
    const parsed = ReplyHeader.safeParse(JSON.parse(head.toString("utf8")));
    if (!parsed.success) {
      this.droppedReplies++;
      return;
    }
    const h = parsed.data;
    const p = h.id === null ? undefined : this.pending.get(h.id);
    if (!p) {
      // e.g. a bad_header error about a request whose id the worker could not read.
      this.onUnmatched?.(h);
      return;
    }
    if (h.kind === "progress") {
      p.onProgress?.(h.progress);
      return;
    }
    this.pending.delete(h.id!);
    if (h.kind === "error") {
      p.reject(new WorkerRequestError(p.op, h.error.code, h.error.message, h.error.detail));
      return;
    }
    try {
      p.resolve({ result: h.result, tensors: decodeTensors(h.tensors, rest) });
    } catch (e) {
      p.reject(e as Error);
    }
  }
}
