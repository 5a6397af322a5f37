"""`evaluate`: judge the generator on samples of its own, leaving training exactly as it was.

Samples: `samples` of them from the generator's EMA (G when the EMA is off), under no_grad, in batches of
`batchSize`, its BatchNorm layers normalizing as `batchNorm` says (sampling.py: by each batch's statistics,
or by the running averages), from z drawn from a torch.Generator seeded with `seed` alone. Nothing the
training reads is touched: not the noise, data, mask or global random streams (the Inception network is
built inside torch.random.fork_rng; the classifier trains on generators of its own; the real points of a
scatter plot come from a generator seeded with `seed`), not the BatchNorm running averages (neither mode
moves them), not an optimizer. A run with evaluations therefore trains bit for bit as one without.

Metrics (docs/protocol.md lists the reply's names):
- toy (ring8, grid25): metrics.toy.toy_metrics with the mixture's centers and std.
- classifier (mnist, fashion-mnist): the domain classifier of metrics.classifier, trained on the stored
  (unpadded) train split and cached under cacheDir the first time; classifier-FID between the penultimate
  features of the generated samples and those of the first min(samples, len) images of the real
  `reference` split, class coverage, mean confidence, class KL, and the classifier's test accuracy.
- fid, is (image data with 1 or 3 channels): the FID Inception network from the `inception` weights file;
  FID against the first min(samples, len) images of the real `reference` split; IS over IS_SPLITS parts
  (fewer when there are fewer samples).
Features are reduced to Gaussian statistics as they come (metrics.fid.RunningStats), so memory does not
grow with `samples`.

Caches, not state (a checkpoint holds none of this, and nothing here needs saving): the Inception
network, the classifiers and the reference statistics (reference_stats.py, also kept on disk) live in the
Evaluator for the worker's life.
"""

import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import pictures
from .checkpoint import load_fault
from .data.images import ImageSource, PointSource
from .data.synthetic import Synthetic
from .data.toy import Mixture
from .errors import WorkerError
from .metrics import classifier as clf
from .metrics.fid import RunningStats
from .metrics.inception import (WEIGHTS_HELP, InceptionWeightsMismatch, InceptionWeightsMissing,
                                features_and_logits, load_inception)
from .metrics.inception_score import inception_score
from .metrics.toy import toy_metrics
from .reference_stats import ReferenceStats
from .sampling import check_batch_norm, forwards, sampling

CLASSIFIER_EPOCHS = 2     # the library's recipe (~99% on MNIST); Evaluator(classifier_epochs=) for tests
CLASSIFIER_BATCH = 1000   # most images per classifier forward
INCEPTION_BATCH = 100     # most images per Inception forward (299x299 activations are large)
IS_SPLITS = 10
SCATTER_REAL = 2000       # real points in a scatter plot
SCATTER_FAKE = 20000      # most generated points drawn


def _bad(message: str, **detail) -> WorkerError:
    return WorkerError("bad_value", message, detail)


class _Progress:
    """done / total counts images through a network: generated samples, then each feature network's
    samples and uncached reference images. While the classifier trains, events repeat `done`."""

    def __init__(self, session, callback, total: int):
        self.session, self.callback, self.done, self.total = session, callback, 0, total

    def advance(self, k: int = 0) -> None:
        self.done += k
        if self.callback is not None:
            self.callback(self.session.iter, min(self.done, self.total), self.total)


class _PartScores:
    """Inception Score streamed: the samples are cut into `splits` contiguous parts [k n // s, (k+1) n // s),
    as inception_score does, and each part is scored when it is complete; mean and population std."""

    def __init__(self, n: int, splits: int):
        self.bounds = [k * n // splits for k in range(splits + 1)]
        self.buffer, self.start, self.scores = [], 0, []

    def add(self, logits: np.ndarray) -> None:
        self.buffer.append(logits)
        end = self.start + sum(len(b) for b in self.buffer)
        k = len(self.scores)
        while k + 1 < len(self.bounds) and end >= self.bounds[k + 1]:
            held = np.concatenate(self.buffer)
            cut = self.bounds[k + 1] - self.start
            self.scores.append(inception_score(held[:cut], splits=1)[0])
            self.buffer, self.start, k = [held[cut:]], self.bounds[k + 1], k + 1

    def result(self) -> tuple[float, float]:
        return float(np.mean(self.scores)), float(np.std(self.scores))


# ---- feature networks ----------------------------------------------------------------------------

class _Net:
    """A feature network: kind ("classifier" | "inception"), identity (the disk key's part), forward."""

    def __init__(self, kind: str, ident: str, model, device: str, batch: int):
        self.kind, self.ident, self.model, self.device, self.batch = kind, ident, model, device, batch

    @torch.inference_mode()
    def __call__(self, x) -> tuple[np.ndarray, np.ndarray]:
        """x: a batch of generated (float, [-1, 1], on any device) or reference (uint8 numpy) images ->
        (features [b, D] float64, class probabilities | Inception logits [b, K] float64)."""
        if self.kind == "classifier":
            h = self.model.features(clf.prepare(x, self.device))
            return h.double().cpu().numpy(), F.softmax(self.model.fc2(h), dim=1).double().cpu().numpy()
        if isinstance(x, np.ndarray) and x.dtype == np.uint8:
            x = x.astype(np.float32) / 127.5 - 1
        return features_and_logits(self.model, x, batch=len(x))

    def run(self, x, progress: _Progress, each) -> None:
        """Feed x in batches of at most self.batch to `each(features, outputs)`, advancing progress."""
        for i in range(0, len(x), self.batch):
            each(*self(x[i:i + self.batch]))
            progress.advance(min(self.batch, len(x) - i))


# ---- the evaluator -----------------------------------------------------------------------------------

class Evaluator:
    """The caches of `evaluate`: one per worker session, never saved (see the module docstring)."""

    def __init__(self, classifier_epochs: int = CLASSIFIER_EPOCHS):
        self.classifier_epochs = classifier_epochs
        self.inception = None    # (identity, model)
        self.classifiers = {}    # (data key, device, cache dir) -> (model, test accuracy, identity)
        self.references = ReferenceStats()

    # -- networks --

    def inception_net(self, path: str, device: str, batch: int) -> _Net:
        try:
            st = os.stat(path)
            ident = f"inception:{st.st_size}:{st.st_mtime_ns}"
            key = (os.path.realpath(path), ident, device)
        except OSError:
            key = None
        if self.inception is None or key is None or self.inception[0] != key:
            # FIDInceptionV3() initializes its layers from torch's global generator before the weights
            # are loaded over them: fork it, so training's stream is left where it was.
            try:
                with torch.random.fork_rng(devices=[]):
                    model = load_inception(path, device)
            except (InceptionWeightsMissing, InceptionWeightsMismatch) as e:
                raise _bad(str(e), inception=path)
            except Exception as e:  # torch.load's many ways of refusing a file
                raise _bad(f"cannot read Inception weights {path!r}: {load_fault(e, path)}; {WEIGHTS_HELP}",
                           inception=path)
            self.inception = (key, model)
        return _Net("inception", self.inception[0][1], self.inception[1], device, min(batch, INCEPTION_BATCH))

    def classifier_net(self, data: ImageSource, data_key: str, cache_dir: str, device: str, batch: int,
                       progress: _Progress) -> tuple[_Net, float]:
        key = (data_key, device, str(cache_dir))
        if key not in self.classifiers:
            try:
                (x_tr, y_tr), (x_te, y_te) = data.stored("train"), data.stored("test")
            except WorkerError as e:  # say why a run whose reference is `train` reads the test split
                raise _bad(f"the classifier metrics train a domain classifier on the train split and measure its "
                           f"accuracy on the test split: {e.message}", data=data.name) from e
            if y_tr is None or y_te is None:
                raise _bad(f"{data.name}: the classifier metrics need labeled train and test splits", data=data.name)
            epochs = self.classifier_epochs
            ident = "classifier:" + clf.cache_path(cache_dir, data.name, x_tr, y_tr, epochs, 0).name
            model, acc = clf.load_or_train(cache_dir, data.name, x_tr, y_tr, x_te, y_te, device=device,
                                           epochs=epochs, on_step=lambda step, total: progress.advance(0))
            self.classifiers[key] = (model, acc, ident)
        model, acc, ident = self.classifiers[key]
        return _Net("classifier", ident, model, device, min(batch, CLASSIFIER_BATCH)), acc

    # -- the op --

    def run(self, session, args: dict, callback=None) -> dict:
        started = time.perf_counter()
        gan = session._built()
        wanted = list(dict.fromkeys(args["metrics"]))
        n, seed, batch, split = args["samples"], args["seed"], args["batchSize"], args["reference"]
        cache_dir, picture = args["cacheDir"], args.get("picture")
        data, shape, device = gan.data, tuple(session.data_shape), gan.device
        data_cfg = session.build_args["data"]
        # What the reference images are: flips touch training batches only, so they share their statistics.
        data_name = data_cfg.get("name")
        data_key = json.dumps({k: v for k, v in data_cfg.items() if k != "hflip"}, sort_keys=True)
        if n < 1 or batch < 1:
            raise _bad("samples and batchSize must be >= 1", samples=n, batchSize=batch)
        if split not in ("train", "test"):
            raise _bad("reference must be 'train' or 'test'", reference=split)
        check_batch_norm(args["batchNorm"])  # before the networks are loaded
        self._check(wanted, data, data_name, shape, n, args)

        inception_needed = "fid" in wanted or "is" in wanted
        progress = _Progress(session, callback, n * (1 + ("classifier" in wanted) + inception_needed))
        nets, ref_stats, pending, accuracy = [], {}, {}, None
        if "classifier" in wanted:
            net, accuracy = self.classifier_net(data, data_key, cache_dir, device, batch, progress)
            nets.append(net)
        if inception_needed:
            nets.append(self.inception_net(args["inception"], device, batch))
        for net in nets:
            if net.kind == "classifier" or "fid" in wanted:
                ref_stats[net.kind], pending[net.kind] = self.references.lookup(net.kind, net.ident, data, data_key, split, n, cache_dir)
                if pending[net.kind] is not None:
                    progress.total += len(pending[net.kind][0])
        for net in nets:
            if pending.get(net.kind) is not None:
                ref_stats[net.kind] = self.references.compute(pending[net.kind], lambda images, add: net.run(images, progress, lambda f, _: add(f)))

        fake = self._generate(session, n, seed, batch, args["batchNorm"], nets, progress, keep_points=len(shape) == 1)
        metrics = self._metrics(wanted, data, fake, ref_stats, accuracy)
        written = self._picture(picture, data, shape, fake, seed) if picture else None
        progress.advance(0)
        metrics = {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}
        seconds = time.perf_counter() - started
        # Timing goes to the log: the orchestrator keeps metrics.jsonl free of wall-clock values.
        print(f"ddst-worker: evaluate {','.join(wanted)} on {n} samples in {seconds:.1f} s", file=sys.stderr, flush=True)
        return {"metrics": metrics, "picture": written, "seconds": seconds}

    @staticmethod
    def _check(wanted, data, data_name, shape, n, args) -> None:
        """Every metric must fit the data before anything is computed."""
        images = len(shape) == 3 and shape[0] in (1, 3)
        for m in wanted:
            if m == "toy" and not isinstance(data, Mixture):
                raise _bad(f"metric 'toy' needs ring8 or grid25 data (mode centers); this session's data is "
                           f"{data_name}", metric=m, data=data_name)
            # What a metric physically needs is checked here; which data sets it is meant for is the
            # orchestrator's policy (src/vocabulary), not repeated in the worker.
            if m == "classifier" and not isinstance(data, ImageSource):
                raise _bad(f"metric 'classifier' trains a domain classifier on labeled real images; this session's "
                           f"data is {data_name}", metric=m, data=data_name)
            if m in ("fid", "is"):
                if not images:
                    raise _bad(f"metric {m!r} needs images with 1 or 3 channels; this session's data is "
                               f"{data_name} with samples of shape {list(shape)}", metric=m, data=data_name)
                if m == "fid" and not isinstance(data, (ImageSource, Synthetic)):
                    raise _bad(f"metric 'fid' needs real images to compare with; {data_name} has none here",
                               metric=m, data=data_name)
                if not args.get("inception"):
                    raise _bad(f"metric {m!r} needs `inception`, the FID Inception weights file: {WEIGHTS_HELP}",
                               metric=m)
            if m in ("fid", "classifier") and n < 2:
                raise _bad(f"metric {m!r} fits a Gaussian to the samples' features: samples must be >= 2",
                           metric=m, samples=n)

    @staticmethod
    def _generate(session, n, seed, batch, batch_norm, nets, progress, keep_points: bool) -> dict:
        """Draw the samples batch by batch and feed each batch to every feature network. -> what the
        metrics need: running statistics, probabilities, IS parts, points, the first images, and
        how many samples held a non-finite value."""
        gan = session.gan
        G = gan.ema.model if gan.ema is not None else gan.G
        gen = torch.Generator(device=gan.device).manual_seed(seed % 2**64)
        out = {"stats": {net.kind: RunningStats() for net in nets}, "probs": [], "points": [], "first": [],
               "nonfinite": 0, "parts": _PartScores(n, min(IS_SPLITS, n))}
        kept = 0

        def consume(kind):
            def each(features, extra):
                out["stats"][kind].add(features)
                if kind == "classifier":
                    out["probs"].append(extra)
                else:
                    out["parts"].add(extra)
            return each

        with sampling(G, batch_norm), torch.no_grad():
            for draw, b in forwards(n, batch, batch_norm):
                x = G(torch.randn(draw, gan.latent_dim, generator=gen, device=gan.device))[:b].float()
                progress.advance(b)
                out["nonfinite"] += int((~torch.isfinite(x.flatten(1))).any(dim=1).sum())
                if keep_points:
                    out["points"].append(x.cpu().numpy())
                elif kept < pictures.GRID_MAX:
                    out["first"].append(x[:pictures.GRID_MAX - kept].cpu().numpy())
                    kept += len(out["first"][-1])
                for net in nets:
                    net.run(x, progress, consume(net.kind))
        return out

    @staticmethod
    def _metrics(wanted, data, fake, ref_stats, accuracy) -> dict:
        clean = fake["nonfinite"] == 0  # a sample with NaN or inf: no feature metric means anything
        m = {}

        def fid_of(kind):
            mu, sigma = fake["stats"][kind].stats()
            ref = ref_stats.get(kind)
            if not clean or ref is None or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
                return None
            return ref.distance(mu, sigma)

        for name in wanted:
            if name == "toy":
                t = toy_metrics(np.concatenate(fake["points"]), data.centers, data.std)
                m.update(modes=t["modes"], highQuality=t["highQuality"], kl=t["kl"])
            elif name == "classifier":
                p = np.concatenate(fake["probs"])
                m["classifierFid"] = fid_of("classifier")
                if clean:
                    m.update(coverage=clf.class_coverage(p), confidence=clf.mean_confidence(p),
                             classKl=clf.class_kl(p))
                m["classifierAccuracy"] = accuracy
            elif name == "fid":
                m["fid"] = fid_of("inception")
            elif name == "is" and clean:
                m["is"], m["isStd"] = fake["parts"].result()
        return m

    @staticmethod
    def _picture(path, data, shape, fake, seed):
        """Write the picture; -> its path, or None for data that has no picture (points of d != 2)."""
        if len(shape) == 3:
            image = pictures.image_grid(np.concatenate(fake["first"]))
        elif shape == (2,):
            real, centers = None, None
            if isinstance(data, Mixture):
                gen = torch.Generator().manual_seed(seed % 2**64)
                mode = torch.randint(len(data.centers), (SCATTER_REAL,), generator=gen)
                real = (data.centers[mode] + data.std * torch.randn(SCATTER_REAL, 2, generator=gen)).numpy()
                centers = data.centers.numpy()
            elif isinstance(data, PointSource):
                rng = np.random.default_rng(seed)
                real = data.points[rng.choice(data.count, min(SCATTER_REAL, data.count), replace=False)]
            image = pictures.scatter(real, np.concatenate(fake["points"])[:SCATTER_FAKE], centers)
        else:
            return None
        try:
            return pictures.write_png(image, path)
        except OSError as e:
            raise _bad(f"cannot write picture {path}: {e.strerror or e}", picture=path)

