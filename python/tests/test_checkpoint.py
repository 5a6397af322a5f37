"""save / load in-process: a resumed session continues bit for bit; bad files are refused, never run."""

import errno
import os
import pickle

import numpy as np
import pytest
import torch

from ddst_worker import checkpoint
from ddst_worker.errors import WorkerError
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build

MLP = complete_build({"seed": 11, "device": "cpu", "model": {"name": "mlp2d", "hidden": 32, "depth": 2},
       "data": {"name": "ring8"},
       "train": {"batchSize": 16, "genBatchSize": 16, "nCritic": 2, "loss": "hinge", "lrG": 1e-3, "lrD": 1e-3, "betas": [0.5, 0.9],
                 "ema": None}})
# BatchNorm in G, spectral norm in D, the EMA on, data drawn from a device-side generator.
DCGAN = complete_build({"seed": 5, "device": "cpu", "model": {"name": "dcgan28", "width": 4, "latentDim": 8, "spectralNorm": True},
         "data": {"name": "synthetic", "shape": [1, 28, 28]},
         "train": {"batchSize": 4, "genBatchSize": 6, "nCritic": 1, "loss": "ns", "lrG": 2e-4, "lrD": 2e-4,
                   "betas": [0.0, 0.9], "ema": 0.9}})
MASKS = {"generator": {"net.0": 0.5, "net.2": 0.3, "net.4": 0.5}, "discriminator": {"net.2": 0.4}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def built(args):
    s = Session()
    s.op_build(complete_build(args))
    return s


def before(s, masked):
    """Everything up to the checkpoint."""
    if masked:
        s.op_setMasks(MASKS)
    s.handle("train", {"start": 1, "iterations": 5, "probeEvery": 2}, {})
    s.op_dstStep({"net": "generator", "dropRate": 0.3, "prune": "global_magnitude", "growth": "global_gradient", "alpha": 0.5})
    s.op_setDensity({"net": "discriminator", "target": 0.5, "growth": "global_gradient"})


def after(s):
    """Everything after it: training with probes across every kind of mask change, random ones included."""
    out = []
    _, t = s.handle("train", {"start": 6, "iterations": 4, "probeEvery": 3}, {})
    out += [dict(t)["losses"], dict(t)["probes"]]
    out.append(s.op_setDensity({"net": "discriminator", "target": 0.7, "growth": "global_random"}))
    out.append(s.op_dstStep({"net": "generator", "dropRate": 0.4, "prune": "magnitude", "growth": "hybrid", "alpha": 0.5}))
    out.append(s.op_dstStep({"net": "discriminator", "dropRate": 0.2, "prune": "set", "growth": "random", "alpha": 0.5}))
    _, t = s.handle("train", {"start": 10, "iterations": 3, "probeEvery": 1}, {})
    out += [dict(t)["losses"], dict(t)["probes"], s.op_stats({}), dict(s.op_sample({"n": 5, "seed": 1, "batchSize": 100, "batchNorm": "batch"})[1])["samples"]]
    return out


def assert_same(a, b, where="state"):
    """Bitwise equality of nested checkpoint-like data."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("args, masked", [(MLP, True), (DCGAN, False)], ids=["mlp2d-masked", "dcgan-sn-bn-ema"])
def test_resumed_session_continues_bit_for_bit(tmp_path, args, masked):
    straight = built(args)
    before(straight, masked)
    expected = after(straight)
    final = checkpoint.state_of(straight)

    first = built(args)
    before(first, masked)
    path = str(tmp_path / "ck" / "a.pt")  # the folder is made
    saved = first.op_save({"path": path})
    assert saved == {"path": path, "bytes": os.path.getsize(path), "iter": 5}
    assert os.listdir(tmp_path / "ck") == ["a.pt"]  # no .tmp left behind
    del first

    resumed = built(args)  # a fresh build, then the checkpoint
    assert resumed.op_load({"path": path}) == {"iter": 5} and resumed.iter == 5
    assert_same(expected, after(resumed), "after")
    assert_same(final, checkpoint.state_of(resumed))  # weights, moments, masks, ITOP, EMA, every stream


def test_checkpoint_holds_the_whole_state(tmp_path):
    s = built(DCGAN)
    before(s, masked=False)
    path = str(tmp_path / "c.pt")
    s.op_save({"path": path})
    ck = torch.load(path, weights_only=True)
    assert ck["format"] == "ddst-worker-checkpoint" and ck["build"] == DCGAN and ck["dataShape"] == [1, 28, 28]
    assert any(k.endswith("weight_u") for k in ck["nets"]["discriminator"]["model"])  # spectral norm
    assert any(k.endswith("running_var") for k in ck["ema"])                         # BatchNorm, in the EMA too
    g = ck["nets"]["generator"]
    assert all(m.dtype == torch.bool for m in [*g["masks"].values(), *g["ever"].values()])
    assert len(g["optimizer"]["state"]) == len(list(s.gan.G.parameters()))
    assert set(ck["rng"]) == {"torch", "cuda", "noise", "masks", "data"} and "gen" in ck["rng"]["data"]


def test_interrupted_train_then_resumed_matches_straight():
    a, b = built(MLP), built(MLP)
    _, ta = a.handle("train", {"start": 1, "iterations": 8, "probeEvery": 2}, {})
    b.busy = True  # as the server sets it around a long op

    def progress(t, done, total):
        if t == 3:
            b.op_interrupt({})

    r, tb = b.handle("train", {"start": 1, "iterations": 8, "probeEvery": 2}, {}, progress)
    assert r == {"end": 3, "iterations": 3, "interrupted": True} and b.iter == 3
    tb = dict(tb)
    assert tb["losses"].shape == (3, 3) and list(tb["probes"][:, 0]) == [2]
    r, tc = b.handle("train", {"start": 4, "iterations": 5, "probeEvery": 2}, {})  # the interrupt did not leak
    assert r == {"end": 8, "iterations": 5, "interrupted": False}
    assert np.array_equal(dict(ta)["losses"], np.vstack([tb["losses"], dict(tc)["losses"]]))
    b.busy = False
    assert b.op_interrupt({}) == {} and not b.interrupt_requested  # idle: no effect


def test_load_needs_the_same_build_and_leaves_a_mismatch_alone(tmp_path):
    path = str(tmp_path / "c.pt")
    with pytest.raises(WorkerError) as e:
        Session().op_load({"path": path})
    assert e.value.code == "not_built"
    s = built(MLP)
    s.handle("train", {"start": 1, "iterations": 2, "probeEvery": 0}, {})
    s.op_save({"path": path})
    other = built({**MLP, "seed": 12, "train": {**MLP["train"], "lrD": 2e-3}})
    weights = [p.clone() for p in other.gan.D.parameters()]
    with pytest.raises(WorkerError) as e:
        other.op_load({"path": path})
    assert e.value.code == "bad_value" and "train.lrD" in e.value.message and "seed" in e.value.message
    assert [d["key"] for d in e.value.detail["differences"]] == ["seed", "train.lrD"]
    assert other.iter == 0 and all(torch.equal(a, b) for a, b in zip(weights, other.gan.D.parameters()))


class Boom:
    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_bad_files_are_bad_values_and_never_unpickled(tmp_path):
    s = built(MLP)
    good = str(tmp_path / "good.pt")
    s.op_save({"path": good})
    data = open(good, "rb").read()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_bytes(os.urandom(4096))
    torch.save({"weights": torch.zeros(2)}, str(tmp_path / "foreign.pt"))
    boom = Boom()
    boom.target = str(tmp_path / "pwned")
    torch.save({"format": "ddst-worker-checkpoint", "x": boom}, str(tmp_path / "evil.pt"))
    with open(tmp_path / "plain-pickle.pt", "wb") as f:
        pickle.dump(boom, f, protocol=2)
    # In the words Inception weights get (load_fault), not torch's (a miniz error, advice to load unsafely).
    for name, says in [("missing.pt", "does not exist"), ("truncated.pt", "truncated or damaged"),
                       ("garbage.pt", "cannot be read: not a"), ("foreign.pt", "not a ddst worker checkpoint"),
                       ("evil.pt", "refused: loading it could run code"), ("plain-pickle.pt", "refused: loading it could run code")]:
        path = str(tmp_path / name)
        with pytest.raises(WorkerError) as e:
            s.op_load({"path": path})
        assert e.value.code == "bad_value" and path in e.value.message and says in e.value.message, e.value.message
    assert not (tmp_path / "pwned").exists()
    assert s.gan is not None and s.op_load({"path": good}) == {"iter": 0}  # the session still works


def test_a_read_failing_for_the_machine_is_not_called_unreadable(tmp_path, monkeypatch):
    """A permission or I/O fault says nothing of the file: the orchestrator must not set it aside and fall back
    to an older checkpoint (losing iterations) for a fault that passes. A truncated file, which torch reports
    as an OSError too (EINVAL), stays unreadable."""
    s = built(MLP)
    good = str(tmp_path / "good.pt")
    s.op_save({"path": good})
    for fault in (PermissionError(errno.EACCES, "Permission denied"), OSError(errno.EIO, "Input/output error")):
        def failing_load(*args, fault=fault, **kwargs):
            raise fault
        monkeypatch.setattr(torch, "load", failing_load)
        with pytest.raises(WorkerError) as e:
            s.op_load({"path": good})
        assert e.value.code == "bad_value" and e.value.detail["reason"] == "io", e.value.detail
        assert "could not be read here" in e.value.message and fault.strerror in e.value.message
    monkeypatch.undo()
    data = open(good, "rb").read()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WorkerError) as e:
        s.op_load({"path": str(tmp_path / "truncated.pt")})
    assert e.value.detail["reason"] == "unreadable"


def test_save_failure_is_a_bad_value(tmp_path):
    s = built(MLP)
    (tmp_path / "file").write_text("")
    with pytest.raises(WorkerError) as e:
        s.op_save({"path": str(tmp_path / "file" / "c.pt")})  # a file where the folder should be
    assert e.value.code == "bad_value" and "cannot write checkpoint" in e.value.message
    with pytest.raises(WorkerError) as e:
        Session().op_save({"path": str(tmp_path / "c.pt")})
    assert e.value.code == "not_built"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
def test_cuda_checkpoint_restores_exactly_and_keeps_tensors_where_they_were(tmp_path):
    """On CUDA a continuation need not be bitwise (kernels may not be deterministic), but the restored state
    is: every tensor equal and on the device it had, Adam's step counts on the device as adam.py keeps them
    on CUDA (no host value in a step, so a CUDA graph can capture it)."""
    args = {**DCGAN, "device": "cuda"}
    s = built(args)
    before(s, masked=False)
    path = str(tmp_path / "c.pt")
    s.op_save({"path": path})
    r = built(args)
    r.op_load({"path": path})
    assert_same(checkpoint.state_of(s), checkpoint.state_of(r))
    for masks in (r.gan.masks_g, r.gan.masks_d):
        for l in masks.layers:
            state = masks.optimizer.state[l.weight]
            assert l.mask.is_cuda and l.ever_active.is_cuda and state["exp_avg"].is_cuda and state["step"].is_cuda
    _, a = s.handle("train", {"start": 6, "iterations": 3, "probeEvery": 1}, {})
    _, b = r.handle("train", {"start": 6, "iterations": 3, "probeEvery": 1}, {})
    assert np.allclose(dict(a)["losses"], dict(b)["losses"], rtol=1e-4, atol=1e-5)


def test_a_checkpoint_continues_under_other_execution_settings(tmp_path):
    """CUDA graphs, channels-last and compiled networks change how a step runs, not what it computes: a
    checkpoint written with them loads into a build without them, and back. TF32 changes the numbers: it must
    agree."""
    path = str(tmp_path / "c.pt")
    on = {**MLP, "train": {**MLP["train"], "cudaGraphs": True, "channelsLast": True, "compile": True}}
    off = {**MLP, "train": {**MLP["train"], "cudaGraphs": False, "channelsLast": False, "compile": False}}
    built(on).op_save({"path": path})
    assert built(off).op_load({"path": path}) == {"iter": 0}
    built(off).op_save({"path": path})
    assert built(on).op_load({"path": path}) == {"iter": 0}
    with pytest.raises(WorkerError, match="train.tf32"):
        built({**MLP, "train": {**MLP["train"], "tf32": not MLP["train"]["tf32"]}}).op_load({"path": path})


def test_checkpoints_from_before_resolved_args_still_load(tmp_path):
    """Older checkpoints recorded build args without the fields the worker then filled in itself (G's batch,
    the EMA decay, the latent size, the toy std) or did not have (precision, TF32, CUDA graphs); a worker
    built with those meanings explicit loads them."""
    explicit = {**MLP, "train": {**MLP["train"], "ema": 0.999}}
    path = str(tmp_path / "old.pt")
    built(explicit).op_save({"path": path})
    ckpt = torch.load(path, weights_only=True)
    newer = ("genBatchSize", "ema", "precision", "tf32", "cudaGraphs", "channelsLast", "compile")
    ckpt["build"] = {**MLP, "train": {k: v for k, v in MLP["train"].items() if k not in newer},
                     "model": {k: v for k, v in MLP["model"].items() if k != "latentDim"},
                     "data": {k: v for k, v in MLP["data"].items() if k != "std"}}
    torch.save(ckpt, path)
    assert built(explicit).op_load({"path": path}) == {"iter": 0}
    other = built(MLP)  # MLP has ema None: the old file meant 0.999, so this build is another one
    with pytest.raises(WorkerError, match="train.ema"):
        other.op_load({"path": path})


def test_load_fault_says_what_the_file_is(tmp_path):
    from ddst_worker.checkpoint import load_fault

    def fault(name: str, content: bytes | None = None, obj=None) -> str:
        path = tmp_path / name
        if obj is not None:
            torch.save(obj, path)
        else:
            path.write_bytes(content)
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            return load_fault(e, str(path))
        raise AssertionError(f"{name} loaded")

    assert fault("empty.pt", b"") == "an empty file"
    good = tmp_path / "good.pt"
    torch.save({"w": torch.zeros(100)}, good)
    assert fault("cut.pt", good.read_bytes()[:200]).startswith("truncated or damaged")
    assert "refused: loading it could run code" in fault("module.pt", obj=torch.nn.Linear(2, 2))
    assert fault("text.pt", b"hello, not a torch file").startswith("not a PyTorch file of tensors")


def test_a_checkpoint_from_before_a_build_field_existed_reads_with_what_that_worker_did():
    """Build args recorded without a field a later ddst added: filled with the behaviour of the worker that
    wrote them, so the run resumes as it began (and its build matches the config.json it came with)."""
    build = {"model": {"name": "sngan32"}, "data": {"name": "cifar10", "path": "/d", "split": "train"},
             "train": {"batchSize": 64}}
    checkpoint.complete_legacy_build(build)
    assert build["data"]["hflip"] is False  # no flips before data.hflip existed
    assert build["model"]["variant"] == "lottery" and build["train"]["compile"] is False
    for name in ("stl10", "folder"):
        data = {"name": name}
        checkpoint.complete_legacy_build({"data": data})
        assert data == {"name": name, "hflip": False}
    data = {"name": "cifar10", "hflip": True}
    checkpoint.complete_legacy_build({"data": data})
    assert data["hflip"] is True  # what a checkpoint records is kept
    mnist = {"name": "mnist"}
    checkpoint.complete_legacy_build({"data": mnist})
    assert mnist == {"name": "mnist"}
