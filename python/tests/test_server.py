"""The real worker as a subprocess, spoken to over ipc:// exactly as the orchestrator would.

One worker serves the whole module (tests run in file order and share its state); it is started
with a small --max-message-bytes so oversized messages are cheap to make.
"""

import json

import numpy as np
import pytest

from client import Client
from conftest import WorkerProcess
from ddst_worker import PROTOCOL_VERSION
from ddst_worker.frames import encode
from ddst_worker.spec_defaults import complete_build

MAX_BYTES = 64 * 1024
NONE_DROPPED = {"unsigned": 0, "replayed": 0}
# As `ddst run` sends it: every field named (the train block's numerics settings at their defaults).
BUILD = complete_build({"seed": 3, "device": "cpu", "model": {"name": "mlp2d", "hidden": 64, "depth": 2, "latentDim": 2},
         "data": {"name": "ring8", "std": 0.02, "radius": 2.0},
         "train": {"batchSize": 64, "genBatchSize": 64, "nCritic": 2, "loss": "hinge", "lrG": 1e-3, "lrD": 1e-3,
                   "betas": [0.5, 0.9], "ema": 0.999}})


@pytest.fixture(scope="module")
def worker(schemas):
    # A small --max-message-bytes makes oversized messages cheap to send.
    with WorkerProcess(schemas, "--max-message-bytes", str(MAX_BYTES)) as w:
        yield w.proc, w.client


def error_of(header):
    assert header["kind"] == "error", header
    return header["error"]


def test_hello(worker):
    _, c = worker
    result, _ = c.ok("hello")
    assert result["protocol"] == PROTOCOL_VERSION and result["dropped"] == NONE_DROPPED and result["threads"] == 1
    assert result["device"] in ("cpu", "cuda") and isinstance(result["cudaAvailable"], bool)
    assert {"worker", "python", "torch", "pid"} <= set(result)


def test_ops_before_build_are_not_built(worker):
    _, c = worker
    header, _ = c.call("stats")
    assert error_of(header)["code"] == "not_built"
    assert c.ok("ping")[0] == {"busy": False, "iter": 0, "dropped": NONE_DROPPED}


def test_build_and_set_masks(worker):
    _, c = worker
    result, _ = c.ok("build", BUILD)
    assert result["device"] == "cpu" and result["latentDim"] == 2 and result["dataShape"] == [2]
    assert result["layers"][0] == {"net": "generator", "name": "net.0", "shape": [64, 2], "maskable": True,
                                   "numel": 128, "macs": 128}
    maskable = [(l["net"], l["name"], l["shape"]) for l in result["layers"] if l["maskable"]]
    assert maskable == [("generator", "net.0", [64, 2]), ("generator", "net.2", [64, 64]),
                        ("generator", "net.4", [2, 64]), ("discriminator", "net.0", [64, 2]),
                        ("discriminator", "net.2", [64, 64]), ("discriminator", "net.4", [1, 64])]
    assert all(l["numel"] == np.prod(l["shape"]) for l in result["layers"])
    stats, _ = c.ok("setMasks", {"generator": {"net.0": 0.5, "net.2": 0.25, "net.4": 0.5},
                                 "discriminator": {"net.0": 0.5, "net.2": 0.25, "net.4": 0.5}})
    g = {l["name"]: l["active"] for l in stats["generator"]["layers"]}
    assert g == {"net.0": 64, "net.2": 1024, "net.4": 64}
    assert stats["discriminator"]["active"] == 64 + 1024 + 32
    assert stats["generator"]["itop"] == stats["generator"]["density"]


def test_train_with_probes(worker):
    _, c = worker
    header, tensors, progress, _ = c.reply(c.send("train", {"start": 1, "iterations": 50, "probeEvery": 10}))
    assert header["kind"] == "ok" and header["result"] == {"end": 50, "iterations": 50, "interrupted": False}
    assert [(t["name"], t["dtype"], t["shape"]) for t in header["tensors"]] == \
        [("losses", "float64", [50, 3]), ("probes", "float64", [5, 4])]
    assert list(tensors["losses"][:, 0]) == list(range(1, 51))
    assert list(tensors["probes"][:, 0]) == [10, 20, 30, 40, 50]
    assert np.isfinite(tensors["losses"]).all() and np.isfinite(tensors["probes"]).all()
    assert progress and progress[-1] == {"op": "train", "iter": 50, "done": 50, "total": 50}
    stats, _ = c.ok("stats")
    assert stats["generator"]["active"] == 64 + 1024 + 64  # training keeps the count


def test_ping_answered_and_other_ops_busy_during_long_train(worker):
    _, c = worker
    rid = c.send("train", {"start": 51, "iterations": 150, "probeEvery": 1000})
    ping_id = c.send("ping")
    stats_id = c.send("stats")
    header, tensors, progress, others = c.reply(rid)
    assert header["kind"] == "ok", header
    assert tensors["losses"].shape == (150, 3)
    by_id = {h["id"]: h for h in others}
    ping = by_id[ping_id]
    assert ping["kind"] == "ok" and ping["result"]["busy"] is True and 51 <= ping["result"]["iter"] <= 200
    assert error_of(by_id[stats_id])["code"] == "busy"
    assert c.ok("ping")[0]["busy"] is False and c.ok("ping")[0]["iter"] == 200


def test_dst_step_and_set_density(worker):
    _, c = worker
    result, _ = c.ok("dstStep", {"net": "generator", "dropRate": 0.3, "prune": "magnitude", "growth": "gradient", "alpha": 0.5})
    assert result["pruned"] == result["grown"] > 0 and result["active"] == 64 + 1024 + 64
    result, _ = c.ok("dstStep", {"net": "generator", "dropRate": 0.3, "prune": "set", "growth": "global_hybrid",
                                 "alpha": 0.7})
    assert result["pruned"] == result["grown"] > 0 and result["active"] == 64 + 1024 + 64
    result, _ = c.ok("setDensity", {"net": "discriminator", "target": 0.5, "growth": "global_gradient"})
    assert result["after"] == pytest.approx(round(0.5 * result["total"]) / result["total"])
    assert result["grown"] == result["active"] - (64 + 1024 + 32) and result["pruned"] == 0
    _, tensors = c.ok("sample", {"n": 10, "seed": 1, "batchSize": 100, "batchNorm": "batch"})
    assert tensors["samples"].shape == (10, 2) and tensors["samples"].dtype == np.float32


def test_unsigned_short_and_replayed_messages_are_dropped_and_counted(worker):
    _, c = worker
    body = [json.dumps({"v": PROTOCOL_VERSION, "id": "evil", "seq": 10**9, "op": "hello", "args": {}}).encode()]
    c.send_frames(body, signature=b"0" * 64)
    c.send_frames(body, signature=b"")
    c.sock.send_multipart([b"lonely"])
    result, _ = c.ok("hello")
    assert result["dropped"] == {"unsigned": 3, "replayed": 0}
    # A signed request captured and sent again, from this connection or a new one, is never executed.
    seq = next(c.seqs)
    captured = [json.dumps({"v": PROTOCOL_VERSION, "id": "once", "seq": seq, "op": "ping", "args": {}}).encode()]
    c.send_frames(captured)
    assert c.recv()[0]["id"] == "once"
    c.send_frames(captured)
    other = Client(c.endpoint, c.key)
    try:
        other.send_frames(captured)
        older = [json.dumps({"v": PROTOCOL_VERSION, "id": "older", "seq": seq - 1, "op": "ping", "args": {}}).encode()]
        other.send_frames(older)
        assert not other.sock.poll(200)
    finally:
        other.close()
    result, _ = c.ok("hello")
    assert result["dropped"] == {"unsigned": 3, "replayed": 3}
    assert not c.sock.poll(100)  # nothing ever answered the dropped ones
    # The same number written as 105.0 (an integer to the schema) is the same request.
    seq = next(c.seqs)
    as_int = {"v": PROTOCOL_VERSION, "id": "n", "seq": seq, "op": "ping", "args": {}}
    c.send_frames([json.dumps(as_int).encode()])
    assert c.recv()[0]["id"] == "n"
    c.send_frames([json.dumps({**as_int, "seq": float(seq)}).encode()])
    assert not c.sock.poll(200)
    # A signed request the schema refuses does not move the bound: the next genuine one is answered.
    c.send_frames([json.dumps({"v": PROTOCOL_VERSION, "id": "far", "seq": 10 ** 30, "op": "ping", "args": {}}).encode()])
    assert error_of(c.recv()[0])["code"] == "invalid_request"
    result, _ = c.ok("hello")
    assert result["dropped"] == {"unsigned": 3, "replayed": 4}


def test_bad_header(worker):
    _, c = worker
    c.send_frames([b"{not json"])
    header, _ = c.recv()
    assert header["id"] is None and error_of(header)["code"] == "bad_header"
    c.send_frames([b"[1, 2]"])
    assert error_of(c.recv()[0])["code"] == "bad_header"
    c.send_frames([b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}"])  # nested past Python's stack: answered too
    assert error_of(c.recv()[0])["code"] == "bad_header"


def test_truncated_tensor_frame(worker):
    _, c = worker
    desc, data = encode("x", np.arange(4, dtype=np.float32))
    header = {"v": PROTOCOL_VERSION, "id": "t1", "seq": next(c.seqs), "op": "hello", "args": {}, "tensors": [desc]}
    c.send_frames([json.dumps(header).encode(), data[:-2]])
    reply, _ = c.recv()
    err = error_of(reply)
    assert reply["id"] == "t1" and err["code"] == "bad_tensor" and err["detail"]["expected"] == 16
    header["seq"] = next(c.seqs)
    c.send_frames([json.dumps(header).encode()])  # frame missing altogether
    assert error_of(c.recv()[0])["code"] == "bad_tensor"


def test_too_large(worker):
    _, c = worker
    half = np.zeros(MAX_BYTES // 16 + 1, dtype=np.float64)  # two frames under the cap, over it together
    header, _ = c.call("hello", tensors=[("a", half), ("b", half)], rid="big1")
    assert header["id"] == "big1" and error_of(header)["code"] == "too_large"
    # One frame over the cap disconnects the sender before the worker holds it (ZMQ_MAXMSGSIZE): no reply.
    c.send("hello", tensors=[("big", np.zeros(MAX_BYTES // 8 + 1, dtype=np.float64))], rid="big2")
    assert not c.sock.poll(300)
    assert c.ok("ping")[0]["busy"] is False  # the DEALER reconnects; the worker serves on


def test_invalid_request_version_and_unknown_op(worker):
    _, c = worker
    header, _ = c.call("setDensity", {"net": "generator", "target": "high", "growth": "global_random"})
    err = error_of(header)
    assert err["code"] == "invalid_request"
    assert [e["path"] for e in err["detail"]["errors"]] == ["args.target"]
    assert "args.target" in err["message"]
    c.send_frames([json.dumps({"v": 99, "id": "v99", "seq": next(c.seqs), "op": "hello", "args": {}}).encode()])
    reply, _ = c.recv()
    assert reply["id"] == "v99" and error_of(reply)["code"] == "version_mismatch"
    header, _ = c.call("frobnicate")
    assert error_of(header)["code"] == "unknown_op"
    header, _ = c.call("setMasks", {"generator": {"net.9": 0.5}, "discriminator": {}})
    assert error_of(header)["code"] == "bad_value"
    header, _ = c.call("build", {**BUILD, "model": {"name": "sngan32", "width": 64}})  # width is dcgan's
    assert [e["path"] for e in error_of(header)["detail"]["errors"]] == ["args.model"]


def test_still_serving_then_shutdown_exits_zero(worker):
    proc, c = worker
    result, _ = c.ok("hello")
    assert result["dropped"] == {"unsigned": 3, "replayed": 4}
    stats, _ = c.ok("stats")
    assert stats["generator"]["itop"] > stats["generator"]["density"]
    assert c.ok("shutdown")[0] == {}
    assert proc.wait(10) == 0


def test_internal_errors_are_replies_not_crashes(schemas):
    """In-process: an op that raises becomes `internal` with a traceback; the server keeps serving."""
    import zmq

    from ddst_worker.server import Server
    from ddst_worker.session import Session
    from ddst_worker.validate import RequestValidator

    class Broken(Session):
        def op_stats(self, args):
            return {"ratio": 1 / 0}

        def op_sample(self, args):
            return {"nan": float("nan")}

    key = b"ab" * 32
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind("inproc://ddst-internal-test")
    client = Client("inproc://ddst-internal-test", key)
    server = Server(router, key, 1 << 20, RequestValidator(schemas), Broken())
    try:
        for op, args, needle in [("stats", {}, "ZeroDivisionError"), ("sample", {"n": 1, "seed": 0, "batchSize": 100, "batchNorm": "batch"}, "not JSON compliant")]:
            client.send(op, args)
            server.handle(router.recv_multipart())
            err = error_of(client.recv()[0])
            assert err["code"] == "internal" and needle in err["message"] + err["detail"]["traceback"]
        client.send("ping")
        server.handle(router.recv_multipart())
        assert client.recv()[0]["result"] == {"busy": False, "iter": 0, "dropped": NONE_DROPPED}
    finally:
        client.close()
        router.close(0)
