"""`train.compile`: the training passes of G and D through torch.compile (TorchInductor) on CUDA.

With the steps replayed as CUDA graphs, launches no longer cost anything and what remains is the kernels
themselves; most of them are not convolutions but memory-bound passes over the activations: each
convolution's bias add and, in the backward, its bias-gradient reduction, the ReLUs, batch norms, pools,
upsamplings and residual sums. Inductor fuses chains of those into single kernels that read and write each
activation once; the convolutions stay cuDNN's. What is computed is the same (the same forward passes, the
same power iterations and batch statistics, the same in-place updates of batch norm's running statistics);
fused kernels sum in another order, so the numbers differ at float level, as between two GPUs.

Spectral norm is split in two. Its power iteration (the in-place update of u and v, outside autograd) is
compiled on its own and runs just before the network's graph, for every layer at once; W / sigma is computed
inside the graph from copies of the updated vectors, as the layer's hook computes it. The same numbers as the
hooks at their turns in the forward (no layer's normalization depends on another's or on the activations).
Why not the hooks inside the graph: compiled, the update of u is written straight into the buffer, and
autograd's saved copy of u (what the hook's `u.clone()` is for) became the buffer itself, which D's second
forward (the fakes, after the real batch) overwrote before the backward: "modified by an inplace operation"
(seen on the CPU with inductor, torch 2.13).

What is compiled and when:
  - only the passes of the training loop go through the compiled networks (`Gan.gen`, `Gan.dis`: the D and G
    steps, the BR probe, growth gradients); evaluation, sampling and the EMA use the modules themselves, so
    an evaluation's batch sizes and eval mode never trigger a compilation;
  - each network is compiled for the shapes and modes the loop calls it with (G: D's fake batch under
    no_grad, G's batch with gradients, the probe's; D: with its weights trainable or frozen, under no_grad
    for the probe; D's power iterations with and without gradient mode): about ten graphs, compiled at
    first use, i.e. within the first iteration (CUDA graphs capture only after two eager warm-up steps, so
    compilation never happens inside a capture);
  - masks, densities and checkpoint loads change weights in place, never shapes or modes: no recompilation
    after the first iteration (python/tests/test_compiled.py counts them through mask changes).
The CPU ignores the setting, like the other CUDA ones: its runs stay bitwise reproducible and skip minutes of
compilation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

from .errors import execution_failed
from .models import spectral_norm_hooks

# Dynamo keeps its compiled variants per code object, by default at most 8; past the cap a call silently runs
# eagerly. A network's forward has about four variants in the loop, and every instance of a class (a rebuilt
# session's networks, the power iteration of G and of D) adds its own to the same code object: leave room.
RECOMPILE_LIMIT = 64


class _Ahead:
    """A spectral norm hook split around a compiled forward: its power iteration runs before (`power_iteration`,
    compiled on its own, outside autograd), W / sigma inside, from the vectors the iteration left (`uv`, set
    by the caller for the compiled call). With `uv` unset the hook is the hook as it was."""
    uv: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, module: nn.Module, inputs) -> None:
        if self.uv is None:
            return super().__call__(module, inputs)
        u, v = self.uv
        weight = getattr(module, self.name + "_orig")
        # Outside autocast, as precision.Fp32SpectralNorm computes it under bf16 (nothing changes in fp32).
        with torch.autocast(weight.device.type, enabled=False):
            setattr(module, self.name, weight / torch.dot(u, torch.mv(self.reshape_weight_to_matrix(weight), v)))


def power_iteration(norms: list[tuple[nn.Module, SpectralNorm]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's power iteration as its hook runs it in training mode (SpectralNorm.compute_weight): u and v
    updated in place -> copies of them for W / sigma (autograd saves those; the buffers change again at D's next
    forward, before this one's backward)."""
    out = []
    with torch.no_grad():
        for layer, hook in norms:
            mat = hook.reshape_weight_to_matrix(getattr(layer, hook.name + "_orig"))
            u, v = getattr(layer, hook.name + "_u"), getattr(layer, hook.name + "_v")
            for _ in range(hook.n_power_iterations):
                v.copy_(F.normalize(torch.mv(mat.t(), u), dim=0, eps=hook.eps))
                u.copy_(F.normalize(torch.mv(mat, v), dim=0, eps=hook.eps))
            if hook.n_power_iterations > 0:
                u, v = u.clone(memory_format=torch.contiguous_format), v.clone(memory_format=torch.contiguous_format)
            out.append((u, v))
    return out


_AHEAD_CLASSES: dict[type, type] = {}


def _split_spectral_norms(model: nn.Module) -> list[tuple[nn.Module, SpectralNorm]]:
    """Turn `model`'s spectral norm hooks into _Ahead ones (a class swap, as precision.fp32_spectral_norm does:
    the hook keeps its state, its class and bf16's fp32 variant) -> [(layer, hook)] in forward order."""
    norms = list(spectral_norm_hooks(model))
    for _, hook in norms:
        cls = type(hook)
        if not issubclass(cls, _Ahead):
            hook.__class__ = _AHEAD_CLASSES.setdefault(cls, type("Ahead" + cls.__name__, (_Ahead, cls), {}))
    return norms


class CompiledNet:
    """A network through torch.compile, spectral norm's power iterations compiled apart and run just before.
    A failure to compile (a backend error, no C compiler for Triton's launchers) says which setting to turn
    off, in `detail.reason` ("compile"), which `ddst run` recognizes to go on without it."""

    def __init__(self, name: str, model: nn.Module, backend):
        self.name = name
        self.norms = _split_spectral_norms(model)
        # dynamic=False: one graph per batch size (two or three of them) compiles kernels for exact shapes, and
        # a second size never turns a network's graph into a slower shape-generic one.
        self.fn = torch.compile(model, backend=backend, dynamic=False)
        self.power_iteration = torch.compile(power_iteration, backend=backend, dynamic=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        try:
            self._spectral_vectors(x.device.type)
            return self.fn(x)
        except torch._dynamo.exc.TorchRuntimeError:  # the model's own error, met while tracing: eager has it too
            raise
        except torch._dynamo.exc.TorchDynamoException as e:
            cause = getattr(e, "inner_exception", None) or e  # a backend's own error, under dynamo's wrapper
            said = (str(cause).strip().splitlines() or [""])[0]
            raise execution_failed(f"compiling {self.name} with torch.compile failed ({type(cause).__name__}: {said})",
                                   "compile", "it", "compile", net=self.name, error=type(cause).__name__) from e
        finally:
            for _, hook in self.norms:
                hook.uv = None

    def _spectral_vectors(self, device: str) -> None:
        """Hand each spectral norm hook the vectors of this forward: after a power iteration where its layer
        is in training mode (the hook's own rule), else its buffers as they are."""
        iterate = [(layer, hook) for layer, hook in self.norms if layer.training]
        if iterate:
            with torch.autocast(device, enabled=False):  # fp32 under bf16, as Fp32SpectralNorm
                fresh = iter(self.power_iteration(iterate))
        for layer, hook in self.norms:
            hook.uv = next(fresh) if layer.training else (getattr(layer, hook.name + "_u"), getattr(layer, hook.name + "_v"))


def compile_networks(G: nn.Module, D: nn.Module, backend="inductor") -> tuple[CompiledNet, CompiledNet]:
    """-> (G, D) compiled: callables that share the modules' parameters, buffers and hooks. `backend` other
    than inductor serves the CPU tests (aot_eager traces exactly what inductor would, without generating code)."""
    import torch._dynamo  # here, not at the top: importing dynamo costs every worker's start ~2 s

    config = torch._dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # renamed in torch 2.6
    setattr(config, limit, max(getattr(config, limit), RECOMPILE_LIMIT))
    # A training graph's backward is compiled with its forward, not at the first backward() (outside these
    # calls, where a failure could not be told from any other): a compiler that fails, fails here.
    # (torch 2.11 and 2.13 have the switch; an older torch compiles lazily, and its failure there ends the run.)
    functorch = torch._functorch.config
    if hasattr(functorch, "force_non_lazy_backward_lowering"):
        functorch.force_non_lazy_backward_lowering = True
    return CompiledNet("the generator", G, backend), CompiledNet("the discriminator", D, backend)
