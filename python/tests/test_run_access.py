"""run_access.open_run on a run directory written by hand around a checkpoint from `save`."""

import json

import pytest
import torch

from ddst_worker.data.synthetic import Synthetic
from ddst_worker.run_access import open_run
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build

# The run's data cannot be read here (no such directory): the run must open without it.
BUILD = complete_build({"seed": 4, "device": "cpu", "model": {"name": "dcgan28", "width": 4, "latentDim": 8},
         "data": {"name": "mnist", "path": "/nonexistent/mnist"},
         "train": {"batchSize": 4, "genBatchSize": 4, "nCritic": 1, "loss": "hinge", "lrG": 2e-4, "lrD": 2e-4,
                   "betas": [0.0, 0.9], "ema": 0.999}})


@pytest.fixture
def run_dir(tmp_path, one_torch_thread):
    s = Session()
    s.build(BUILD, data=Synthetic((1, 28, 28), 0, "cpu"))  # trained on stand-in images of the run's shape
    s.op_setMasks({"generator": {"up1": 0.3}, "discriminator": {"conv2": 0.5}})
    s.handle("train", {"start": 1, "iterations": 3, "probeEvery": 0}, {})
    s.op_dstStep({"net": "generator", "dropRate": 0.5, "prune": "magnitude", "growth": "random", "alpha": 0.5})
    s.op_save({"path": str(tmp_path / "checkpoints" / "iter-000003.pt")})
    (tmp_path / "config.json").write_text(json.dumps({"name": "t", "iterations": 10, **BUILD}))
    (tmp_path / "checkpoint.json").write_text(json.dumps({"iter": 3, "worker": "checkpoints/iter-000003.pt"}))
    yield tmp_path, s


def test_open_run_exposes_the_checkpointed_networks(run_dir):
    path, s = run_dir
    run = open_run(str(path))
    assert run.iteration == 3 and run.device == "cpu"
    assert not run.generator.training and not run.discriminator.training
    for mine, theirs in ((run.generator, s.gan.ema.model), (run.discriminator, s.gan.D)):
        assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    masks = run.masks
    assert set(masks) == {"generator", "discriminator"}
    for net, m in (("generator", s.gan.masks_g), ("discriminator", s.gan.masks_d)):
        assert list(masks[net]) == [l.name for l in m.layers]
        assert all(masks[net][l.name].dtype == torch.bool and torch.equal(masks[net][l.name], l.mask) for l in m.layers)
    stats = s.op_stats({})
    dens = run.densities()
    assert [dens["generator"][l["name"]] for l in stats["generator"]["layers"]] == \
        [l["density"] for l in stats["generator"]["layers"]]
    assert dens["discriminator"]["conv2"] == 0.5 and dens["generator"]["up1"] < 1
    assert run.stats() == stats  # ITOP included

    x = run.sample_tensor(3, seed=9)
    assert x.shape == (3, 1, 28, 28) and torch.equal(x, dict(s.op_sample({"n": 3, "seed": 9, "batchSize": 100, "batchNorm": "batch"})[1])["samples"])
    as_list = run.sample(3, seed=9)
    assert isinstance(as_list, list) and isinstance(as_list[0][0][0][0], float)
    assert torch.equal(torch.tensor(as_list), x)


def test_open_run_reads_config_json_of_runs_from_before_every_field_was_sent(run_dir):
    """An older ddst wrote config.json without the model fields the worker then filled in itself: such a run
    still opens where the old meaning (spectral norm off) is the checkpoint's, and is refused where it is
    not (the old width 32 against the checkpoint's 4)."""
    path, _ = run_dir
    config = json.loads((path / "config.json").read_text())
    without = lambda key: {**config, "model": {k: v for k, v in config["model"].items() if k != key}}
    (path / "config.json").write_text(json.dumps(without("spectralNorm")))
    assert open_run(str(path)).iteration == 3
    (path / "config.json").write_text(json.dumps(without("width")))
    with pytest.raises(Exception, match="model.width"):
        open_run(str(path))


def test_open_run_refuses_what_does_not_match(run_dir):
    path, _ = run_dir
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "width": 8}}))
    with pytest.raises(Exception, match="model.width"):
        open_run(str(path))
    (path / "checkpoint.json").unlink()
    with pytest.raises(FileNotFoundError, match="checkpoint.json"):
        open_run(str(path))
