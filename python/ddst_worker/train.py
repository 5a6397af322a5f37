"""One GAN iteration, plainly: n_critic D steps, then one G step, with an optional BR probe.

Masks are enforced by zeroing gradients outside the mask before every optimizer step; with Adam's
moments there at 0 the step then moves nothing there, so the weights stay exactly 0 without being
re-masked (MaskSet.mask_grads says why). Layers with full masks are skipped, so a network nobody masked
does no mask work at all. D steps use `batch_size` samples, the G step `gen_batch_size` (the paper: 64
and 128). After each G step the generator's EMA, if any, is updated.

Each step is split into drawing its inputs (the real batch, z) and its body (`d_update`, `g_update`: from the
inputs to the optimizer step). The body runs eagerly, or as a CUDA graph replay when `train.cudaGraphs` is on
(step_graphs.py); the inputs are drawn eagerly either way, in the same order, so both paths see the same
batches. Under `train.precision: "bf16"` the forward passes run in autocast (precision.py); the losses are
taken in fp32.
"""

import contextlib
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .adam import Adam
from .ema import Ema
from .losses import LOSSES
from .masking import MaskSet
from .models import spectral_norm_hooks
from .step_graphs import StepGraphs


@dataclass
class Net:
    """One network and what trains it, under its protocol name: the handle checkpoints, mask ops and growth
    gradients take instead of asking which network they were given."""
    name: str                   # "generator" | "discriminator"
    model: nn.Module
    optimizer: Adam
    masks: MaskSet


@dataclass
class Gan:
    G: nn.Module
    D: nn.Module
    opt_g: Adam
    opt_d: Adam
    masks_g: MaskSet
    masks_d: MaskSet
    data: object                # .sample(n) -> real batch on device
    noise: torch.Generator      # on `device`: every z comes from here
    latent_dim: int
    batch_size: int             # D's batch: real and fake
    gen_batch_size: int         # G's batch: its step, its probe z and its growth gradient
    n_critic: int
    loss: str
    device: str
    ema: Ema | None = None      # the generator's moving average, None when off
    precision: str = "fp32"     # "bf16": forward passes under autocast
    graphs: StepGraphs | None = None  # the steps as CUDA graphs (train.cudaGraphs); None: eager
    compiled: tuple | None = None  # (G, D) through torch.compile (train.compile, compiled.py); None: the modules

    def autocast(self):
        if self.precision == "bf16":  # a graph must not capture autocast's weight cache
            return torch.autocast(self.device, dtype=torch.bfloat16, cache_enabled=self.graphs is None)
        return contextlib.nullcontext()

    def nets(self) -> dict[str, Net]:
        return {"generator": Net("generator", self.G, self.opt_g, self.masks_g),
                "discriminator": Net("discriminator", self.D, self.opt_d, self.masks_d)}

    def gen(self, z: torch.Tensor) -> torch.Tensor:
        """G as the training loop runs it: compiled under train.compile (compiled.py), else the module."""
        return (self.G if self.compiled is None else self.compiled[0])(z)

    def dis(self, x: torch.Tensor) -> torch.Tensor:
        """D as the training loop runs it; see gen."""
        return (self.D if self.compiled is None else self.compiled[1])(x)

    def z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=self.noise, device=self.device)


@contextlib.contextmanager
def frozen(model: nn.Module):
    """`model`'s parameters take no gradient inside: G's step and G's growth gradient go through D."""
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in model.parameters():
            p.requires_grad_(True)


def d_loss_on(gan: Gan, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """D's loss on the real batch x and G(z), G under no_grad: what the D step and D's growth gradient
    differentiate."""
    with gan.autocast():
        with torch.no_grad():
            fake = gan.gen(z)
        return LOSSES[gan.loss][0](gan.dis(x).float(), gan.dis(fake).float())


def g_logits_on(gan: Gan, z: torch.Tensor) -> torch.Tensor:
    """D(G(z)) in fp32, the forward under autocast when bf16: what G's loss is taken on."""
    with gan.autocast():
        return gan.dis(gan.gen(z)).float()


def d_update(gan: Gan, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor]:
    """The D step's body: one D update on the real batch x and G(z) -> (loss,)."""
    loss = d_loss_on(gan, x, z)
    gan.opt_d.zero_grad()
    loss.backward()
    gan.masks_d.mask_grads()
    gan.opt_d.step()
    return (loss.detach(),)


def g_update(gan: Gan, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The G step's body: one G update through a frozen D (D's weights get no gradient), then the EMA
    update. -> (loss, mean D(G(z))): the mean logit of the very forward whose loss G minimizes, taken before
    G's step; it is the BR probe's fakePre, so a probe costs no extra pass and changes nothing here."""
    with frozen(gan.D):
        logits = g_logits_on(gan, z)
        loss = LOSSES[gan.loss][1](logits)
        gan.opt_g.zero_grad()
        loss.backward()
    gan.masks_g.mask_grads()
    gan.opt_g.step()
    if gan.ema is not None:
        gan.ema.update()
    return loss.detach(), logits.detach().mean()


def d_step(gan: Gan):
    """One D update on a fresh real batch and a fresh fake batch; returns (loss, real batch)."""
    x = gan.data.sample(gan.batch_size)
    z = gan.z(gan.batch_size)
    (loss,) = gan.graphs.d(x, z) if gan.graphs is not None else d_update(gan, x, z)
    return loss, x


def g_step(gan: Gan, z: torch.Tensor):
    """One G update on z -> (loss, mean D(G(z)) before the update); see g_update."""
    return gan.graphs.g(z) if gan.graphs is not None else g_update(gan, z)


def use_graphs(gan: Gan) -> None:
    """Replay the steps as CUDA graphs from now on, re-captured whenever either network's masks change.
    The graphs reach `gan` through a weak reference: a cycle gan -> graphs -> gan would keep a replaced
    session's networks, optimizer state and graph memory on the GPU until Python's cycle collector ran."""
    ref = weakref.ref(gan)
    gan.graphs = StepGraphs(lambda x, z: d_update(ref(), x, z), lambda z: g_update(ref(), z),
                            key=lambda: (ref().masks_g.version, ref().masks_d.version),
                            before_capture=lambda: forget_cached_weights(ref().G, ref().D))


def forget_cached_weights(*models: nn.Module) -> None:
    """Classic spectral norm leaves each forward's normalized weight on its module, and with it that forward's
    autograd graph down to the AccumulateGrad node of `weight_orig`; autograd keeps reusing that node, with
    the CUDA stream it was made on, as long as the chain lasts. A CUDA graph capture that meets a node made by
    an eager pass on the default stream (growth gradients) fails, and one made on a warm-up's side stream
    forks the capture into that stream. The cached weight is recomputed by every forward, so dropping its
    history changes no number."""
    for m, hook in spectral_norm_hooks(*models):
        setattr(m, hook.name, getattr(m, hook.name).detach())


def iteration(gan: Gan, probe: bool):
    """-> (lossD of the last D step, lossG, probe or None). The probe is
    (mean D(G_pre(z)), mean D(G_post(z)), mean D(x)) with the D after its updates, the same z before
    and after G's step, and x the last real batch D saw. fakePre comes from G's own step (g_step);
    fakePost and real are two extra forwards after it, under no_grad and in training mode. One z is
    drawn per iteration whether or not we probe, and the probe draws nothing, so probing never shifts
    the random streams (docs/method.md says what the extra forwards do change)."""
    for _ in range(gan.n_critic):
        loss_d, x = d_step(gan)
    z = gan.z(gan.gen_batch_size)
    loss_g, fake_pre = g_step(gan, z)
    if not probe:
        return loss_d, loss_g, None
    with torch.no_grad(), gan.autocast():  # raw logits, the nets left in training mode as the steps run them
        fake_post = gan.dis(gan.gen(z)).float().mean()
        real = gan.dis(x).float().mean()
    return loss_d, loss_g, torch.stack([fake_pre, fake_post, real])


def train(gan: Gan, start: int, iterations: int, probe_every: int, progress=None):
    """Run iterations start..start+iterations-1. Returns float64 arrays
    losses [K, 3] = (iter, lossD, lossG) and probes [P, 4] = (iter, fakePre, fakePost, real).
    Values stay on the device until the end (no per-iteration sync); `progress(iter, done, total)`
    is called after every iteration and may serve the socket. When it returns True (an `interrupt`
    arrived) training stops there, and the arrays cover only the iterations completed."""
    loss_rows, probe_rows, probe_iters = [], [], []
    for done in range(1, iterations + 1):
        t = start + done - 1
        probe = probe_every > 0 and t % probe_every == 0
        loss_d, loss_g, p = iteration(gan, probe)
        loss_rows.append(torch.stack([loss_d, loss_g]))
        if p is not None:
            probe_rows.append(p)
            probe_iters.append(t)
        if progress is not None and progress(t, done, iterations):
            break
    iters = np.arange(start, start + len(loss_rows), dtype=np.float64)[:, None]
    losses = np.hstack([iters, _to_numpy(loss_rows, 2)])
    probes = np.hstack([np.array(probe_iters, dtype=np.float64)[:, None], _to_numpy(probe_rows, 3)])
    return losses, probes


def _to_numpy(rows: list[torch.Tensor], width: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, width))
    return torch.stack(rows).double().cpu().numpy()


def growth_gradients(gan: Gan, net: str) -> dict[str, torch.Tensor]:
    """Dense gradient of the current loss for gradient-based growth, on a fresh batch drawn from the
    training streams right before growing: for D, the D loss on a new real batch and a new fake
    batch (batch_size each); for G, the G loss on gen_batch_size new z through the current D.
    Nothing is stepped."""
    handle = gan.nets()[net]
    model, masks = handle.model, handle.masks
    model.zero_grad(set_to_none=True)
    if net == "discriminator":
        x = gan.data.sample(gan.batch_size)
        d_loss_on(gan, x, gan.z(gan.batch_size)).backward()
    else:
        with frozen(gan.D):
            LOSSES[gan.loss][1](g_logits_on(gan, gan.z(gan.gen_batch_size))).backward()
    # No copy needed: zero_grad(set_to_none) below detaches these tensors from the parameters.
    grads = {l.name: (l.weight.grad.detach() if l.weight.grad is not None
                      else torch.zeros_like(l.weight)) for l in masks.layers}
    model.zero_grad(set_to_none=True)
    forget_cached_weights(gan.G, gan.D)  # this pass's graph, on the default stream, must not outlive it
    return grads
