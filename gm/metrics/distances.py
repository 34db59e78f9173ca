"""Fréchet distance and kernel (KID) distance between two sets of features (numpy, float64)."""

import warnings
from typing import Tuple

import numpy as np
from scipy import linalg


def gaussian_stats(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Mean [D] and covariance [D, D] (unbiased) of features [N, D]."""
  f = np.asarray(features, np.float64)
  return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
  """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of Gaussians fitted to [N, D] features."""
  mu1, s1 = gaussian_stats(a)
  mu2, s2 = gaussian_stats(b)
  with warnings.catch_warnings():  # Rank-deficient covariances (few samples, dead units) are expected.
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    covmean = linalg.sqrtm(s1 @ s2)
  if not np.isfinite(covmean).all():  # Singular product: regularise as the FID reference code.
    eps = 1e-6 * np.eye(len(s1))
    covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
  covmean = covmean.real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kernel_distance(a: np.ndarray, b: np.ndarray, subsets: int = 10, subset_size: int = 1000,
                    seed: int = 0) -> Tuple[float, float]:
  """KID: unbiased MMD^2 with the kernel (x.y / D + 1)^3, averaged over random subsets.

  Returns:
    (mean, std) over the subsets.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  m = min(subset_size, len(a), len(b))
  rng = np.random.default_rng(seed)
  d = a.shape[1]
  values = []
  for _ in range(subsets):
    x = a[rng.choice(len(a), m, replace=False)]
    y = b[rng.choice(len(b), m, replace=False)]
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                  + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
  return float(np.mean(values)), float(np.std(values))
