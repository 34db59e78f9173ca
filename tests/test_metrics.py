"""gm.metrics against independent computations: PGGAN's SWD, KID, PRDC, the random-CNN embedding."""

import numpy as np
import pytest
import skimage.data

from gm.errors import UserError
from gm.metrics import distances, prdc as P, random_cnn as R, scores, swd as S
from tests.reference import pggan_swd as ref


def _crops(n_per_image: int, size: int, seed: int = 0) -> np.ndarray:
  """Natural-image test photos: random size x size crops of four scikit-image pictures, [0, 1]."""
  rng = np.random.default_rng(seed)
  out = []
  for img in (skimage.data.coffee(), skimage.data.astronaut(), skimage.data.chelsea(),
              skimage.data.rocket()):
    ys = rng.integers(0, img.shape[0] - size, n_per_image)
    xs = rng.integers(0, img.shape[1] - size, n_per_image)
    out += [img[y:y + size, x:x + size] for y, x in zip(ys, xs)]
  return np.stack(out) / 255.0


# --- sliced Wasserstein distance: gm vs PGGAN's definitions ----------------------------------


@pytest.mark.parametrize("size", [64, 48, 40, 32, 28])
def test_swd_pyramid_levels_and_borders_are_pggans(size):
  """Same levels (res, res // 2, ... >= 16) and the same Laplacian pyramid, mirrored borders."""
  images = np.random.default_rng(size).uniform(size=(2, size, size, 3))
  expected = ref.laplacian_pyramid(np.transpose(images * 255.0, (0, 3, 1, 2)),
                                   len(ref.resolutions(size)))
  ours = S.laplacian_pyramid(images)
  assert S.resolutions(size) == ref.resolutions(size)
  assert [lv.shape[1] for lv in ours] == ref.resolutions(size)
  for mine, theirs in zip(ours, expected):
    np.testing.assert_allclose(255.0 * np.transpose(mine, (0, 3, 1, 2)), theirs, atol=2e-3)


def test_swd_patches_cover_pggans_positions_and_normalise_per_channel():
  # A level whose pixels hold their own coordinates: y * 100 + x, in every channel.
  h = w = 16
  coords = (np.arange(h)[:, None] * 100 + np.arange(w)[None, :]).astype(np.float32)
  level = np.repeat(coords[None, :, :, None], 3, axis=3)  # [1, 16, 16, 3]
  p = S.patches(level, 4000, 7, np.random.default_rng(0)).reshape(-1, 7, 7, 3)
  top, left = p[:, 0, 0, 0] // 100, p[:, 0, 0, 0] % 100
  # PGGAN's centres: randint(3, 16 - 3) = 3..12, i.e. top-left corners 0..9, all of them.
  assert set(top.astype(int)) == set(range(10)) and set(left.astype(int)) == set(range(10))
  np.testing.assert_array_equal(p[:, :, :, 0] - p[:, :1, :1, 0],
                                np.broadcast_to(coords[:7, :7], p.shape[:3]))
  # Normalisation as the reference's finalize_descriptors (mean/std per channel over all patches).
  desc = np.random.default_rng(1).normal([1.0, -2.0, 5.0], [0.5, 2.0, 3.0], (300, 7, 7, 3))
  theirs = ref.normalise(np.transpose(desc, (0, 3, 1, 2)))  # [N, C*49], channel-major
  mine = S._normalise(desc.reshape(300, -1), 3)               # [N, 49*C], pixel-major
  np.testing.assert_allclose(mine.reshape(300, 49, 3).transpose(0, 2, 1).reshape(300, -1),
                             theirs, rtol=1e-6, atol=1e-6)


def test_swd_takes_128_patches_per_image_and_4_x_128_directions(monkeypatch):
  seen, draws = [], []
  real_sw = S.sliced_wasserstein

  class Recorder:
    def __init__(self, rng):
      self.rng = rng

    def normal(self, size):
      draws.append(size)
      return self.rng.normal(size=size)

    def choice(self, *a, **k):
      return self.rng.choice(*a, **k)

  def spy(a, b, *args, rng=None, **kwargs):
    seen.append((a.shape, b.shape))
    return real_sw(a, b, *args, rng=Recorder(rng), **kwargs)

  monkeypatch.setattr(S, "sliced_wasserstein", spy)
  images = np.random.default_rng(0).uniform(size=(3, 32, 32, 3))
  out = S.swd(images[:2], images[1:])
  assert set(out) == {"swd_32", "swd_16", "swd"}
  assert seen == [((2 * 128, 7 * 7 * 3), (2 * 128, 7 * 7 * 3))] * 2
  assert draws == [(147, 128)] * 4 * 2  # Per level: 4 repeats of 128 directions.


class _Recorder:
  """Wraps the reference's RandomState and keeps every draw, in order."""

  def __init__(self, seed):
    self.rs, self.draws = np.random.RandomState(seed), []

  def randint(self, *args, **kwargs):
    self.draws.append(self.rs.randint(*args, **kwargs))
    return self.draws[-1]

  def randn(self, *args):
    self.draws.append(self.rs.randn(*args))
    return self.draws[-1]


class _Replay:
  """Stands in for gm's numpy Generator: hands out given draws in order, checking their shape
  and range."""

  def __init__(self, integers, normals):
    self.integers_, self.normals = list(integers), list(normals)

  def integers(self, low, high, size):
    out = self.integers_.pop(0)
    assert out.shape == size and low <= out.min() and out.max() < high
    return out

  def normal(self, size):
    out = self.normals.pop(0)
    assert out.shape == size
    return out


@pytest.mark.parametrize("size", [64, 48, 40])
def test_swd_with_pggans_own_draws_is_pggans_number_at_every_level(size, monkeypatch):
  """The same images and seed, and gm fed the reference's random draws: the same SWD per level
  to float32 rounding. Descriptor components are ordered differently (gm: row, column, channel;
  the reference: channel, column, row), so each direction is permuted to match."""
  real = _crops(4, size)
  fake = np.random.default_rng(1).uniform(size=real.shape)
  n, levels, c = len(real), len(ref.resolutions(size)), real.shape[-1]
  rec = _Recorder(0)
  theirs = ref.swd(real, fake, rec, reals_pass=False)
  # The reference's draws: per set (reals, then fakes) and level the centres' x, y; then per
  # level 4 direction matrices. gm's: per level the corners' y, x of the generated set, then
  # of the real set, then 4 direction matrices.
  centres = rec.draws[:4 * levels]
  corner = lambda i: centres[i].reshape(n, ref.NHOODS_PER_IMAGE) - ref.NHOOD_SIZE // 2
  perm = [ch * 49 + col * 7 + row for row in range(7) for col in range(7) for ch in range(c)]
  integers, normals = [], []
  for lv in range(levels):
    real_x, real_y = 2 * lv, 2 * lv + 1
    fake_x, fake_y = 2 * (levels + lv), 2 * (levels + lv) + 1
    integers += [corner(fake_y), corner(fake_x), corner(real_y), corner(real_x)]
    normals += [d[perm] for d in rec.draws[4 * levels + 4 * lv:4 * levels + 4 * lv + 4]]
  replay = _Replay(integers, normals)
  monkeypatch.setattr(S.np.random, "default_rng", lambda seed: replay)
  ours = S.swd(fake, real)
  assert not replay.integers_ and not replay.normals  # Every draw used, and no other.
  for r in ref.resolutions(size):
    assert ours[f"swd_{r}"] == pytest.approx(theirs[r], rel=1e-4), r
  assert ours["swd"] == pytest.approx(theirs["avg"], rel=1e-4)


def test_swd_agrees_with_pggans_reference_within_3_percent_at_every_level():
  """Both implementations on the same images and seeds; random draws differ (numpy Generator vs
  PGGAN's legacy stream), so each side is averaged over 8 seeds: one evaluation of the 16 px
  low-pass level varies by about 2 % with the directions alone."""
  for size in (64, 40):  # 40: a size that is not a power of two (levels 40, 20).
    real = _crops(4, size)
    fake = np.random.default_rng(1).uniform(size=real.shape)
    ours = [S.swd(fake, real, seed=s) for s in range(8)]
    theirs = [ref.swd(real, fake, np.random.RandomState(s), reals_pass=False) for s in range(8)]
    assert set(ours[0]) == {f"swd_{r}" for r in ref.resolutions(size)} | {"swd"}
    for r in ref.resolutions(size):
      mine, expected = np.mean([o[f"swd_{r}"] for o in ours]), np.mean([t[r] for t in theirs])
      assert mine == pytest.approx(expected, rel=0.03), (size, r)
    assert np.mean([o["swd"] for o in ours]) == pytest.approx(
        np.mean([t["avg"] for t in theirs]), rel=0.03)


def test_swd_refuses_images_below_pggans_coarsest_level():
  small = np.zeros((4, 12, 12, 3))
  with pytest.raises(UserError, match="at least 16x16"):
    S.swd(small, small)
  with pytest.raises(UserError, match="one shape"):
    S.swd(np.zeros((4, 32, 32, 3)), np.zeros((4, 16, 16, 3)))


# --- KID ---------------------------------------------------------------------------------------


def _kid_stylegan2_ada(gen, real, num_subsets, max_subset_size, seed=0):
  """StyleGAN2-ADA's compute_kid written out (generated rows drawn first, then real)."""
  draw, d = np.random.default_rng(seed), gen.shape[1]
  m = min(len(gen), len(real), max_subset_size)
  values = []
  for _ in range(num_subsets):
    x = gen[draw.choice(len(gen), m, replace=False)]
    y = real[draw.choice(len(real), m, replace=False)]
    a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
    b = (x @ y.T / d + 1) ** 3
    values.append(((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m)
  return np.mean(values), np.std(values)


def test_kid_is_100_subsets_of_at_most_1000_and_scores_report_it_x1e3():
  rng = np.random.default_rng(3)
  gen, real = rng.normal(size=(80, 4)), rng.normal(0.2, 1.0, size=(70, 4))
  mean, std = distances.kernel_distance(gen, real)  # Defaults: 100 subsets of min(1000, 70).
  expected = _kid_stylegan2_ada(gen, real, 100, 1000)
  assert (mean, std) == pytest.approx(expected, rel=1e-9)
  gen, real = rng.normal(size=(1003, 4)), rng.normal(0.2, 1.0, size=(1001, 4))
  assert distances.kernel_distance(gen, real, subsets=2) == pytest.approx(
      _kid_stylegan2_ada(gen, real, 2, 1000), rel=1e-9)  # Subsets of 1,000 rows.
  out = scores.feature_scores(gen[:100], real[:100])
  kid, kid_std = distances.kernel_distance(gen[:100], real[:100])
  assert (out["kid_x1e3"], out["kid_x1e3_std"]) == pytest.approx((1e3 * kid, 1e3 * kid_std))
  assert out["frechet"] == pytest.approx(distances.frechet_distance(gen[:100], real[:100]))
  expected = P.prdc(real[:100], gen[:100])  # Real features first: precision is the samples'.
  assert {k: out[k] for k in expected} == pytest.approx(expected) and expected["precision"] != (
      expected["recall"])
  assert "kid" not in out and set(out) == {"frechet", "kid_x1e3", "kid_x1e3_std", *expected}


# --- precision, recall, density, coverage --------------------------------------------------------


def _prdc_double_loop(real, fake, k):
  """The definitions, one pair of points at a time."""
  dist = lambda u, v: float(np.sqrt(((u - v) ** 2).sum()))

  def radii(x):
    out = []
    for i in range(len(x)):
      others = sorted(dist(x[i], x[j]) for j in range(len(x)) if j != i)
      out.append(others[k - 1])  # The k-th nearest other point.
    return out

  rr, rf = radii(real), radii(fake)
  n, m = len(real), len(fake)
  precision = sum(any(dist(real[i], fake[j]) < rr[i] for i in range(n)) for j in range(m)) / m
  recall = sum(any(dist(real[i], fake[j]) < rf[j] for j in range(m)) for i in range(n)) / n
  density = sum(dist(real[i], fake[j]) < rr[i] for i in range(n) for j in range(m)) / (k * m)
  coverage = sum(min(dist(real[i], fake[j]) for j in range(m)) < rr[i] for i in range(n)) / n
  return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("k, lattice", [(5, False), (2, False), (5, True)])
def test_prdc_matches_a_double_loop(k, lattice, monkeypatch):
  rng = np.random.default_rng(k)
  real = rng.normal(size=(40, 3))
  fake = np.concatenate([rng.normal(0.8, 1.0, size=(25, 3)), rng.normal(4.0, 0.3, size=(10, 3))])
  if lattice:  # Integer points: duplicates and exact distance ties ("inside" is strict).
    real, fake = np.round(real), np.round(fake)
  expected = _prdc_double_loop(real, fake, k)
  assert P.prdc(real, fake, k) == pytest.approx(expected, abs=1e-12)
  # The row blocks that bound memory for large sets give the same numbers.
  monkeypatch.setattr(P, "_rows", lambda n, cols: [(i, min(i + 7, n)) for i in range(0, n, 7)])
  assert P.prdc(real, fake, k) == pytest.approx(expected, abs=1e-12)


def test_prdc_equal_distributions_and_dropped_modes():
  rng = np.random.default_rng(0)
  same = P.prdc(rng.normal(size=(1500, 16)), rng.normal(size=(1500, 16)))
  assert 0.9 < same["density"] < 1.1 and same["coverage"] > 0.93  # E: 1 and 1 - 2^-5 = 0.97
  centres = 8.0 * np.eye(16)[:4]  # Four well-separated modes.
  real = centres[rng.integers(0, 4, 1600)] + rng.normal(size=(1600, 16))
  fake = centres[rng.integers(0, 2, 1600)] + rng.normal(size=(1600, 16))  # Modes 2, 3 dropped.
  dropped = P.prdc(real, fake)
  # Every sample is as realistic as before (k-NN precision is below 1 in 16-d even for equal
  # distributions), but half the data is missed.
  assert dropped["precision"] > same["precision"] - 0.05 and dropped["density"] > 0.9
  assert dropped["recall"] < same["recall"] - 0.3 and dropped["coverage"] < 0.6
  with pytest.raises(UserError, match="more than 5"):
    P.prdc(real[:5], fake)


# --- the random-CNN embedding ------------------------------------------------------------------


def _random_cnn_numpy(weights, images):
  """The embedding in plain numpy: 3x3 taps over a zero-padded map, 2x2 means, ReLU, global mean."""
  x = 2.0 * np.asarray(images, np.float64) - 1.0
  for i, w in enumerate(weights):
    if i:
      h, wd = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
      x = (x[:, 0:h:2, 0:wd:2] + x[:, 1:h:2, 0:wd:2]
           + x[:, 0:h:2, 1:wd:2] + x[:, 1:h:2, 1:wd:2]) / 4
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros(x.shape[:3] + (w.shape[3],))
    for dy in range(3):
      for dx in range(3):
        out += pad[:, dy:dy + x.shape[1], dx:dx + x.shape[2]] @ w[dy, dx]
    x = np.maximum(out, 0.0)
  return x.mean((1, 2))


def test_random_cnn_features_are_a_fixed_seed_net_computed_as_written():
  weights = R.random_weights(3)
  # He-normal draws from numpy's legacy stream (fixed across numpy versions), stage by stage.
  rs = np.random.RandomState(0)
  assert [w.shape for w in weights] == [(3, 3, 3, 32), (3, 3, 32, 64), (3, 3, 64, 128),
                                        (3, 3, 128, 256), (3, 3, 256, 256)]
  np.testing.assert_array_equal(weights[0], (rs.standard_normal((3, 3, 3, 32))
                                             * np.sqrt(2 / 27)).astype(np.float32))
  images = np.random.default_rng(0).uniform(size=(3, 20, 20, 3))  # 20 -> 10 -> 5 -> 2 -> 1
  feats = R.RandomCNNFeatures(3, batch_size=2)(images)  # Two batches, the last one padded.
  np.testing.assert_allclose(feats, _random_cnn_numpy(weights, images), rtol=1e-4, atol=1e-5)
  with pytest.raises(UserError, match="at least 16x16"):
    R.RandomCNNFeatures(3)(images[:, :8, :8])


def test_image_set_scores_on_photos():
  real = _crops(8, 32)
  noise = np.random.default_rng(2).uniform(size=real.shape)
  out = scores.image_set_scores(real[::2], real[1::2])
  assert set(out) == {"swd_32", "swd_16", "swd", "kid_randcnn_x1e3", "kid_randcnn_x1e3_std",
                      "precision_randcnn", "recall_randcnn", "density_randcnn", "coverage_randcnn"}
  assert out["recall_randcnn"] > 0.9 and out["coverage_randcnn"] > 0.9
  # KID on the random-CNN features of every image: StyleGAN2-ADA's estimator on those features.
  embed = R.features_for(3)
  kid, kid_std = distances.kernel_distance(embed(real[::2]), embed(real[1::2]))
  assert out["kid_randcnn_x1e3"] == pytest.approx(1e3 * kid)
  assert out["kid_randcnn_x1e3_std"] == pytest.approx(1e3 * kid_std)
  # Noise images embed as one tight cluster: a collapsed "generator" that covers no photo.
  bad = scores.image_set_scores(noise, real)
  assert bad["recall_randcnn"] < 0.1 and bad["coverage_randcnn"] < 0.3
  assert bad["swd"] > 2 * out["swd"]
  assert bad["kid_randcnn_x1e3"] > 10 * max(out["kid_randcnn_x1e3"], out["kid_randcnn_x1e3_std"])
