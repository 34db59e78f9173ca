"""Fréchet distance and kernel (KID) distance between two sets of features (numpy, float64)."""

import warnings
from typing import Tuple

import numpy as np
from scipy import linalg

KID_SCALE = 1e3  # Reported KID = KID_SCALE x the MMD^2 estimate, as in papers.


def gaussian_stats(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Mean [D] and covariance [D, D] (unbiased) of features [N, D]."""
  f = np.asarray(features, np.float64)
  return f.mean(0), np.cov(f, rowvar=False)


def _trace_sqrt_product_low_rank(a: np.ndarray, b: np.ndarray) -> float:
  """Tr (S_a S_b)^(1/2) through an N x N matrix, for features a [N_a, D], b [N_b, D] with N <= D.

  With centred A, B: S_a S_b = A^T (A B^T B) / c, whose non-zero eigenvalues are
  those of C C^T / c (and of C^T C / c), C = A B^T [N_a, N_b], c = (N_a - 1)(N_b - 1).
  That matrix is symmetric positive semi-definite, so the trace of the square
  root is the sum of the square roots of its eigenvalues: exact, with no D x D
  matrix square root (about a minute on a 2-core CPU for D = 2048).
  """
  a = a - a.mean(0)
  b = b - b.mean(0)
  c = a @ b.T  # [N_a, N_b]
  gram = c @ c.T if len(a) <= len(b) else c.T @ c
  eig = np.linalg.eigvalsh(gram / ((len(a) - 1) * (len(b) - 1)))
  return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
  """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of Gaussians fitted to [N, D] features.

  With fewer samples than dimensions (N <= D; e.g. a few hundred 2,048-d
  Inception features) the covariances are rank-deficient, and the trace of the
  square root is computed exactly in the N-dimensional sample space instead.
  """
  if min(len(a), len(b)) <= np.shape(a)[1]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    tr1 = np.sum((a - mu1) ** 2) / (len(a) - 1)  # Tr S_a
    tr2 = np.sum((b - mu2) ** 2) / (len(b) - 1)
    return float(np.sum((mu1 - mu2) ** 2) + tr1 + tr2 - 2 * _trace_sqrt_product_low_rank(a, b))
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


def kernel_distance(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> Tuple[float, float]:
  """KID: unbiased MMD^2 with the kernel (x.y / D + 1)^3, averaged over random subsets.

  As StyleGAN2-ADA's `compute_kid` and clean-fid's `kernel_distance`: `subsets`
  (100) draws without replacement of m = min(subset_size (1000), N_a, N_b)
  rows of each set. Raw value, as they return it; papers print it x 10^3
  (`KID_SCALE`; gm's keys `kid_x1e3`).

  Returns:
    (mean, std) over the subsets.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  m = min(subset_size, len(a), len(b))
  rng = np.random.default_rng(seed)
  d = a.shape[1]
  cube = lambda t: t * t * t  # (Faster than ** 3, which calls pow per element.)
  values = []
  for _ in range(subsets):
    x = a[rng.choice(len(a), m, replace=False)]
    y = b[rng.choice(len(b), m, replace=False)]
    kxx, kyy, kxy = (cube(x @ x.T / d + 1), cube(y @ y.T / d + 1), cube(x @ y.T / d + 1))
    values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                  + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
  return float(np.mean(values)), float(np.std(values))
