"""Fréchet distance between two Gaussians fitted to feature sets (FID when the features are
Inception pool3, classifier-FID when they come from the domain classifier).

    d² = ||mu1 - mu2||² + tr(s1) + tr(s2) - 2 tr( (s1^½ s2 s1^½)^½ )

The usual implementation takes sqrtm(s1 @ s2) of a non-symmetric product, which can come back complex
or inaccurate when a covariance is singular (fewer samples than dimensions). s1^½ s2 s1^½ has the same
eigenvalues as s1 s2 but is symmetric PSD, so two `eigh` calls in float64 give the trace exactly.
Rounding leaves the zero eigenvalues of singular covariances at about ±eps·λmax; they are set to 0
(negative ones always, positive ones below D·eps·λmax, the usual rank tolerance), since taking their
square root would turn 1e-16 noise into a 1e-8 error.
"""

import numpy as np


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (N-1 denominator, as pytorch-fid and the TF code) of
    features [N, D], in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be [N, D] with N >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _symmetric(m: np.ndarray) -> np.ndarray:
    return (m + m.T) / 2  # removes rounding asymmetry so eigh sees the matrix we mean


def _psd_eigenvalues(w: np.ndarray) -> np.ndarray:
    tol = len(w) * np.finfo(np.float64).eps * max(w.max(initial=0.0), 0.0)
    return np.where(w > tol, w, 0.0)


def psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix."""
    w, v = np.linalg.eigh(_symmetric(m))
    return (v * np.sqrt(_psd_eigenvalues(w))) @ v.T


def frechet_distance(mu1, s1, mu2, s2, s1_sqrt=None) -> float:
    """`s1_sqrt`: psd_sqrt(s1) when the caller has it (a reference set's, computed once), which saves the
    larger of the two eigendecompositions."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, s1 {s1.shape}, mu2 {mu2.shape}, s2 {s2.shape}")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        raise ValueError("statistics contain NaN or inf")
    r1 = psd_sqrt(s1) if s1_sqrt is None else np.asarray(s1_sqrt, np.float64)
    if r1.shape != (d, d):
        raise ValueError(f"s1_sqrt has shape {r1.shape}, not {(d, d)}")
    cross = np.sqrt(_psd_eigenvalues(np.linalg.eigvalsh(_symmetric(r1 @ s2 @ r1)))).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * cross
    return float(max(value, 0.0))  # a distance: only rounding can take it below 0


class RunningStats:
    """gaussian_stats of features that arrive in batches, in O(D²) memory whatever N (50,000 Inception
    features would be 800 MB as float64). Sums are taken about the first batch's mean, so the
    covariance (S2 - N m mᵀ) / (N - 1) of the shifted features loses nothing to cancellation; the result
    equals gaussian_stats of all the features up to float64 rounding."""

    def __init__(self):
        self.n = 0
        self.shift = self.s1 = self.s2 = None

    def add(self, features) -> None:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {x.shape}")
        if len(x) == 0:
            return
        if self.shift is None:
            d = x.shape[1]
            self.shift, self.s1, self.s2 = x.mean(axis=0), np.zeros(d), np.zeros((d, d))
        y = x - self.shift
        self.s1 += y.sum(axis=0)
        self.s2 += y.T @ y
        self.n += len(x)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors, got {self.n}")
        m = self.s1 / self.n
        cov = (self.s2 - self.n * np.outer(m, m)) / (self.n - 1)
        return self.shift + m, _symmetric(cov)
