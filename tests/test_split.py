"""gm.metrics.split: the split-half measure's halves, its pairing with the floor, its standardised
KID against an independent computation, and that it tells a shifted distribution from the real one."""

import numpy as np
import pytest
import skimage.data

from gm.errors import UserError
from gm.metrics import distances, random_cnn, split, swd


def _photos(n: int, size: int = 16, seed: int = 0, sources=None) -> np.ndarray:
  """n random size x size crops of scikit-image photos (the astronaut and coffee), in [0, 1]."""
  rng = np.random.default_rng(seed)
  sources = sources or (skimage.data.astronaut(), skimage.data.coffee())
  out = []
  for i in range(n):
    img = sources[i % len(sources)]
    y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
    out.append(img[y:y + size, x:x + size])
  return np.stack(out).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def ref():
  return split.Reference(_photos(96), splits=4, seed=3)


def test_halves_are_disjoint_equal_seeded_and_differ_between_splits():
  pairs = split.halves(11, splits=3, seed=1)
  for a, b in pairs:
    assert len(a) == len(b) == 5 and not set(a) & set(b) and set(a) | set(b) <= set(range(11))
  assert [p[0].tolist() for p in pairs] == [p[0].tolist() for p in split.halves(11, 3, 1)]
  assert len({tuple(a) for a, _ in pairs}) == 3
  with pytest.raises(UserError, match="at least 4 real images"):
    split.halves(3)
  with pytest.raises(UserError, match="at least 1 split"):
    split.halves(10, splits=0)


def test_a_sampler_returning_the_other_half_reproduces_the_floor_exactly(ref):
  """The generator's scores use split k's half B_k, patch positions and directions: given A_k
  itself, it returns the floor's values bit for bit (so gen_k and floor_k pair up)."""
  flo = split.floor(ref)
  gen = split.generator(lambda k, n: ref.real[ref.halves[k][0]], ref)
  assert gen == flo
  s = split.summary(gen, flo)
  assert s["ratio"] == pytest.approx(1.0) and s["ratio_min"] == pytest.approx(1.0)
  assert s["floor_swd_min"] <= s["floor_swd"] <= s["floor_swd_max"]


def test_scores_are_swd_and_kid_on_features_standardised_by_the_reference(ref):
  """Independently: SWD of the images against B_k with seed + k, and KID of random-CNN features
  z-scored with the mean and std of all reference images' features (std floored at a tenth of
  the median)."""
  images = _photos(48, seed=9)
  b = ref.halves[1][1]
  embed = random_cnn.features_for(3)
  f_all = embed(ref.real)
  mu, sd = f_all.mean(0), f_all.std(0)
  sd = np.where(sd < 0.1 * np.median(sd), 0.1 * np.median(sd), sd)
  kid, _ = distances.kernel_distance((embed(images) - mu) / sd, (f_all[b] - mu) / sd, seed=4)
  got = ref.scores(images, 1)
  assert got["swd"] == pytest.approx(swd.swd(images, ref.real[b], seed=4)["swd"], rel=1e-12)
  assert got["kid_z_x1e3"] == pytest.approx(1e3 * kid, rel=1e-5)


def test_a_shifted_distribution_scores_above_the_floors_spread(ref):
  """Photos of the same kind score near the floor; crops of other photos score clearly above it
  on both SWD and the standardised KID."""
  flo = split.floor(ref)
  same = split.summary(split.generator(lambda k, n: _photos(n, seed=100 + k), ref), flo)
  def shifted(k, n):  # The cat's fur and the rocket's sky instead of the astronaut and coffee.
    return _photos(n, seed=100 + k, sources=(skimage.data.chelsea(), skimage.data.rocket()))
  off = split.summary(split.generator(shifted, ref), flo)
  assert same["ratio"] < 1.25 and same["kid_z_x1e3"] < max(flo["kid_z_x1e3"]) + 50
  assert off["ratio"] > same["ratio"] + 0.5 and off["ratio_min"] > same["ratio"]
  assert off["kid_min"] > 5 * max(abs(v) for v in flo["kid_z_x1e3"])


def test_a_sampler_of_the_wrong_shape_is_a_one_line_error(ref):
  with pytest.raises(UserError, match=r"the sampler returned \(3, 16, 16, 3\); expected"):
    split.generator(lambda k, n: np.zeros((3, 16, 16, 3), np.float32), ref)


def test_copying_flags_a_generator_that_reproduces_its_training_photos():
  rng = np.random.default_rng(0)
  train, held = rng.uniform(size=(60, 4, 4, 3)), rng.uniform(size=(20, 4, 4, 3))
  d = split.nearest_distances(held, train)  # Against a plain loop.
  loop = [min(np.linalg.norm((h - t).ravel()) for t in train) for h in held]
  np.testing.assert_allclose(d, loop, rtol=1e-9)
  fresh = split.copying(rng.uniform(size=(40, 4, 4, 3)), train, held)
  copies = split.copying(train[:40] + rng.normal(0, 1e-3, (40, 4, 4, 3)), train, held)
  assert 0.8 < fresh["ratio"] < 1.25 and fresh["share_nearer"] < 0.1
  assert copies["ratio"] < 0.01 and copies["share_nearer"] == 1.0


def test_heldout_kid_pairs_each_split_and_ranks_a_foreign_generator_above_the_floor(ref):
  held = _photos(32, seed=9)  # Other crops of the same two photos.
  same = split.heldout_kid(ref, lambda k, n: ref.real[ref.halves[k][0]], held)
  assert len(same["floor"]) == len(ref.halves)
  np.testing.assert_allclose(same["generator"], same["floor"])  # Half A_k as the samples of draw k.
  rocket = split.heldout_kid(
      ref, lambda k, n: _photos(n, seed=20 + k, sources=(skimage.data.rocket(),)), held)
  assert np.mean(rocket["generator"]) > max(rocket["floor"]) + 100
