"""The score sets gm reports for generated samples, as pure functions of arrays.

* `feature_scores`: on features of a trained network (the MNIST judge's):
  Fréchet distance, KID x 10^3, precision / recall / density / coverage.
* `image_set_scores`: for photo folders (images in [0, 1]): the sliced
  Wasserstein distance, precision / recall / density / coverage on random-CNN
  features (`gm.metrics.random_cnn`, always), and with an Inception feature
  extractor also the FID and the same four numbers on Inception features.

Families and eval commands call these; they hold no state.
"""

from typing import Callable, Dict, Optional

import numpy as np

from gm.metrics import distances, prdc as prdc_lib, random_cnn, swd as swd_lib

FOLDER_MAX_REAL = 1000  # Photos compared per score: SWD and features cost grows with the count.
FOLDER_MIN_SAMPLES = 256


def feature_scores(generated: np.ndarray, real: np.ndarray) -> Dict[str, float]:
  """Features [M, D] of samples vs [N, D] of real images -> the judge's numbers.

  Keys: 'frechet', 'kid_x1e3' and 'kid_x1e3_std' (KID x 10^3 over 100 subsets
  of at most 1,000; older runs logged the raw value as 'kid'), 'precision',
  'recall', 'density', 'coverage' (k = 5).
  """
  kid, kid_std = distances.kernel_distance(generated, real)
  return {"frechet": distances.frechet_distance(generated, real),
          "kid_x1e3": distances.KID_SCALE * kid, "kid_x1e3_std": distances.KID_SCALE * kid_std,
          **prdc_lib.prdc(real, generated)}


def _prdc_equal_counts(generated: np.ndarray, real: np.ndarray, suffix: str) -> Dict[str, float]:
  """PRDC on as many samples as real features (their expected values assume N = M)."""
  n = min(len(generated), len(real))
  return {f"{k}_{suffix}": v for k, v in prdc_lib.prdc(real[:n], generated[:n]).items()}


def image_set_scores(generated: np.ndarray, real: np.ndarray,
                     inception: Optional[Callable[[np.ndarray], np.ndarray]] = None
                     ) -> Dict[str, float]:
  """Images [M, H, W, C] of samples vs [N, H, W, C] real ones, all in [0, 1].

  Keys: 'swd_<size>' per pyramid level and 'swd' (x 10^3, PGGAN's); 'kid_randcnn_x1e3' and
  'kid_randcnn_x1e3_std' (KID x 10^3 on the random-CNN features of all M and N images, mean and
  spread over its subsets); 'precision_randcnn', 'recall_randcnn', 'density_randcnn',
  'coverage_randcnn'; with `inception`
  (images -> features, e.g. `gm.metrics.inception.InceptionFeatures`) also 'fid'
  (all M samples) and the four '*_inception'. Precision and the rest use the
  first min(M, N) of each set.
  """
  scores = swd_lib.swd(generated, real)
  embed = random_cnn.features_for(np.shape(real)[-1])
  fg, fr = embed(generated), embed(real)
  kid, kid_std = distances.kernel_distance(fg, fr)
  scores["kid_randcnn_x1e3"] = distances.KID_SCALE * kid
  scores["kid_randcnn_x1e3_std"] = distances.KID_SCALE * kid_std
  scores.update(_prdc_equal_counts(fg, fr, "randcnn"))
  if inception is not None:
    fg, fr = inception(generated), inception(real)
    scores["fid"] = distances.frechet_distance(fg, fr)
    scores.update(_prdc_equal_counts(fg, fr, "inception"))
  return scores
