"""`make_evaluator` (gm/train/evaluate.py) with a partial last batch: its means are per-example means of the test set.

The evaluator pads the test set to whole batches with copies of example 0. Those
rows must not count: not in the per-example means, and not in batch-level
statistics such as the GAN's sample spread (`real_std`, `fake_std`), which the
collapse warning compares (copies of one image shrink a batch's spread).
"""

import jax
import numpy as np
import pytest

from gm.train.evaluate import make_evaluator
from tests.conftest import tiny

N, BATCH = 70, 32  # Three batches: 32, 32 and 6 test images (+ 26 padding rows).


def _family_and_state(name):
  t = tiny(name, num_test=N)
  assert len(t.dataset.test["image"]) == N
  return t.family, t.state, t.dataset.test


def test_gan_means_and_spreads_leave_the_padding_rows_out():
  """D(x) is the mean over the N test images (one call on all of them), D(G(z)) the mean over
  the valid rows of each batch's fakes; real_std / fake_std are the spreads (numpy) of each
  batch's valid rows, weighted by its number of test images."""
  family, state, test = _family_and_state("gan_mlp_mnist")
  key = jax.random.PRNGKey(1)
  got = make_evaluator(family, test, BATCH)(state, key)
  sig = lambda v: 1 / (1 + np.exp(-np.asarray(v, np.float64)))
  d_fake, real_std, fake_std = [], [], []
  for i in range(3):
    rows = np.arange(i * BATCH, min(N, (i + 1) * BATCH))
    padded = np.concatenate([rows, np.zeros(BATCH - len(rows), int)])  # As the evaluator pads.
    batch = {k: v[padded] for k, v in test.items()}
    x = family.inputs(batch)
    fake, _ = family.generate(state.g, family.noise(jax.random.fold_in(key, i), BATCH))
    valid = slice(0, len(rows))
    d_fake.append(sig(family.discriminate(state.d, fake)[0])[valid])
    real_std += [np.asarray(x, np.float64)[valid].std(0).mean()] * len(rows)
    fake_std += [np.asarray(fake, np.float64)[valid].std(0).mean()] * len(rows)
  expected = {"d_real": sig(family.discriminate(state.d, family.inputs(test))[0]).mean(),
              "d_fake": np.concatenate(d_fake).mean(),
              "real_std": np.mean(real_std), "fake_std": np.mean(fake_std)}
  for k, v in expected.items():
    assert got[k] == pytest.approx(v, rel=2e-5), k
  # The last batch: 6 test images, and 26 padding copies of example 0 that would shrink its spread.
  x = np.asarray(family.inputs(test), np.float64)
  with_padding = np.concatenate([x[64:], np.repeat(x[:1], BATCH - 6, 0)])
  assert with_padding.std(0).mean() < 0.8 * x[64:].std(0).mean()
