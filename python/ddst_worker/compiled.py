"""`train.compile`: the training passes of G and D through torch.compile (TorchInductor) on CUDA.

With the steps replayed as CUDA graphs, launches no longer cost anything and what remains is the kernels
themselves; most of them are not convolutions but memory-bound passes over the activations: each
convolution's bias add and, in the backward, its bias-gradient reduction, the ReLUs, batch norms, pools,
upsamplings and residual sums. Inductor fuses chains of those into single kernels that read and write each
activation once; the convolutions stay cuDNN's. What is computed is the same (the same forward passes, the
same power iterations and batch statistics, the same in-place updates of batch norm's running statistics);
fused kernels sum in another order, so the numbers differ at float level, as between two GPUs.

Spectral norm runs outside the compiled graph, just before it: each layer's power iteration and W / sigma,
eagerly, as the layer's own hook would at its turn in the forward (the layers' normalizations do not depend
on each other or on the activations, so the order changes no number); inside, the hooks stand aside and the
layers use the weights set. Why: compiled, the power iteration's in-place update of u and v is written
straight into the buffers, and autograd's saved copy of u (what the hook's `u.clone()` is for) becomes the
buffer itself, which D's second forward (the fakes, after the real batch) overwrites before the backward:
"modified by an inplace operation" (seen on the CPU with inductor, torch 2.13).

What is compiled and when:
  - only the passes of the training loop go through the compiled networks (`Gan.gen`, `Gan.dis`: the D and G
    steps, the BR probe, growth gradients); evaluation, sampling and the EMA use the modules themselves, so
    an evaluation's batch sizes and eval mode never trigger a compilation;
  - each network is compiled for the shapes and modes the loop calls it with (G: D's fake batch under
    no_grad, G's batch with gradients, the probe's; D: with its weights trainable or frozen, under no_grad
    for the probe): about seven graphs, compiled at first use, i.e. within the first iteration (CUDA graphs
    capture only after two eager warm-up steps, so compilation never happens inside a capture);
  - masks, densities and checkpoint loads change weights in place, never shapes or modes: no recompilation
    after the first iteration (python/tests/test_compiled.py counts them through mask changes).
The CPU ignores the setting, like the other CUDA ones: its runs stay bitwise reproducible and skip minutes of
compilation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

from .errors import WorkerError

# Dynamo keeps its compiled variants per code object, and every module's call goes through the same one
# (nn.Module's), so G's and D's variants share one list, by default capped at 8; past the cap a call silently
# runs eagerly. The loop needs about seven; leave room for the modes of other models.
RECOMPILE_LIMIT = 64


class _Ahead:
    """A spectral norm hook whose work the compiled network's caller does before the compiled forward; while
    `ahead` is set the hook leaves the layer's weight as that call set it."""
    ahead = False

    def __call__(self, module: nn.Module, inputs) -> None:
        if not self.ahead:
            super().__call__(module, inputs)


_AHEAD_CLASSES: dict[type, type] = {}


def _normalize_ahead(model: nn.Module) -> list[tuple[nn.Module, SpectralNorm]]:
    """Turn `model`'s spectral norm hooks into _Ahead ones (a class swap, as precision.fp32_spectral_norm does:
    the hook keeps its state, its class and bf16's fp32 variant) -> [(layer, hook)] in forward order."""
    norms = []
    for m in model.modules():
        for hook in m._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm):
                cls = type(hook)
                if not issubclass(cls, _Ahead):
                    hook.__class__ = _AHEAD_CLASSES.setdefault(cls, type("Ahead" + cls.__name__, (_Ahead, cls), {}))
                norms.append((m, hook))
    return norms


class CompiledNet:
    """A network through torch.compile, spectral norm computed eagerly just before. A failure to compile (a
    backend error, no C compiler for Triton's launchers) says which setting to turn off, in `detail.reason`
    ("compile"), which `ddst run` recognizes to go on without it."""

    def __init__(self, name: str, model: nn.Module, backend):
        self.name = name
        self.norms = _normalize_ahead(model)
        # dynamic=False: one graph per batch size (two or three of them) compiles kernels for exact shapes, and
        # a second size never turns a network's graph into a slower shape-generic one.
        self.fn = torch.compile(model, backend=backend, dynamic=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for layer, hook in self.norms:
            hook(layer, (x,))
            hook.ahead = True
        try:
            return self.fn(x)
        except torch._dynamo.exc.TorchDynamoException as e:
            cause = getattr(e, "inner_exception", None) or e  # a backend's own error, under dynamo's wrapper
            said = (str(cause).strip().splitlines() or [""])[0]
            raise WorkerError("internal", f"compiling {self.name} with torch.compile failed ({type(cause).__name__}: {said}); "
                              "train without it: set train.compile to false (a run may change it on --resume; a "
                              "table's cells take it from the table's experiment)",
                              {"reason": "compile", "net": self.name, "error": type(cause).__name__}) from e
        finally:
            for _, hook in self.norms:
                hook.ahead = False


def compile_networks(G: nn.Module, D: nn.Module, backend="inductor") -> tuple[CompiledNet, CompiledNet]:
    """-> (G, D) compiled: callables that share the modules' parameters, buffers and hooks. `backend` other
    than inductor serves the CPU tests (aot_eager traces exactly what inductor would, without generating code)."""
    import torch._dynamo  # here, not at the top: importing dynamo costs every worker's start ~2 s

    config = torch._dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # renamed in torch 2.6
    setattr(config, limit, max(getattr(config, limit), RECOMPILE_LIMIT))
    return CompiledNet("the generator", G, backend), CompiledNet("the discriminator", D, backend)
