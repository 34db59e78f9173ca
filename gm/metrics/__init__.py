"""Quality metrics: distances between feature sets (the MNIST judge that provides features for
MNIST is gm.judge; photo runs use random-CNN features and SWD)."""

from gm.metrics.distances import frechet_distance, gaussian_stats, kernel_distance
from gm.metrics.scores import feature_scores, image_set_scores

__all__ = ["feature_scores", "frechet_distance", "gaussian_stats", "image_set_scores",
           "kernel_distance"]
