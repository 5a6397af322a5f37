"""The worker's state and its operations, one method per protocol op (docs/protocol.md).

Nothing here decides anything: densities, drop rates, criteria and iteration counts all come from
the orchestrator, resolved: the train settings (batches, EMA decay) and the criteria's arguments (hybrid
alpha) arrive explicit, the request schema requires them, and the worker has no defaults of its own for them.
Inputs the schema cannot rule out (unknown layer names, impossible devices) are
checked here and answered with `bad_value`.
"""

import copy
import os
import platform

import numpy as np
import torch

from . import PROTOCOL_VERSION, __version__, checkpoint
from .adam import Adam
from .compiled import compile_networks
from .data import build_data
from .ema import Ema
from .errors import WorkerError
from .evaluate import Evaluator
from .flops import parameter_macs
from .losses import LOSSES
from .masking import MaskSet, maskable_layers
from .models import build_model
from .profiling import profiled
from .sampling import forwards, sampling
from .memory_format import use_channels_last
from .precision import PRECISIONS, fp32_spectral_norm, set_tf32
from .train import Gan, growth_gradients, train, use_graphs

NETS = ("generator", "discriminator")
PROGRESS_OPS = ("train", "evaluate")  # ops that take the server's progress callback (its LONG_OPS)


def _bad(message: str, **detail):
    return WorkerError("bad_value", message, detail)


def _check_unit(name: str, value: float):
    if not 0.0 <= value <= 1.0:
        raise _bad(f"{name} must be in [0, 1], got {value}", **{name: value})


def layer_table(net: str, model: torch.nn.Module, example_input) -> list[dict]:
    """Every parameter: maskable weights under their module's name, the rest under their own, with the
    dense per-sample MACs attributable to it (flops.parameter_macs, one real forward pass of
    `example_input`, a per-sample shape; the pass runs in eval mode under no_grad on a zero input, so
    BatchNorm statistics, spectral-norm vectors and every random stream are left as they were)."""
    maskable = {id(w): name for name, w in maskable_layers(model)}
    macs = parameter_macs(model, example_input)
    return [{"net": net, "name": maskable.get(id(p), pname), "shape": list(p.shape),
             "maskable": id(p) in maskable, "numel": p.numel(), "macs": macs.get(pname, 0)}
            for pname, p in model.named_parameters()]


class Session:
    def __init__(self):
        self.gan: Gan | None = None
        self.iter = 0          # last iteration completed (or running, during train)
        self.busy = False      # set by the server around long ops
        self.dropped = {"unsigned": 0, "replayed": 0}  # messages the server dropped unanswered, by reason
        self.exit_requested = False
        self.interrupt_requested = False  # set by `interrupt` while a train runs; read after each iteration
        self.mask_gen: torch.Generator | None = None
        self.build_args: dict | None = None  # what `load` checks a checkpoint against
        self.data_shape: tuple | None = None
        self.evaluator = Evaluator()  # evaluate's caches (networks, reference statistics): not state

    def handle(self, op: str, args: dict, tensors: dict, progress=None):
        """-> (result dict, [(name, array)])."""
        method = getattr(self, "op_" + op, None)
        if method is None:
            raise WorkerError("unknown_op", f"this worker does not implement op {op!r}", {"op": op})
        out = method(args, progress) if op in PROGRESS_OPS else method(args)
        return out if isinstance(out, tuple) else (out, [])

    def _built(self) -> Gan:
        if self.gan is None:
            raise WorkerError("not_built", "send `build` first")
        return self.gan

    def _masks(self, net: str) -> MaskSet:
        gan = self._built()
        if net not in NETS:
            raise _bad(f"net must be one of {NETS}", net=net)
        return gan.nets()[net].masks

    # ---- ops ----------------------------------------------------------------------------------

    def op_hello(self, args):
        cuda = torch.cuda.is_available()
        return {"protocol": PROTOCOL_VERSION, "worker": __version__, "python": platform.python_version(),
                "torch": torch.__version__, "device": "cuda" if cuda else "cpu", "cudaAvailable": cuda,
                "threads": torch.get_num_threads(), "pid": os.getpid(), "dropped": self.dropped}

    def op_ping(self, args):
        return {"busy": self.busy, "iter": self.iter, "dropped": self.dropped}

    def op_build(self, args):
        return self.build(args)

    def build(self, args: dict, data=None):
        """`build`; `data` replaces the data set named in args with a source of one's own (anything with
        `shape` and `sample(n)`): run_access builds a finished run's networks without touching its data."""
        device, t = args["device"], args["train"]
        if device == "cuda" and not torch.cuda.is_available():
            raise _bad("device 'cuda' was asked for but torch sees no CUDA device here; use 'cpu' (--device cpu) or 'auto'",
                       device=device)
        if device not in ("cpu", "cuda"):
            raise _bad("device must be 'cpu' or 'cuda'", device=device)
        if t["loss"] not in LOSSES:
            raise _bad(f"loss must be one of {sorted(LOSSES)}", loss=t["loss"])
        gen_batch = t["genBatchSize"]
        if min(t["batchSize"], gen_batch, t["nCritic"]) < 1:
            raise _bad("batchSize, genBatchSize and nCritic must be >= 1", batchSize=t["batchSize"],
                       genBatchSize=gen_batch, nCritic=t["nCritic"])
        decay = t["ema"]
        if decay is not None and not 0 <= decay < 1:
            raise _bad("ema must be a decay in [0, 1) or null", ema=decay)
        if t["precision"] not in PRECISIONS:
            raise _bad(f"precision must be one of {PRECISIONS}", precision=t["precision"])
        graphs = bool(t["cudaGraphs"]) and device == "cuda"  # a CPU run ignores it, as it ignores tf32
        if device == "cuda":
            set_tf32(bool(t["tf32"]))

        # Independent streams from one seed: model init, data, noise z, masks/random growth.
        init_seed, data_seed, noise_seed, mask_seed = (
            int(s) for s in np.random.SeedSequence(args["seed"] % 2**64).generate_state(4))
        torch.manual_seed(init_seed)  # model init uses the global generator
        if data is None:
            data = build_data(args["data"], data_seed, device)
        G, D, latent = build_model(args["model"], data.shape)
        G, D = G.to(device), D.to(device)
        if t["precision"] == "bf16":
            fp32_spectral_norm(G, D)
        channels_last = bool(t["channelsLast"]) and device == "cuda"
        if channels_last:  # before the EMA copies G
            use_channels_last(G, D)
        opt_g = Adam(G.parameters(), lr=t["lrG"], betas=t["betas"])
        opt_d = Adam(D.parameters(), lr=t["lrD"], betas=t["betas"])
        layers = layer_table("generator", G, (latent,)) + layer_table("discriminator", D, data.shape)
        masks_g = MaskSet(G, opt_g)
        ema = None
        if decay is not None:
            ema = Ema(G, decay)
            masks_g.follow(ema.model)  # sparse EMA: its weights outside G's mask are zeroed at mask changes
        self.gan = Gan(G=G, D=D, opt_g=opt_g, opt_d=opt_d, masks_g=masks_g, masks_d=MaskSet(D, opt_d),
                       data=data, noise=torch.Generator(device=device).manual_seed(noise_seed),
                       latent_dim=latent, batch_size=t["batchSize"], gen_batch_size=gen_batch,
                       n_critic=t["nCritic"], loss=t["loss"], device=device, ema=ema, precision=t["precision"])
        compiled = bool(t["compile"]) and device == "cuda"  # a CPU run ignores it: see compiled.py
        if compiled:
            self.gan.compiled = compile_networks(G, D)
        if graphs:
            use_graphs(self.gan)
        self.mask_gen = torch.Generator().manual_seed(mask_seed)
        self.iter = 0
        self.build_args, self.data_shape = copy.deepcopy(args), tuple(data.shape)
        # What this worker does of the execution settings (on the CPU, none): a worker that dies twice at the same
        # place with one of them on goes on without it (`ddst run`).
        execution = {"cudaGraphs": graphs, "channelsLast": channels_last, "compile": compiled}
        return {"device": device, "latentDim": latent, "dataShape": list(data.shape), "layers": layers,
                "execution": execution}

    def op_setMasks(self, args):
        self._built()
        # Check everything before changing anything, so a bad request leaves the masks alone.
        for net in NETS:
            masks = self._masks(net)
            for name, d in args.get(net, {}).items():
                if name not in masks.by_name:
                    raise _bad(f"{net} has no maskable layer {name!r}", net=net, layer=name,
                               layers=list(masks.by_name))
                _check_unit(f"{net}.{name}", d)
        for net in NETS:
            self._masks(net).set_densities(args.get(net, {}), self.mask_gen)
        return self.op_stats({})

    def op_train(self, args, progress=None):
        gan = self._built()
        start, iterations, every = args["start"], args["iterations"], args["probeEvery"]
        if iterations < 0:
            raise _bad("iterations must be >= 0", iterations=iterations)

        def on_iteration(t, done, total):
            self.iter = t
            if progress is not None:
                progress(t, done, total)  # serves the socket: an `interrupt` may arrive here
            return self.interrupt_requested

        self.interrupt_requested = False  # only an interrupt sent while this train runs counts
        run = lambda: train(gan, start, iterations, every, on_iteration)  # noqa: E731
        try:
            (losses, probes), totals = profiled(run, gan.device) if args.get("profile") else (run(), None)
        finally:
            self.interrupt_requested = False
        done = len(losses)
        result = {"end": start + done - 1, "iterations": done, "interrupted": done < iterations}
        if totals is not None:
            result["profile"] = totals
        return result, [("losses", losses), ("probes", probes)]

    def op_interrupt(self, args):
        """Stop the running train after the iteration in progress; with nothing running, nothing happens
        (the server serves this op during a train, like ping)."""
        if self.busy:
            self.interrupt_requested = True
        return {}

    def op_save(self, args):
        self._built()
        return checkpoint.save(self, args["path"])

    def op_load(self, args):
        self._built()
        return {"iter": checkpoint.load(self, args["path"])}

    def op_setDensity(self, args):
        net, target, growth = args["net"], args["target"], args["growth"]
        masks = self._masks(net)
        _check_unit("target", target)
        before = masks.density()
        pruned, grown = masks.set_density(target, growth, lambda: growth_gradients(self.gan, net), self.mask_gen)
        return {"net": net, "before": before, "after": masks.density(), "pruned": pruned, "grown": grown,
                "active": masks.active(), "total": masks.total(), "stats": self.op_stats({})}

    def op_dstStep(self, args):
        net, rate, prune, growth = args["net"], args["dropRate"], args["prune"], args["growth"]
        alpha = args["alpha"]  # read by hybrid growth only
        masks = self._masks(net)
        _check_unit("dropRate", rate)
        _check_unit("alpha", alpha)
        # prune and growth are the protocol's criteria: the request schema admits no other.
        # The gradient is taken lazily, only by gradient growth, before any weight changes (see growth_gradients).
        pruned, grown, regrown = masks.dst_step(rate, prune, growth, lambda: growth_gradients(self.gan, net),
                                                self.mask_gen, alpha)
        return {"net": net, "pruned": pruned, "grown": grown, "regrown": regrown, "active": masks.active(),
                "total": masks.total(), "stats": self.op_stats({})}

    def op_stats(self, args):
        gan = self._built()
        return {"generator": gan.masks_g.stats(), "discriminator": gan.masks_d.stats()}

    @torch.no_grad()
    def op_sample(self, args):
        """n samples from the generator's EMA when there is one, else from G, drawn in batches of `batchSize`
        with BatchNorm normalizing as `batchNorm` says (sampling.py); z from a generator seeded by `seed`
        alone, so the same seed gives the same z whatever happened before."""
        gan = self._built()
        n, seed, batch, batch_norm = args["n"], args["seed"], args["batchSize"], args["batchNorm"]
        if n < 1 or batch < 1:
            raise _bad("n and batchSize must be >= 1", n=n, batchSize=batch)
        gen = torch.Generator(device=gan.device).manual_seed(seed % 2**64)
        G = gan.ema.model if gan.ema is not None else gan.G
        with sampling(G, batch_norm), torch.no_grad():
            chunks = [G(torch.randn(draw, gan.latent_dim, generator=gen, device=gan.device))[:keep].float().cpu()
                      for draw, keep in forwards(n, batch, batch_norm)]
        return {"n": n}, [("samples", torch.cat(chunks))]

    def op_evaluate(self, args, progress=None):
        """Metrics of the generator's samples and a picture (evaluate.py); training state is untouched.
        An `interrupt` that arrives meanwhile is answered and has no effect."""
        self._built()
        try:
            return self.evaluator.run(self, args, progress)
        finally:
            self.interrupt_requested = False

    def op_shutdown(self, args):
        self.exit_requested = True
        return {}
