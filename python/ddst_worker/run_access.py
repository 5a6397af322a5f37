"""A run's networks for scripts: `open_run(run_dir)`, called from TypeScript through the pythonia bridge.

Low-frequency access only (look at masks, draw a few samples, hand the nets to an analysis); training
goes through the ZeroMQ worker. A run directory holds `config.json` (the resolved experiment) and
`checkpoint.json` (`{"iter", "worker": the latest worker checkpoint, relative to the run directory}`).

The networks are built with the build arguments the checkpoint itself records (exactly what the worker that
wrote it was built with, resolved by the orchestrator) on the device asked for, after checking that
config.json names the same seed and model, then the checkpoint is loaded into them. The data set is never read: the networks only need one sample's shape,
which the checkpoint records, so a run opens even where its data is missing.
"""

import json
from pathlib import Path

import torch

from . import checkpoint
from .session import Session

class _NoData:
    """Stands in for the data set at build time: its shape is all the networks need."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def sample(self, n: int):
        raise RuntimeError("a run opened by run_access has no data: it is for looking at, not for training")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist: is {path.parent} a ddst run directory?") from None
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


class Run:
    def __init__(self, run_dir: str, device: str = "cpu"):
        self.dir = Path(run_dir)
        self.config = _read_json(self.dir / "config.json")
        pointer = _read_json(self.dir / "checkpoint.json")
        if "worker" not in pointer:
            raise ValueError(f"{self.dir}: checkpoint.json lacks 'worker'")
        self.checkpoint_path = self.dir / pointer["worker"]
        path = str(self.checkpoint_path)
        ckpt = checkpoint.read(path)
        args = {**ckpt["build"], "device": device}  # the device may differ from the run's
        # config.json must describe the same networks; the rest of it (data paths before ${VAR} expansion,
        # train settings before the orchestrator resolved them) is compared by the orchestrator, not here.
        stated = {**args, **{k: self.config[k] for k in ("seed", "model") if k in self.config}}
        stated["model"] = dict(stated["model"])
        checkpoint.complete_legacy_model(stated["model"])  # config.json of a run from before every field was sent
        checkpoint.check_build(ckpt, stated, path, ignore=("device",))
        self._session = Session()
        self._session.build(args, data=_NoData(ckpt["dataShape"]))
        # Random streams are left out: nothing here trains, and they do not move between devices.
        checkpoint.restore(self._session, ckpt, path, rng=False)
        gan = self._session.gan
        gan.G.eval()
        gan.D.eval()  # also keeps spectral norm from stepping its power iteration on every call

    @property
    def device(self) -> str:
        return self._session.gan.device

    @property
    def iteration(self) -> int:
        return self._session.iter

    @property
    def generator(self) -> torch.nn.Module:
        """The generator that samples: its EMA when the run kept one, else G itself (eval mode: BatchNorm by
        the running averages when called directly; sample_tensor samples as the run's evaluations do)."""
        gan = self._session.gan
        return gan.ema.model if gan.ema is not None else gan.G

    @property
    def discriminator(self) -> torch.nn.Module:
        return self._session.gan.D

    def _mask_sets(self):
        gan = self._session.gan
        return {"generator": gan.masks_g, "discriminator": gan.masks_d}

    @property
    def masks(self) -> dict:
        """{net: {layer: bool tensor}}, copies (True = active)."""
        return {net: {l.name: l.mask.clone() for l in m.layers} for net, m in self._mask_sets().items()}

    def densities(self) -> dict:
        """{net: {layer: active fraction}}."""
        return {net: {l.name: l.active / l.numel for l in m.layers} for net, m in self._mask_sets().items()}

    def stats(self) -> dict:
        """As the `stats` op: counts, densities and ITOP per net."""
        return self._session.op_stats({})

    def sample_tensor(self, n: int, seed: int = 0) -> torch.Tensor:
        """n samples [n, *dataShape] as the `sample` op draws them (float32, CPU), in batches of the run's
        `eval.batchSize` with BatchNorm normalizing as its evaluations do (`eval.batchNorm`, absent from the
        config.json of a run from before the setting: by the running averages); a run without evaluations
        samples as the default evaluation would, by batch in batches of 100."""
        ev = self.config.get("eval") or {}
        batch_norm = ev.get("batchNorm", "running" if ev else "batch")
        _, out = self._session.op_sample({"n": int(n), "seed": int(seed), "batchSize": int(ev.get("batchSize", 100)), "batchNorm": batch_norm})
        return dict(out)["samples"]

    def sample(self, n: int, seed: int = 0) -> list:
        """As sample_tensor, as nested lists of floats: cheap to pass through a JS bridge for small n."""
        return self.sample_tensor(n, seed).tolist()


def open_run(run_dir: str, device: str = "cpu") -> Run:
    return Run(run_dir, device)
