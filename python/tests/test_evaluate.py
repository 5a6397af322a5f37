"""`evaluate`: metrics and pictures on tiny data, its caches, its errors, training left bit for bit as it
was, and the op through the real server subprocess. Everything here is small: a classifier trained on 20
images for 1 epoch (Evaluator(classifier_epochs=1): the epoch count is part of its cache key), Inception
with random weights on 4 images."""


import numpy as np
import pytest
import torch
from PIL import Image

from conftest import WorkerProcess
from ddst_worker import evaluate as ev
from ddst_worker import pictures
from ddst_worker.errors import WorkerError
from ddst_worker.metrics import classifier as clf
from ddst_worker.metrics import fid, inception
from ddst_worker.metrics.inception_score import inception_score
from ddst_worker.reference_stats import reference_images
from ddst_worker.session import Session
from test_data import mnist_dir
from ddst_worker.spec_defaults import complete_build

TRAIN = {"batchSize": 8, "genBatchSize": 8, "nCritic": 1, "loss": "hinge", "lrG": 1e-3, "lrD": 1e-3, "betas": [0.5, 0.9]}
RING = complete_build({"seed": 3, "device": "cpu", "model": {"name": "mlp2d", "hidden": 32}, "data": {"name": "ring8"},
                       "train": {**TRAIN, "ema": 0.999}})


def mnist_build(path, ema=0.9, seed=5):
    return complete_build({"seed": seed, "device": "cpu", "model": {"name": "dcgan28", "width": 4, "latentDim": 8},
                           "data": {"name": "mnist", "path": str(path)}, "train": {**TRAIN, "ema": ema}})


def synthetic_build(ema=0.9):
    return complete_build({"seed": 2, "device": "cpu", "model": {"name": "dcgan32", "width": 4, "latentDim": 8},
                           "data": {"name": "synthetic", "shape": [3, 32, 32]}, "train": {**TRAIN, "ema": ema}})


def eval_args(cache, metrics, samples=16, **kw):
    return {"metrics": metrics, "samples": samples, "seed": 7, "batchSize": 8, "batchNorm": "batch", "reference": "train",
            "cacheDir": str(cache), **kw}


def session(build, epochs=1) -> Session:
    s = Session()
    s.evaluator = ev.Evaluator(classifier_epochs=epochs)
    s.op_build(build)
    return s


def train(s, start, iterations):
    return s.handle("train", {"start": start, "iterations": iterations, "probeEvery": 2}, {})[1]


def evaluate(s, args, events=None):
    return s.handle("evaluate", args, {}, progress=(lambda *a: events.append(a)) if events is not None else None)[0]


def bad_value(s, args, *fragments) -> WorkerError:
    with pytest.raises(WorkerError) as e:
        evaluate(s, args)
    assert e.value.code == "bad_value", e.value
    for f in fragments:
        assert f in e.value.message, (f, e.value.message)
    return e.value


def assert_finite_numbers(metrics):
    assert all(isinstance(v, (int, float)) and np.isfinite(v) for v in metrics.values()), metrics


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return mnist_dir(tmp_path_factory.mktemp("data"))[0]


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A randomly initialized FID Inception state_dict: the right layout, meaningless features."""
    path = tmp_path_factory.mktemp("weights") / inception.WEIGHTS_NAME
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.save(inception.FIDInceptionV3().state_dict(), path)
    return path


# ---------------------------------------------------------------- toy

def test_toy_metrics_and_scatter_picture(tmp_path):
    s = session(RING)
    train(s, 1, 20)
    events = []
    out = evaluate(s, eval_args(tmp_path / "cache", ["toy"], samples=600, batchSize=100,
                                picture=str(tmp_path / "pics" / "deep" / "toy.png")), events)
    m = out["metrics"]
    assert {"modes", "highQuality"} <= set(m) <= {"modes", "highQuality", "kl"}
    assert 0 <= m["modes"] <= 8 and 0 <= m["highQuality"] <= 1 and ("kl" in m) == (m["highQuality"] > 0)
    assert_finite_numbers(m)
    assert out["picture"] == str(tmp_path / "pics" / "deep" / "toy.png") and out["seconds"] > 0
    with Image.open(out["picture"]) as im:
        im.verify()
    with Image.open(out["picture"]) as im:
        assert im.format == "PNG" and im.size == (512, 512) and im.mode == "RGB"
        pixels = np.asarray(im)
    assert (pixels == pictures.FAKE_COLOR).all(axis=2).any() and (pixels == pictures.REAL_COLOR).all(axis=2).any()
    assert not list((tmp_path / "pics" / "deep").glob("*.tmp"))
    assert events[-1] == (20, 600, 600) and [e[1] for e in events] == sorted(e[1] for e in events)
    # the same seed gives the same samples: the metrics repeat exactly; no picture asked, none written
    again = evaluate(s, eval_args(tmp_path / "cache", ["toy"], samples=600, batchSize=300))
    assert again["metrics"] == m and again["picture"] is None
    # A generator without BatchNorm samples the same whichever way BatchNorm would normalize.
    assert evaluate(s, eval_args(tmp_path / "cache", ["toy"], samples=600, batchSize=300, batchNorm="running"))["metrics"] == m


def test_toy_kl_left_out_when_no_sample_is_high_quality(tmp_path):
    s = session(RING)
    with torch.no_grad():  # a generator whose every sample lies far from every mode
        for p in s.gan.ema.model.parameters():
            p.zero_()
        s.gan.ema.model.net[-1].bias.fill_(50.0)
    m = evaluate(s, eval_args(tmp_path, ["toy"]))["metrics"]
    assert m == {"modes": 0, "highQuality": 0.0}


# ---------------------------------------------------------------- classifier, grid, caches

def test_classifier_metrics_grid_and_caches(tmp_path, mnist, monkeypatch):
    s = session(mnist_build(mnist))
    cache = tmp_path / "cache"
    trained = []
    real_train = clf.train_classifier
    monkeypatch.setattr(clf, "train_classifier", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    events = []
    out = evaluate(s, eval_args(cache, ["classifier"], samples=70, picture=str(tmp_path / "grid.png")), events)
    m = out["metrics"]
    assert set(m) == {"classifierFid", "coverage", "confidence", "classKl", "classifierAccuracy"}
    assert_finite_numbers(m)
    assert m["classifierFid"] >= 0 and 0 < m["coverage"] <= 1 and 0.1 <= m["confidence"] <= 1
    assert 0 <= m["classKl"] <= np.log(10) + 1e-12 and 0 <= m["classifierAccuracy"] <= 1
    # progress: 70 generated + 70 through the classifier + 20 reference images (the whole tiny train split)
    assert events[-1] == (0, 160, 160)
    assert trained == [1] and len(list(cache.glob("classifier-mnist-*.pt"))) == 1
    assert len(list((cache / "reference-stats").glob("classifier-mnist-train-n20-*.npz"))) == 1
    with Image.open(tmp_path / "grid.png") as im:  # 64 of the 70, 8 x 8, 28 -> 56 px, 2 px padding
        assert im.format == "PNG" and im.mode == "L" and im.size == (8 * 58 + 2, 8 * 58 + 2)
        assert im.size == pictures.grid_size(70, 28, 28)
        grid = np.asarray(im)
    # the first tile is the first sample (`sample` with the evaluation's batchSize draws the same z and batches), upscaled x2
    first = pictures.to_uint8(s.op_sample({"n": 8, "seed": 7, "batchSize": 8, "batchNorm": "batch"})[1][0][1][0, 0].numpy())
    assert np.array_equal(grid[2:58:2, 2:58:2], first) and np.array_equal(grid[3:58:2, 3:58:2], first)

    # Again in this session: nothing retrained or recomputed on the real side, same numbers.
    events.clear()
    assert evaluate(s, eval_args(cache, ["classifier"], samples=70), events)["metrics"] == m
    assert events[-1] == (0, 140, 140) and trained == [1]
    # A new worker: the classifier and the reference statistics come from the disk cache.
    s2 = session(mnist_build(mnist))
    events.clear()
    assert evaluate(s2, eval_args(cache, ["classifier"], samples=70), events)["metrics"] == m
    assert events[-1] == (0, 140, 140) and trained == [1]
    # The test split as the reference: other statistics.
    other = evaluate(s2, eval_args(cache, ["classifier"], samples=70, reference="test"))["metrics"]
    assert other["classifierFid"] != m["classifierFid"] and other["classifierAccuracy"] == m["classifierAccuracy"]


# ---------------------------------------------------------------- fid, is

def test_fid_and_is_with_inception_weights(tmp_path, inception_weights):
    s = session(synthetic_build())
    args = eval_args(tmp_path, ["fid", "is"], samples=4, batchSize=4, inception=str(inception_weights),
                     picture=str(tmp_path / "grid.png"))
    events = []
    m = evaluate(s, args, events)["metrics"]
    assert set(m) == {"fid", "is", "isStd"} and m["fid"] >= 0 and 1 <= m["is"] <= 1008
    assert_finite_numbers(m)
    assert events[-1] == (0, 12, 12)  # 4 generated, 4 through Inception, 4 reference images
    with Image.open(tmp_path / "grid.png") as im:
        assert im.mode == "RGB" and im.size == pictures.grid_size(4, 32, 32) == (4 * 66 + 2, 66 + 2)
    assert len(list((tmp_path / "reference-stats").glob("inception-synthetic-train-n4-*.npz"))) == 1
    events.clear()
    assert evaluate(s, args, events)["metrics"] == m  # the network and the reference are cached
    assert events[-1] == (0, 8, 8)

    # the metrics as the library computes them from the same images
    x = s.op_sample({"n": 4, "seed": 7, "batchSize": 4, "batchNorm": "batch"})[1][0][1]
    real = torch.from_numpy(reference_images(s.gan.data, "train", 4))
    feats, logits = inception.features_and_logits(s.evaluator.inception[1], torch.cat([x, real]))
    feats, logits, real = feats[:4], logits[:4], feats[4:]
    want = fid.frechet_distance(*fid.gaussian_stats(feats), *fid.gaussian_stats(real))
    assert m["fid"] == pytest.approx(want, rel=1e-6, abs=1e-9)
    assert (m["is"], m["isStd"]) == pytest.approx(inception_score(logits, splits=4), rel=1e-6)


def test_bad_inception_weights_are_bad_value(tmp_path):
    s = session(synthetic_build())
    err = bad_value(s, eval_args(tmp_path, ["is"], inception=str(tmp_path / "missing.pth")), "not found",
                    inception.WEIGHTS_NAME)
    assert err.detail["inception"] == str(tmp_path / "missing.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "foreign.pth")
    bad_value(s, eval_args(tmp_path, ["fid"], inception=str(tmp_path / "foreign.pth")), "missing")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    bad_value(s, eval_args(tmp_path, ["fid"], inception=str(tmp_path / "junk.pth")), "cannot read")
    bad_value(s, eval_args(tmp_path, ["fid"]), "needs `inception`")


def test_a_reference_split_the_data_lacks_names_eval_reference(tmp_path, inception_weights):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (16, 1, 28, 28), dtype=np.uint8))
    s = session(complete_build({"seed": 1, "device": "cpu", "model": {"name": "dcgan28", "width": 4, "latentDim": 8},
                                "data": {"name": "npy", "path": str(tmp_path / "x.npy")}, "train": TRAIN}))
    bad_value(s, eval_args(tmp_path / "cache", ["fid"], reference="test", inception=str(inception_weights)),
              "eval.reference 'test'", "no split 'test'", "is its own 'train'")


def test_metrics_that_do_not_fit_the_data(tmp_path, mnist):
    ring = session(RING)
    bad_value(ring, eval_args(tmp_path, ["classifier"]), "'classifier'", "ring8")
    err = bad_value(ring, eval_args(tmp_path, ["fid"], inception="x.pth"), "'fid'", "ring8")
    assert err.detail == {"metric": "fid", "data": "ring8"}
    bad_value(ring, eval_args(tmp_path, ["toy", "is"], inception="x.pth"), "'is'")
    digits = session(mnist_build(mnist))
    bad_value(digits, eval_args(tmp_path, ["classifier", "toy"]), "'toy'", "mnist")
    bad_value(digits, eval_args(tmp_path, ["classifier"], samples=1), "samples must be >= 2")
    bad_value(session(synthetic_build()), eval_args(tmp_path, ["classifier"]), "'classifier'", "synthetic")
    with pytest.raises(WorkerError) as e:
        Session().handle("evaluate", eval_args(tmp_path, ["toy"]), {})
    assert e.value.code == "not_built"
    assert not list(tmp_path.iterdir())  # refused before anything was computed or written


# ---------------------------------------------------------------- training is untouched

def snapshot(s):
    g = s.gan
    return {"G": g.G.state_dict(), "D": g.D.state_dict(), "ema": g.ema.model.state_dict() if g.ema else None,
            "optG": g.opt_g.state_dict()["state"], "optD": g.opt_d.state_dict()["state"],
            "rng": [torch.get_rng_state(), g.noise.get_state(), s.mask_gen.get_state(), g.data.gen.get_state()]}


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("case", ["mnist-ema", "mnist-no-ema", "synthetic-inception"])
def test_evaluation_leaves_training_bitwise_unchanged(tmp_path, mnist, inception_weights, case):
    if case.startswith("mnist"):
        build = mnist_build(mnist, ema=None if case == "mnist-no-ema" else 0.9)
        args = eval_args(tmp_path, ["classifier"], samples=24, picture=str(tmp_path / "p.png"))
    else:
        build = synthetic_build()
        args = eval_args(tmp_path, ["is"], samples=2, batchSize=2, inception=str(inception_weights))
    plain, judged = session(build), session(build)
    for s in (plain, judged):
        s.op_setMasks({"generator": {"fc": 0.5}, "discriminator": {"conv2": 0.5}})
    whole = train(plain, 1, 6)
    first = train(judged, 1, 3)
    assert evaluate(judged, args)["metrics"]  # trains the classifier / loads Inception in between
    assert judged.gan.G.training and (judged.gan.ema is None or not judged.gan.ema.model.training)
    rest = train(judged, 4, 3)
    for name, a in whole:
        b = np.concatenate([dict(first)[name], dict(rest)[name]])
        assert np.array_equal(a, b), name
    assert_same(snapshot(plain), snapshot(judged))


# ---------------------------------------------------------------- streaming reductions

def test_running_stats_and_part_scores_match_the_library():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((103, 6)) * [1, 2, 3, 4, 5, 6] + 1000.0  # a large mean: no cancellation
    rs = fid.RunningStats()
    for i in range(0, 103, 10):
        rs.add(x[i:i + 10])
    mu, sigma = rs.stats()
    want_mu, want_sigma = fid.gaussian_stats(x)
    np.testing.assert_allclose(mu, want_mu, rtol=1e-12)
    np.testing.assert_allclose(sigma, want_sigma, rtol=1e-9, atol=1e-9)
    logits = rng.standard_normal((53, 7)) * 3
    for splits, step in ((10, 7), (10, 53), (3, 1), (1, 5)):
        parts = ev._PartScores(53, splits)
        for i in range(0, 53, step):
            parts.add(logits[i:i + step])
        assert parts.result() == pytest.approx(inception_score(logits, splits), rel=1e-12)


# ---------------------------------------------------------------- through the server

def test_evaluate_through_the_worker_subprocess(schemas, tmp_path):
    with WorkerProcess(schemas) as w:
        proc, c = w.proc, w.client
        c.ok("build", RING)
        c.ok("train", {"start": 1, "iterations": 5, "probeEvery": 5})
        picture = str(tmp_path / "samples" / "iter-5.png")
        rid = c.send("evaluate", eval_args(tmp_path / "cache", ["toy"], samples=100_000, batchSize=1000,
                                           picture=picture))
        ping_id, interrupt_id, stats_id = c.send("ping"), c.send("interrupt"), c.send("stats")
        header, _, progress, others = c.reply(rid)
        assert header["kind"] == "ok", header
        result = header["result"]
        assert set(result) == {"metrics", "picture", "seconds"} and result["picture"] == picture
        assert {"modes", "highQuality"} <= set(result["metrics"])
        by_id = {h["id"]: h for h in others}
        assert by_id[ping_id]["result"] == {"busy": True, "iter": 5, "dropped": {"unsigned": 0, "replayed": 0}}
        assert by_id[interrupt_id]["kind"] == "ok"  # answered, and ignored by evaluate
        assert by_id[stats_id]["error"]["code"] == "busy"
        assert progress and all(p["op"] == "evaluate" and p["iter"] == 5 for p in progress)
        assert progress[-1]["done"] == progress[-1]["total"] == 100_000
        with Image.open(picture) as im:
            assert im.size == (512, 512)
        # the interrupt sent during evaluate does not stop the next train
        result, _ = c.ok("train", {"start": 6, "iterations": 3, "probeEvery": 5})
        assert result == {"end": 8, "iterations": 3, "interrupted": False}
        c.ok("shutdown")
        assert proc.wait(10) == 0
