"""Model registry: name -> module providing `build(model_cfg, data_shape) -> (G, D, latent_dim)`.

Modules are imported on first use so a model with heavy or missing pieces costs nothing until asked for.
"""

import importlib

from ..errors import WorkerError

MODELS = {
    "mlp2d": "ddst_worker.models.mlp",
    "sngan": "ddst_worker.models.sngan",
    "dcgan": "ddst_worker.models.dcgan",
}


def build_model(model_cfg: dict, data_shape: tuple):
    name = model_cfg.get("name")
    if name not in MODELS:
        raise WorkerError("bad_value", f"unknown model {name!r}; known: {sorted(MODELS)}", {"model": name})
    try:
        module = importlib.import_module(MODELS[name])
    except ModuleNotFoundError as e:
        if e.name != MODELS[name]:
            raise
        raise WorkerError("bad_value", f"model {name!r} is not available in this worker", {"model": name})
    return module.build(model_cfg, data_shape)
