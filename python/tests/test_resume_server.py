"""Through real worker processes: save in one, load in a fresh one, continue bit for bit; interrupt; SIGINT.

Two workers start together and serve the module: `a` runs straight through (saving on the way), `b`
starts fresh and resumes from a's checkpoint. Both end by shutdown, which must exit 0.
"""

import os
import signal

import numpy as np
import pytest
import torch

from conftest import WorkerProcess
from test_server import BUILD

MASKS = {"generator": {"net.0": 0.5, "net.2": 0.3, "net.4": 0.5}, "discriminator": {"net.2": 0.4, "net.4": 0.8}}


@pytest.fixture(scope="module")
def workers(schemas, tmp_path_factory):
    # Started together, so their torch imports overlap; each answers `ready` when it has bound its socket.
    procs = {name: WorkerProcess(schemas, ready=False) for name in ("a", "b")}
    out = {name: (w.proc, w.wait_ready()) for name, w in procs.items()}
    out["dir"] = tmp_path_factory.mktemp("ck")
    yield out
    for w in procs.values():
        try:
            if w.proc.poll() is None:
                w.client.ok("shutdown")
            assert w.proc.wait(10) == 0
        finally:
            w.close()


def train(c, start, n, every=5):
    header, tensors, _, _ = c.reply(c.send("train", {"start": start, "iterations": n, "probeEvery": every}))
    assert header["kind"] == "ok", header
    return header["result"], tensors


def continuation(c):
    """What follows the checkpoint: training across random and gradient mask changes on both nets."""
    out = [c.ok("setDensity", {"net": "discriminator", "target": 0.3, "growth": "global_random"})[0]]
    out.append(train(c, 31, 20))
    out.append(c.ok("dstStep", {"net": "generator", "dropRate": 0.3, "prune": "magnitude", "growth": "hybrid", "alpha": 0.5})[0])
    out.append(c.ok("dstStep", {"net": "discriminator", "dropRate": 0.2, "prune": "set", "growth": "random", "alpha": 0.5})[0])
    out.append(train(c, 51, 10, every=2))
    out.append(c.ok("stats")[0])
    return out


def test_fresh_worker_resumes_bit_for_bit(workers):
    (_, a), (_, b), d = workers["a"], workers["b"], workers["dir"]
    a.ok("build", BUILD)
    a.ok("setMasks", MASKS)
    train(a, 1, 30)
    a.ok("dstStep", {"net": "generator", "dropRate": 0.3, "prune": "global_magnitude", "growth": "global_gradient", "alpha": 0.5})
    saved, _ = a.ok("save", {"path": str(d / "iter-30.pt")})
    assert saved["iter"] == 30 and saved["bytes"] == os.path.getsize(d / "iter-30.pt")
    straight = continuation(a)
    a.ok("save", {"path": str(d / "a-end.pt")})

    b.ok("build", BUILD)
    assert b.ok("load", {"path": str(d / "iter-30.pt")})[0] == {"iter": 30}
    assert b.ok("ping")[0]["iter"] == 30
    resumed = continuation(b)
    b.ok("save", {"path": str(d / "b-end.pt")})

    for x, y in zip(straight, resumed):
        if isinstance(x, tuple):  # a train: its result, then losses and probes to the last bit
            assert x[0] == y[0] and x[1].keys() == y[1].keys()
            assert all(np.array_equal(x[1][k], y[1][k]) for k in x[1])
        else:
            assert x == y
    end_a = torch.load(d / "a-end.pt", weights_only=True)
    end_b = torch.load(d / "b-end.pt", weights_only=True)
    flat_a, flat_b = _flatten(end_a), _flatten(end_b)
    assert flat_a.keys() == flat_b.keys()
    different = [k for k in flat_a if not _same(flat_a[k], flat_b[k])]
    assert different == []  # weights, Adam moments, masks, ITOP, every random stream


def _flatten(x, at=""):
    if isinstance(x, dict):
        return {k2: v for k, v in x.items() for k2, v in _flatten(v, f"{at}/{k}").items()}
    return {at: x}


def _same(x, y):
    return torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y


def test_interrupt_stops_train_after_the_iteration_in_progress(workers):
    _, b = workers["b"]
    rid = b.send("train", {"start": 61, "iterations": 100000, "probeEvery": 3})
    header, _ = b.recv()
    assert header["id"] == rid and header["kind"] == "progress"  # inside the long op
    save_id = b.send("save", {"path": str(workers["dir"] / "busy.pt")})
    stop_id = b.send("interrupt")
    header, tensors, _, others = b.reply(rid)
    replies = {h["id"]: h for h in others}
    assert replies[stop_id]["kind"] == "ok" and replies[stop_id]["result"] == {}
    assert replies[save_id]["error"]["code"] == "busy" and not (workers["dir"] / "busy.pt").exists()
    result = header["result"]
    assert header["kind"] == "ok" and result["interrupted"] is True
    n = result["iterations"]
    assert 1 <= n < 100000 and result["end"] == 60 + n
    assert list(tensors["losses"][:, 0]) == list(range(61, 61 + n))
    assert list(tensors["probes"][:, 0]) == [t for t in range(61, 61 + n) if t % 3 == 0]
    assert b.ok("ping")[0] == {"busy": False, "iter": 60 + n, "dropped": {"unsigned": 0, "replayed": 0}}

    assert b.ok("interrupt")[0] == {}  # idle: no effect, and nothing left over for the next train
    result, tensors = train(b, 61 + n, 4)
    assert result == {"end": 64 + n, "iterations": 4, "interrupted": False} and len(tensors["losses"]) == 4


def test_sigint_is_ignored_even_during_train(workers):
    proc, a = workers["a"]
    proc.send_signal(signal.SIGINT)  # idle
    rid = a.send("train", {"start": 61, "iterations": 100000, "probeEvery": 10})
    assert a.recv()[0]["kind"] == "progress"
    proc.send_signal(signal.SIGINT)  # inside the long op
    first = a.recv()[0]["progress"]["done"]
    while (header := a.recv()[0])["kind"] == "progress" and header["progress"]["done"] <= first + 5:
        pass  # still training well after the signal
    a.send("interrupt")
    header, _, _, _ = a.reply(rid)
    assert header["kind"] == "ok" and header["result"]["interrupted"] is True
    assert proc.poll() is None and a.ok("ping")[0]["iter"] == header["result"]["end"]
