"""A small CNN domain classifier for 28x28 grayscale data (MNIST, Fashion-MNIST), trained once per data
set and cached, for classifier-based metrics where Inception features mean little: classifier-FID on its
penultimate features, class coverage and confidence of generated samples.

Image conventions (one place: `prepare`): uint8 images are [0, 255]; float images are in [-1, 1], the
generator's tanh range. Shapes [N, 28, 28], [N, 1, 28, 28] or [N, 3, ...] (channels averaged);
32x32 images are taken to be 28x28 ones zero-padded by 2 (what 32x32 GANs train on) and are
center-cropped back, so the classifier always sees the geometry it was trained on.
"""

import hashlib
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..adam import Adam

# Bump whenever the network, the training recipe or `prepare` changes: it is part of the cache key.
CODE_VERSION = "cnn2bn-v1"


class DomainCNN(nn.Module):
    """conv-BN-ReLU-pool twice, then fc(128) -> fc(classes). BatchNorm lets 2 epochs reach ~99% on MNIST."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def features(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # 14x14
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # 7x7
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x):
        return self.fc2(self.features(x))


def _tensor(a) -> torch.Tensor:
    # numpy input is copied: it may be read-only (np.frombuffer, memmaps), which torch warns about
    return torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else torch.as_tensor(a)


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def prepare(images, device="cpu") -> torch.Tensor:
    """Any accepted image batch -> float32 [N, 1, 28, 28] in [-1, 1] on `device`."""
    x = _tensor(images).to(device)
    x = x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, H, W] or [N, 1|3, H, W], got {tuple(x.shape)}")
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[2:] == (32, 32):
        x = x[:, :, 2:30, 2:30]
    if x.shape[2:] != (28, 28):
        raise ValueError(f"images must be 28x28 or 32x32 (28x28 padded by 2), got {tuple(x.shape[2:])}")
    return x


def train_classifier(images, labels, epochs: int = 2, seed: int = 0, device="cpu",
                     num_classes: int = 10, batch: int = 128, lr: float = 2e-3, on_step=None) -> DomainCNN:
    """Adam on cross-entropy with a cosine decay of the step size to 0 (the last, small steps are worth
    a few tenths of a point of accuracy at this budget); seeded init and shuffling that leave the global
    RNG alone. `on_step(step, total)`, if given, is called after every optimizer step (the worker serves
    its socket there: training on 60,000 images takes a while on a CPU)."""
    x = prepare(images, device)
    y = _tensor(labels).long().to(device)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DomainCNN(num_classes).to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))  # torch.optim.Adam's defaults
    total, step = epochs * -(-len(x) // batch), 0
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            opt.lr = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            step += 1
            idx = idx.to(device)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if on_step is not None:
                on_step(step, total)
    return model.eval()


@torch.inference_mode()
def _run(model, images, fn, batch: int) -> np.ndarray:
    device = next(model.parameters()).device
    model.eval()
    outs = [fn(prepare(images[i:i + batch], device)).double().cpu() for i in range(0, len(images), batch)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0))


def features(model: DomainCNN, images, batch: int = 1000) -> np.ndarray:
    """Penultimate (post-ReLU fc1) activations [N, 128] float64: the classifier-FID features."""
    return _run(model, images, model.features, batch)


def probs(model: DomainCNN, images, batch: int = 1000) -> np.ndarray:
    """Class probabilities [N, num_classes] float64."""
    return _run(model, images, lambda x: F.softmax(model(x), dim=1), batch)


def accuracy(model: DomainCNN, images, labels, batch: int = 1000) -> float:
    return float((probs(model, images, batch).argmax(1) == _numpy(labels)).mean())


def class_coverage(p, min_count: int = 1) -> float:
    """Fraction of classes predicted (argmax) for at least `min_count` samples. With min_count=1 this is
    the stacked-MNIST "modes covered" count divided by the number of classes; a larger min_count (e.g.
    10% of N / num_classes) stops a few stray samples from counting as a covered class."""
    p = np.asarray(p)
    counts = np.bincount(p.argmax(1), minlength=p.shape[1])
    return float((counts >= min_count).mean())


def class_kl(p) -> float:
    """KL(predicted-label histogram || uniform) in nats: 0 when every class is predicted equally often,
    log(num_classes) when one class takes all (the stacked-MNIST KL of VEEGAN / PacGAN)."""
    p = np.asarray(p)
    q = np.bincount(p.argmax(1), minlength=p.shape[1]) / len(p)
    nz = q[q > 0]
    return float((nz * np.log(nz * p.shape[1])).sum())


def mean_confidence(p) -> float:
    """Mean max-probability: how sure the classifier is that samples look like some class."""
    return float(np.asarray(p).max(axis=1).mean())


def cache_path(cache_dir, dataset_name: str, train_images, train_labels, epochs: int, seed: int) -> Path:
    """The file name carries the data set name, CODE_VERSION, the recipe and a fingerprint of the
    training data, so a changed network or different data never reuses an old classifier."""
    h = hashlib.sha256()
    for a in (_numpy(train_images), _numpy(train_labels)):
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", dataset_name)
    return Path(cache_dir) / f"classifier-{safe}-{CODE_VERSION}-e{epochs}s{seed}-{h.hexdigest()[:12]}.pt"


def load_or_train(cache_dir, dataset_name: str, train_images, train_labels, test_images, test_labels,
                  device="cpu", epochs: int = 2, seed: int = 0, num_classes: int = 10, on_step=None):
    """-> (model in eval mode on `device`, test accuracy). Trains and saves on a miss; a cache file that
    cannot be read is retrained over, one that cannot be written is said on stderr (worker.log) and the
    model returned all the same. `on_step` goes to train_classifier."""
    path = cache_path(cache_dir, dataset_name, train_images, train_labels, epochs, seed)
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = DomainCNN(saved["num_classes"])
            model.load_state_dict(saved["state_dict"])
            return model.to(device).eval(), float(saved["test_accuracy"])
        except Exception:  # corrupt or foreign file: fall through and replace it
            pass
    started = time.perf_counter()
    model = train_classifier(train_images, train_labels, epochs, seed, device, num_classes, on_step=on_step)
    acc = accuracy(model, test_images, test_labels)
    payload = {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "test_accuracy": acc,
               "num_classes": num_classes, "dataset": dataset_name, "code_version": CODE_VERSION,
               "train_seconds": time.perf_counter() - started}
    try:
        _save_atomically(payload, path)
    except OSError as e:  # a cache that cannot be written only costs a retraining in the next worker
        print(f"ddst-worker: cannot cache the domain classifier at {path}: {e}", file=sys.stderr, flush=True)
    return model, acc


def _save_atomically(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old state or the whole new file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
