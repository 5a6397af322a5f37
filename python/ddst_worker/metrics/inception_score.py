"""Inception Score from classifier logits, as the original (Salimans et al. 2016) code computes it:
softmax over all 1008 outputs, the samples cut into `splits` contiguous parts, per part
exp( mean_i KL(p(y|x_i) || p(y)) ) with p(y) that part's mean prediction; report mean and std
(population std, numpy's default, as the original) over the parts.

Works on any number of classes, so it also gives the classifier-based score for MNIST-like data.
"""

import numpy as np


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """logits [N, C] -> (mean, std) of the score over `splits` parts; IS ranges from 1 to C."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] < splits or splits < 1:
        raise ValueError(f"need logits [N, C] with N >= splits >= 1, got {logits.shape} and splits={splits}")
    log_p = _log_softmax(logits)  # from logits, not log(softmax): no log(0) for confident predictions
    p = np.exp(log_p)
    n = len(p)
    scores = []
    for k in range(splits):
        part_p, part_log_p = p[k * n // splits:(k + 1) * n // splits], log_p[k * n // splits:(k + 1) * n // splits]
        log_py = np.log(part_p.mean(axis=0))
        # p * (log p - log p(y)); terms with p == 0 are 0 (and log p(y) may be -inf there)
        with np.errstate(invalid="ignore"):
            terms = np.where(part_p > 0, part_p * (part_log_p - log_py), 0.0)
        scores.append(np.exp(terms.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
