import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerRequestError } from "../../src/protocol/client.js";
import { rowsOf } from "../../src/protocol/frames.js";
import { BuildResult, PingResult, PROTOCOL_VERSION, StatsResult, type ReplyHeader } from "../../src/protocol/messages.js";
import { erkDensities } from "../../src/sparsity/erk.js";
import { Worker, WorkerDiedError, WorkerHungError } from "../../src/worker/worker.js";
import { findPython } from "../../src/worker/discover.js";
import { isAlive, toyBuild, waitFor } from "./helpers.js";

async function builtWorker(opts = {}) {
  const w = await Worker.start(opts);
  const built = BuildResult.parse((await w.call("build", toyBuild)).result);
  const dens = (net: string) => erkDensities(built.layers.filter((l) => l.net === net && l.maskable), 0.2);
  await w.call("setMasks", { generator: dens("generator"), discriminator: dens("discriminator") });
  return w;
}

describe("worker over ZeroMQ (real PyTorch)", () => {
  let w: Worker;
  beforeAll(async () => {
    w = await builtWorker({ maxMessageBytes: 1 << 20 });
  });
  afterAll(async () => {
    await w?.stop();
  });

  it("handshakes with versions, device and threads", () => {
    expect(w.hello).toMatchObject({ protocol: PROTOCOL_VERSION, device: "cpu", cudaAvailable: expect.any(Boolean) });
    expect(w.hello.torch).toMatch(/^2\./);
    expect(w.hello.threads).toBeGreaterThan(0);
  });

  it("trains 200 iterations and returns losses and BR probes as tensor frames", async () => {
    const progress: number[] = [];
    const r = await w.call("train", { start: 1, iterations: 200, probeEvery: 10 }, { onProgress: (p) => progress.push(p.done) });
    const losses = rowsOf(r.tensors.get("losses"));
    const probes = rowsOf(r.tensors.get("probes"));
    expect(losses).toHaveLength(200);
    expect(losses[0]![0]).toBe(1);
    expect(losses[199]![0]).toBe(200);
    expect(losses.every((l) => l.every(Number.isFinite))).toBe(true);
    expect(probes.map((p) => p[0])).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 10));
    expect(r.result).toMatchObject({ end: 200, iterations: 200 });
    const stats = StatsResult.parse((await w.call("stats", {})).result);
    expect(stats.generator.density).toBeCloseTo(0.2, 2);
  });

  it("answers ping while training and refuses other work with `busy`", async () => {
    const training = w.call("train", { start: 201, iterations: 400, probeEvery: 10 });
    await new Promise((r) => setTimeout(r, 150));
    const ping = PingResult.parse((await w.call("ping", {})).result);
    expect(ping.busy).toBe(true);
    await expect(w.call("stats", {})).rejects.toMatchObject({ code: "busy" });
    await training;
  });

  it("changes D's density exactly and runs a DST step on G", async () => {
    const r = (await w.call("setDensity", { net: "discriminator", target: 0.35, growth: "global_gradient" })).result;
    expect(r.after as number).toBeCloseTo(0.35, 3);
    const d = (await w.call("dstStep", { net: "generator", dropRate: 0.3, prune: "global_magnitude", growth: "global_gradient", alpha: 0.5 })).result;
    expect(d.pruned).toBe(d.grown);
    // Weights just dropped may be grown again (they stay): regrown counts them, and the active count holds.
    expect(d.regrown).toBeGreaterThanOrEqual(0);
    expect(d.regrown).toBeLessThanOrEqual(d.grown as number);
  });

  it("drops unsigned messages, counts them, and keeps serving", async () => {
    const before = PingResult.parse((await w.call("ping", {})).result).dropped;
    await w.client.sendRaw([Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, id: "x1", seq: 1e9, op: "ping", args: {} }))], false);
    await w.client.sendRaw([], true);
    await new Promise((r) => setTimeout(r, 100));
    const after = PingResult.parse((await w.call("ping", {})).result).dropped;
    expect(after).toEqual({ ...before, unsigned: before.unsigned + 2 });
  });

  it("answers a header that is not JSON with bad_header", async () => {
    const got = new Promise<ReplyHeader>((resolve) => (w.client.onUnmatched = resolve));
    await w.client.sendRaw([Buffer.from("{not json")]);
    const h = await got;
    expect(h).toMatchObject({ kind: "error", id: null, error: { code: "bad_header" } });
  });

  it("answers a truncated tensor frame with bad_tensor", async () => {
    const header = { v: PROTOCOL_VERSION, id: "t1", seq: w.client.takeSeq(), op: "ping", args: {}, tensors: [{ name: "x", dtype: "float32", shape: [4] }] };
    const reply = w.client.expectReply("t1", "ping");
    await w.client.sendRaw([Buffer.from(JSON.stringify(header)), Buffer.alloc(10)]);
    await expect(reply).rejects.toMatchObject({ code: "bad_tensor" });
  });

  it("answers an oversized message with too_large, and drops the sender of an oversized frame", async () => {
    // Two frames under the 1 MiB cap, over it together: refused after arrival, with a reply.
    const half = 600_000;
    const tensors = ["a", "b"].map((name) => ({ name, dtype: "uint8", shape: [half] }));
    const reply = w.client.expectReply("big1", "ping");
    const header = { v: PROTOCOL_VERSION, id: "big1", seq: w.client.takeSeq(), op: "ping", args: {}, tensors };
    await w.client.sendRaw([Buffer.from(JSON.stringify(header)), Buffer.alloc(half), Buffer.alloc(half)]);
    await expect(reply).rejects.toMatchObject({ code: "too_large" });
    // One frame over the cap: ZMQ_MAXMSGSIZE disconnects the sender before the worker holds it; no reply, and the
    // DEALER reconnects by itself.
    const big = { v: PROTOCOL_VERSION, id: "big2", seq: w.client.takeSeq(), op: "ping", args: {}, tensors: [{ name: "x", dtype: "uint8", shape: [2 << 20] }] };
    await w.client.sendRaw([Buffer.from(JSON.stringify(big)), Buffer.alloc(2 << 20)]);
    await new Promise((r) => setTimeout(r, 300));
    expect(PingResult.parse((await w.call("ping", {})).result).busy).toBe(false);
    // So the orchestrator never sends what would be lost that way: it refuses a request over the cap itself.
    await expect(w.call("ping", {}, { tensors: { x: { dtype: "uint8", shape: [2 << 20], data: new Uint8Array(2 << 20) } } })).rejects.toThrow(
      /ping: the request is \d+ bytes, over the worker's limit of 1048576 \(--max-message-bytes\); it was not sent/,
    );
  });

  it("answers invalid arguments with invalid_request naming the path", async () => {
    const err = await w.call("setDensity", { net: "discriminator", target: 1.5, growth: "global_gradient" }).catch((e) => e);
    expect(err).toBeInstanceOf(WorkerRequestError);
    expect(err.code).toBe("invalid_request");
    expect(JSON.stringify(err.detail)).toMatch(/target/);
  });

  it("is still alive and serving after every fault", async () => {
    expect(PingResult.parse((await w.call("ping", {})).result).busy).toBe(false);
    expect(isAlive(w.pid!)).toBe(true);
  });
});

describe("worker faults", () => {
  it("reports a killed worker within a second, with its last stderr lines", async () => {
    const w = await builtWorker();
    const training = w.call("train", { start: 1, iterations: 100_000, probeEvery: 10 });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    process.kill(w.pid!, "SIGKILL");
    const err = await training.catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err).toBeInstanceOf(WorkerDiedError);
    expect(err.message).toMatch(/SIGKILL/);
    expect(err.message).toMatch(/ddst-worker ready/);
    await w.stop();
  });

  it("detects a hung worker by deadline and stops it", async () => {
    const w = await builtWorker({ pingIntervalMs: 200 });
    // Short only once built: build answers no ping, and a loaded machine may take seconds for it.
    w.hangTimeoutMs = 1500;
    const pid = w.pid!;
    const training = w.call("train", { start: 1, iterations: 100_000, probeEvery: 10 });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, "SIGSTOP");
    const err = await training.catch((e) => e);
    expect(err).toBeInstanceOf(WorkerHungError);
    expect(await waitFor(() => !isAlive(pid), 3000)).toBe(true);
    await w.stop();
  });

  it("a busy worker is not declared hung for the time this process itself did not run (SIGSTOP, a suspended job)", async () => {
    const w = await builtWorker({ pingIntervalMs: 200 });
    w.hangTimeoutMs = 1500;
    const training = w.call("train", { start: 1, iterations: 300, probeEvery: 10 });
    let failed: unknown;
    training.catch((e) => (failed = e));
    await new Promise((r) => setTimeout(r, 300));
    // The event loop held for longer than the hang timeout, as a stopped process is: the worker's progress waits
    // unread in the socket, and the watchdog runs before it is read.
    const until = Date.now() + 2500;
    while (Date.now() < until);
    await new Promise((r) => setTimeout(r, 500));
    expect(failed).toBeUndefined();
    await training;
    await w.stop();
  });

  it("a start-up is not timed out for the time this process itself did not run", async () => {
    const python = (await findPython()).path;
    const starting = Worker.start({ python, handshakeTimeoutMs: 5000, pingIntervalMs: 200 });
    let failed: unknown;
    starting.catch((e) => (failed = e));
    // Held past the handshake's deadline, as a stopped process is: the worker's hello waits unread in the socket,
    // and timers run before it is read.
    const until = Date.now() + 6000;
    while (Date.now() < until);
    await new Promise((r) => setTimeout(r, 300));
    console.log("DBG", String(failed), Date.now() - until);
    expect(failed).toBeUndefined();
    await (await starting).stop();
  });

  it("a DDST_THREADS from the environment that is no thread count is refused before a worker starts", async () => {
    for (const bad of ["abc", "0", "100000000"])
      await expect(Worker.start({ env: { DDST_THREADS: bad } })).rejects.toThrow(new RegExp(`DDST_THREADS is "${bad}": it must be a number of torch threads from 1 to 1024, or unset`));
  });

  it("shuts down cleanly and leaves no process", async () => {
    const w = await Worker.start();
    const pid = w.pid!;
    await w.stop();
    expect(await waitFor(() => !isAlive(pid), 3000)).toBe(true);
  });
});
