"""`train.compile` on the CPU: the training loop through compiled networks is the eager loop, and mask changes
never recompile. Two of torch.compile's backends stand in for inductor, which the GPU tests run
(test_cuda_graphs.py): "eager" runs the graphs dynamo captures (the forward hooks of spectral norm and
channels-last, in-place updates of spectral norm's vectors and batch norm's statistics, the guards that
decide recompilation) as they are, so the training must be bitwise the eager one; "aot_eager" adds what
inductor compiles from, autograd's traced backward, which sums some gradients in another order: the same
training within float rounding."""

import os
import shutil

import numpy as np
import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

from conftest import mask_ops, train

from ddst_worker.compiled import compile_networks
from ddst_worker.errors import WorkerError
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Spectral norm on every D layer (its power iteration updates buffers in place inside the compiled graph),
# BatchNorm in G (running statistics, likewise), transposed and strided convolutions.
DCGAN = {"name": "dcgan32", "width": 4, "latentDim": 8, "spectralNorm": True}
# Residual blocks, nearest upsampling and average pools: the paper's networks, narrow.
SNGAN = {"name": "sngan32", "gChannels": 8, "dChannels": 8, "latentDim": 8}


def build(model: dict, compile_train: bool = False, precision: str = "fp32") -> Session:
    s = Session()
    r = s.op_build(complete_build({"seed": 5, "device": "cpu", "model": model,
                                   "data": {"name": "synthetic", "shape": [3, 32, 32]},
                                   "train": {"batchSize": 4, "genBatchSize": 6, "nCritic": 2, "ema": 0.9,
                                             "compile": compile_train, "precision": precision}}))
    s.op_setMasks({net: {l["name"]: 0.5 for l in r["layers"] if l["net"] == net and l["maskable"]}
                   for net in ("generator", "discriminator")})
    return s


def test_the_cpu_ignores_the_setting():
    assert build(DCGAN, compile_train=True).gan.compiled is None


@pytest.mark.parametrize("failing", ["forward", "backward"])
def test_a_failed_compilation_says_to_turn_compile_off(failing):
    """Also when only the backward fails to compile (an inductor kernel of a convolution's gradient, say): it
    is compiled with the forward, where the failure is recognized, not at the first backward()."""
    from torch._dynamo.backends.common import aot_autograd
    from functorch.compile import make_boxed_func

    def compiles(gm, example_inputs):
        return make_boxed_func(gm.forward)

    def no_compiler(gm, example_inputs):
        raise RuntimeError("Failed to find C compiler. Please specify via CC environment variable.")

    s = build(DCGAN)
    backend = aot_autograd(fw_compiler=no_compiler if failing == "forward" else compiles,
                           bw_compiler=no_compiler if failing == "backward" else compiles)
    s.gan.compiled = compile_networks(s.gan.G, s.gan.D, backend=backend)
    net = "generator" if failing == "forward" else "discriminator"  # G's first pass is under no_grad: no backward
    with pytest.raises(WorkerError) as e:
        train(s, 1, 1)
    assert e.value.message.startswith(f"compiling the {net} with torch.compile failed (RuntimeError: Failed to "
                                      "find C compiler. Please specify via CC environment variable.); train "
                                      "without it: set train.compile to false")
    assert e.value.detail == {"reason": "compile", "net": f"the {net}", "error": "RuntimeError"}


def same(a, b, exact: bool, what: str, atol: float = 1e-6, loose: float = 1.0) -> None:
    if exact:
        assert np.array_equal(np.asarray(a), np.asarray(b)), what
    else:
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4 * loose, atol=atol * loose, err_msg=what)


# bf16: spectral norm stays fp32 (precision.Fp32SpectralNorm) on the compiled path too.
@pytest.mark.parametrize("backend,model,precision", [("eager", SNGAN, "fp32"), ("eager", DCGAN, "bf16"),
                                                     ("aot_eager", DCGAN, "fp32")])
def test_compiled_networks_train_as_the_modules_and_mask_changes_never_recompile(backend, model, precision):
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):  # not silently eager past the limit
        compiled_training(backend, model, precision)


@pytest.mark.skipif(os.environ.get("DDST_SLOW_TESTS") != "1" or shutil.which("g++") is None,
                    reason="slow (about 70 s of C++ compilation on 2 cores): set DDST_SLOW_TESTS=1; needs g++")
def test_inductor_on_the_cpu_compiles_the_paper_networks_and_mask_changes_never_recompile():
    """Inductor itself, as on the GPU but generating C++ instead of Triton: every graph of the loop lowers, the
    training follows the eager one (its fused kernels sum in their own order, and Adam turns that into steps
    of a few 1e-4: ten times the tolerance of aot_eager) and no mask change recompiles."""
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        compiled_training("inductor", SNGAN, "fp32")


def compiled_training(backend, model, precision):
    exact = backend == "eager"
    loose = 10.0 if backend == "inductor" else 1.0
    eager, compiled = build(model, precision=precision), build(model, precision=precision)
    counter = CompileCounterWithBackend(backend)
    compiled.gan.compiled = compile_networks(compiled.gan.G, compiled.gan.D, backend=counter)
    a, b = train(eager, 1, 3), train(compiled, 1, 3)  # every variant: D and G steps, probes
    graphs = counter.frame_count
    assert graphs >= 5, graphs  # G: no_grad and with gradients, D: trainable, frozen, probe
    for key in ("losses", "probes"):
        same(a[key], b[key], exact, key, loose=loose)
    for start in (4, 8):
        ops = mask_ops(eager), mask_ops(compiled)  # growth gradients go through the compiled nets too
        assert [o["active"] for o in ops[0]] == [o["active"] for o in ops[1]]
        a, b = train(eager, start, 4), train(compiled, start, 4)
        for key in ("losses", "probes"):
            same(a[key], b[key], exact, key, loose=loose)
    assert counter.frame_count == graphs, "a mask change recompiled"
    states = [{f"{net}.{k}": v for net, m in (("G", s.gan.G), ("D", s.gan.D), ("ema", s.gan.ema.model))
               for k, v in m.state_dict().items()} for s in (eager, compiled)]
    assert states[0].keys() == states[1].keys()
    # A bias in front of a batch norm has no true gradient, only rounding noise, which Adam turns into steps of
    # its full size (lr = 2e-4) either way: in float-level comparisons such weights differ by a few steps.
    for k in states[0]:  # weights, spectral norm's u and v, batch norm's running statistics, the EMA
        same(states[0][k].float(), states[1][k].float(), exact, k, atol=2e-3, loose=loose)
    for net in ("generator", "discriminator"):
        for la, lb in zip(eager.gan.nets()[net].masks.layers, compiled.gan.nets()[net].masks.layers):
            assert torch.equal(la.mask, lb.mask), (net, la.name)
    # Spectral norm's hooks stand aside only inside the compiled calls: called directly (an evaluation,
    # `ddst inspect`), D still runs its power iteration at every layer.
    x = eager.gan.data.sample(4)
    u = next(b for name, b in compiled.gan.D.named_buffers() if name.endswith("weight_u"))
    before = u.clone()
    with eager.gan.autocast():
        same(eager.gan.D(x).detach().float(), compiled.gan.D(x).detach().float(), exact, "D called directly", loose=loose)
    assert not torch.equal(before, u)
