"""Sample-quality metrics: FID from Gaussian feature statistics, the FID Inception network, Inception
Score, a cached MNIST-like domain classifier, and mode metrics for the 2-D toy mixtures.
Each module has one job; nothing here downloads anything."""

from .classifier import CODE_VERSION, DomainCNN, class_coverage, class_kl, load_or_train, mean_confidence
from .classifier import features as classifier_features
from .classifier import probs as classifier_probs
from .classifier import train_classifier
from .fid import RunningStats, frechet_distance, gaussian_stats
from .inception import (FIDInceptionV3, InceptionWeightsMismatch, InceptionWeightsMissing,
                        features_and_logits, load_inception)
from .inception_score import inception_score
from .toy import toy_metrics

__all__ = [
    "CODE_VERSION", "DomainCNN", "class_coverage", "class_kl", "classifier_features", "classifier_probs",
    "load_or_train", "mean_confidence", "train_classifier", "RunningStats", "frechet_distance", "gaussian_stats",
    "FIDInceptionV3",
    "InceptionWeightsMismatch", "InceptionWeightsMissing", "features_and_logits", "load_inception",
    "inception_score", "toy_metrics",
]
