"""Scores of a run's samples, for any family that can sample (`Family.sample`).

What a run is scored by is the family's declaration `Family.scoring`:
- 'judge': the MNIST judge's distances (`Judge.distances`) of samples to as many
  test images, plus the judge's label accuracy for conditional samples;
- 'folder': `image_set_scores` of samples vs up to `FOLDER_MAX_REAL` photos (SWD,
  random-CNN precision/recall/density/coverage; with Inception features FID and
  the same on them);
- 'canvas': the conditional VAE's requests (`gm.metrics.canvas`);
- '': none.
"""

import functools
from typing import Any, Dict, Optional

import jax
import numpy as np

from gm.data import to_float
from gm.metrics import canvas, scores as scores_lib

SCORINGS = ("judge", "folder", "canvas", "")


def needs_judge(family) -> bool:
  """Whether the family's scores need the MNIST judge."""
  return family.scoring in ("judge", "canvas")


@functools.lru_cache(maxsize=4)
def inception_features(weights: str, batch_size: int):
  """FID-Inception features (`gm.metrics.inception`) of a weights file, loaded once."""
  from gm.metrics import inception  # pylint: disable=g-import-not-at-top
  return inception.InceptionFeatures(weights, batch_size=batch_size)


def inception_of(config) -> Optional[Any]:
  """The Inception features of `eval.inception_weights`, or None when unset."""
  weights = config.eval.inception_weights
  return inception_features(weights, config.eval.batch_size) if weights else None


def sample_scores(family, state, judge, key: jax.Array, test, num: int = 2000,
                  inception=None, per_request: int = 5) -> Dict[str, float]:
  """Scores of `state`'s samples (see the module docstring); {} if the family has none.

  Args:
    family: the run's family.
    state: its model state.
    judge: the MNIST judge (`gm.judge.Judge`), or None for 'folder' scoring.
    key: the sampling key.
    test: the test set (uint8 images and labels).
    num: samples (and test images) per score.
    inception: Inception features for 'folder' scoring (`inception_of`), or None.
    per_request: 'canvas' samples per (label, cell).
  """
  if family.scoring == "folder":
    real = np.asarray(to_float(test["image"][:min(num, scores_lib.FOLDER_MAX_REAL)]))
    samples = family.sample(state, key, max(len(real), scores_lib.FOLDER_MIN_SAMPLES))
    return scores_lib.image_set_scores(samples, real, inception)
  if family.scoring == "judge":
    labels = np.arange(num) % family.num_classes if family.num_classes else None
    samples = family.sample(state, key, num, labels)
    out = judge.distances(samples, np.asarray(to_float(test["image"][:num])))
    if labels is not None:
      out["label_accuracy"] = float(np.mean(judge(samples)["labels"] == labels))
    return out
  if family.scoring == "canvas":
    labels, cells, images = canvas.sample_requests(family, state, key, per_request)
    out = canvas.score_canvases(judge, images, labels, cells)
    return {k: v for k, v in out.items() if isinstance(v, float)}
  return {}
