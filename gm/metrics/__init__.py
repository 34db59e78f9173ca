"""Quality metrics: distances between feature sets and the MNIST judge that provides them."""

from gm.metrics.distances import frechet_distance, gaussian_stats, kernel_distance
from gm.metrics.judge import Judge, load_judge
from gm.metrics.scores import feature_scores, image_set_scores

__all__ = ["Judge", "feature_scores", "frechet_distance", "gaussian_stats", "image_set_scores",
           "kernel_distance", "load_judge"]
