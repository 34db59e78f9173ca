"""Quality metrics: distances between feature sets and the MNIST judge that provides them."""

from gm.metrics.distances import frechet_distance, gaussian_stats, kernel_distance
from gm.metrics.judge import Judge, load_judge

__all__ = ["Judge", "frechet_distance", "gaussian_stats", "kernel_distance", "load_judge"]
