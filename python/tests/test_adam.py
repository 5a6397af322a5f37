"""Our Adam against torch.optim.Adam: bit for bit on the CPU, the device (capturable) formula to float
rounding, state dicts that either optimizer loads, refusals that change nothing, and a worker that trains
without importing TorchDynamo (the reason adam.py exists)."""

import copy
import json
import re
import subprocess
import sys

import pytest
import torch

from conftest import worker_env
from ddst_worker.adam import Adam


def params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g).requires_grad_() for shape in [(7, 5), (5,), (3, 4, 3, 3), (1,)]]


def set_grads(ps, step, skip=None):
    """Fresh gradients (including some exact zeros and a large one), drawn on the CPU and placed beside their
    parameter (a CUDA parameter refuses a CPU gradient); the parameter at `skip` gets none."""
    g = torch.Generator().manual_seed(1000 + step)
    for i, p in enumerate(ps):
        p.grad = None if i == skip else (torch.randn(p.shape, generator=g) * (10.0 if i == 2 else 1.0)).to(p.device)
        if p.grad is not None:
            p.grad.view(-1)[0] = 0.0


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x.detach(), y.detach()) for x, y in zip(a, b, strict=True))


def states(opt, ps):
    return [opt.state[p][k] for p in ps if p in opt.state for k in ("exp_avg", "exp_avg_sq", "step")]


@pytest.mark.parametrize("betas", [(0.0, 0.9), (0.5, 0.999)])
def test_cpu_steps_are_torchs_bit_for_bit(betas):
    ours, theirs = params(), params()
    a = Adam(ours, lr=2e-4, betas=betas)
    b = torch.optim.Adam(theirs, lr=2e-4, betas=betas)
    for step in range(25):
        skip = 1 if step < 3 else (3 if step % 4 == 0 else None)  # late first gradient; a missing one now and then
        set_grads(ours, step, skip)
        set_grads(theirs, step, skip)
        a.step()
        b.step()
        assert same(ours, theirs), step
        assert same(states(a, ours), states(b, theirs)), step


def test_device_formula_is_torchs_capturable_path_bit_for_bit(monkeypatch):
    """The formula CUDA runs, against torch's own capturable path, both on CPU tensors: torch refuses a
    capturable Adam on the CPU, so its list of capturable devices is widened for the test."""
    import torch.optim.adam as torch_adam
    monkeypatch.setattr(torch_adam, "_get_capturable_supported_devices", lambda supports_xla=True: ["cpu"])
    ours, theirs = params(), params()
    a = Adam(ours, lr=1e-3, betas=(0.5, 0.9))
    b = torch.optim.Adam(theirs, lr=1e-3, betas=(0.5, 0.9), capturable=True, foreach=True)
    for step in range(12):
        skip = 2 if step % 5 == 0 else None
        set_grads(ours, step, skip)
        set_grads(theirs, step, skip)
        live = [p for p in ours if p.grad is not None]
        for p in live:
            a.state.setdefault(p, a._fresh_state(p))
        with torch.no_grad():
            a._step_on_device(live)
        b.step()
        assert same(ours, theirs), step
        assert same(states(a, ours), states(b, theirs)), step


def test_device_formula_matches_the_host_one():
    """The capturable multi-tensor formula (what CUDA runs), computed on CPU tensors, against the host path."""
    host, dev = params(), params()
    a, b = Adam(host, lr=1e-3, betas=(0.5, 0.9)), Adam(dev, lr=1e-3, betas=(0.5, 0.9))
    for step in range(10):
        set_grads(host, step)
        set_grads(dev, step)
        a.step()
        for p in dev:
            b.state.setdefault(p, b._fresh_state(p))
        with torch.no_grad():
            b._step_on_device(dev)
        for x, y in zip(host, dev):
            torch.testing.assert_close(y.detach(), x.detach(), rtol=1e-6, atol=1e-7)


def test_state_dicts_load_both_ways():
    ours, theirs = params(), params()
    a, b = Adam(ours, lr=1e-3, betas=(0.0, 0.9)), torch.optim.Adam(theirs, lr=1e-3, betas=(0.0, 0.9))
    for step in range(3):
        set_grads(ours, step)
        a.step()
    # ours -> torch (through a serialized copy, as a checkpoint goes), then both continue alike
    with torch.no_grad():
        for p, q in zip(theirs, ours):
            p.copy_(q)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for step in range(3, 6):
        set_grads(ours, step)
        set_grads(theirs, step)
        a.step()
        b.step()
    assert same(ours, theirs) and same(states(a, ours), states(b, theirs))
    # torch -> ours: a fresh Adam continues as torch does
    fresh = params()
    with torch.no_grad():
        for p, q in zip(fresh, theirs):
            p.copy_(q)
    c = Adam(fresh, lr=1e-3, betas=(0.0, 0.9))
    c.load_state_dict(copy.deepcopy(b.state_dict()))
    assert all(c.state[p]["step"].device.type == "cpu" for p in fresh)
    set_grads(fresh, 6)
    set_grads(theirs, 6)
    c.step()
    b.step()
    assert same(fresh, theirs)


@pytest.mark.parametrize("damage, message", [
    (lambda sd: sd["state"][0].update(exp_avg=torch.zeros(3)), "exp_avg of parameter 0 has shape (3,)"),
    (lambda sd: sd["param_groups"][0].update(params=[0, 1]), "covers 2 parameters; this network has 4"),
    (lambda sd: sd["param_groups"][0].update(weight_decay=0.01), "weight_decay=0.01, which this worker does not run"),
    (lambda sd: sd["state"].update({9: sd["state"][0]}), "names parameter 9"),
    (lambda sd: sd["state"][1].pop("exp_avg_sq"), "not step, exp_avg and exp_avg_sq"),
    (lambda sd: sd["param_groups"][0].update(params=[1, 0, 2, 3]), "numbers its parameters [1, 0, 2, 3], not 0..3"),
    (lambda sd: sd["param_groups"][0].update(maximize=True), "maximize=True"),
    (lambda sd: sd["state"][0].update(step=None), "step of parameter 0 is None"),
    (lambda sd: sd["state"][0].update(step=torch.tensor([1.0, 1.0])), "step of parameter 0 is tensor"),
    (lambda sd: sd["state"][0].update(step=torch.tensor(1.5)), "not a whole number"),
    (lambda sd: sd["state"][2].update(exp_avg=[0.0]), "exp_avg of parameter 2 is list, not a float tensor"),
    (lambda sd: sd["state"][2].update(exp_avg_sq=torch.zeros(3, 4, 3, 3, dtype=torch.int64)), "is torch.int64"),
])
def test_a_bad_state_is_refused_and_changes_nothing(damage, message):
    ps = params()
    a = Adam(ps, lr=1e-3, betas=(0.0, 0.9))
    set_grads(ps, 0)
    a.step()
    held = states(a, ps)
    before = [t.clone() for t in held]
    saved = copy.deepcopy(a.state_dict())
    damage(saved)
    with pytest.raises(ValueError, match=re.escape(message)):
        a.load_state_dict(saved)
    # the same tensors (a captured CUDA graph holds their addresses), with the same values
    assert all(x is y for x, y in zip(states(a, ps), held, strict=True)) and same(held, before)


def test_an_empty_state_is_a_parameter_not_stepped_yet():
    ps = params()
    a = Adam(ps, lr=1e-3, betas=(0.0, 0.9))
    set_grads(ps, 0)
    a.step()
    saved = copy.deepcopy(a.state_dict())
    saved["state"][3] = {}
    fresh = Adam(params(), lr=1e-3, betas=(0.0, 0.9))
    fresh.load_state_dict(saved)
    assert len(fresh.state) == 3 and fresh.params[3] not in fresh.state


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="betas in"):
        Adam(params(), lr=1e-3, betas=(1.0, 0.9))


def test_a_worker_trains_without_importing_dynamo(schemas):
    """Building and training (masked, with EMA and a checkpoint) never imports torch._dynamo: ~2 s of every
    worker's start on a small machine."""
    code = """
import json, sys, tempfile, os
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build
s = Session()
r = s.op_build(complete_build({"seed": 1, "device": "cpu", "model": {"name": "mlp2d", "hidden": 32, "depth": 2, "latentDim": 2},
    "data": {"name": "ring8"}, "train": {"batchSize": 16, "genBatchSize": 16, "nCritic": 2, "ema": 0.99,
    "loss": "hinge", "lrG": 1e-3, "lrD": 1e-3, "betas": [0.5, 0.9]}}))
s.op_setMasks({"generator": {l["name"]: 0.5 for l in r["layers"] if l["net"] == "generator" and l["maskable"]}})
s.handle("train", {"start": 1, "iterations": 3, "probeEvery": 2}, {})
s.op_save({"path": os.path.join(tempfile.mkdtemp(), "c.pt")})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("torch._dynamo"))))
"""
    out = subprocess.run([sys.executable, "-c", code], env={**worker_env(), "DDST_SCHEMAS": str(schemas)}, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
def test_cuda_steps_are_torchs_capturable_path():
    """On the GPU, against torch.optim.Adam(capturable=True) of the torch installed there (to float rounding:
    torch may fuse its foreach kernels differently from one version to the next)."""
    ours = [p.detach().cuda().requires_grad_() for p in params()]
    theirs = [p.detach().cuda().requires_grad_() for p in params()]
    a = Adam(ours, lr=1e-3, betas=(0.0, 0.9))
    b = torch.optim.Adam(theirs, lr=1e-3, betas=(0.0, 0.9), capturable=True)
    for step in range(10):
        set_grads(ours, step)
        set_grads(theirs, step)
        a.step()
        b.step()
    assert all(a.state[p]["step"].is_cuda for p in ours)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-6, atol=1e-7)
