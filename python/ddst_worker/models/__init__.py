"""Model registry: name -> module providing `build(model_cfg, data_shape) -> (G, D, latent_dim)`.

A trailing number names the image size the model is for (`sngan32`, `dcgan28`) and resolves to the
module of the bare name, which checks the size. Modules are imported on first use.
Each module accepts exactly the keys of its branch of `build.model` in schemas/request.schema.json
(see `check_keys`); a key it does not know is refused rather than silently ignored.
"""

import importlib
import re
from typing import Iterator

from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

from ..errors import WorkerError

MODELS = {
    "mlp2d": "ddst_worker.models.mlp",
    "sngan": "ddst_worker.models.sngan",
    "dcgan": "ddst_worker.models.dcgan",
}


def check_keys(cfg: dict, allowed: set[str], model: str) -> None:
    """Refuse keys a model does not read: the schema rules them out on the wire, and an in-process caller
    (tests, bench) that misspells one should hear about it instead of the key being ignored."""
    unknown = sorted(set(cfg) - allowed - {"name"})
    if unknown:
        raise ValueError(f"{model} does not take {unknown}; it takes {sorted(allowed)}")


def spectral_norm_hooks(*models: nn.Module) -> Iterator[tuple[nn.Module, SpectralNorm]]:
    """(layer, hook) for every classic spectral norm of `models` (subclasses too), in module order: the order
    the layers run in the forward."""
    for model in models:
        for m in model.modules():
            for hook in m._forward_pre_hooks.values():
                if isinstance(hook, SpectralNorm):
                    yield m, hook


def module_for(name) -> str:
    if isinstance(name, str):
        if name in MODELS:
            return MODELS[name]
        bare = re.sub(r"\d+$", "", name)
        if bare != name and bare in MODELS:
            return MODELS[bare]
    raise WorkerError("bad_value", f"unknown model {name!r}; known: {sorted(MODELS)}", {"model": name})


def build_model(model_cfg: dict, data_shape: tuple):
    """(G, D, latent_dim); a model's ValueError (a config it cannot build) becomes bad_value."""
    path = module_for(model_cfg.get("name"))
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as e:
        if e.name != path:
            raise
        raise WorkerError("bad_value", f"model {model_cfg.get('name')!r} is not available in this worker",
                          {"model": model_cfg.get("name")})
    try:
        return module.build(model_cfg, data_shape)
    except ValueError as e:
        raise WorkerError("bad_value", str(e), {"model": model_cfg.get("name")}) from e
