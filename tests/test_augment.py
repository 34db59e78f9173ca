"""Augmentation reaches the right tensors, and DiffAugment's ops follow their formulas.

The assignment's safe augmentation (flip, zoom, rotate) is of real images only: the
generator is trained against D's view of its raw samples. DiffAugment applies one
policy to everything D sees, real and fake, in both updates, and stays
differentiable so the generator's gradient passes through it. A wrong placement
trains silently (e.g. D learns "augmented means real"); these tests record what
the discriminator is given.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm import families
from gm.data import augment as A
from tests.conftest import load_config

N = 8  # Real images per discriminator step.


def _gan(flip=False, zoom=0.0, rotate=0.0, diff=""):
  """The MLP GAN on 16x16 RGB 'photos' (as the cake configs: [0, 1] data), tiny layers."""
  c = load_config("gan_mlp_mnist", "smoke")
  c.model.g.hidden, c.model.g.out_shape, c.model.d.hidden = (16,), (16, 16, 3), (16,)
  c.model.noise_dim = 8
  c.augment.flip, c.augment.zoom, c.augment.rotate, c.augment.diff = flip, zoom, rotate, diff
  family = families.get(c)
  family.total_steps = 10
  rng = np.random.default_rng(0)
  # No pixel is 0 or 255 (so no input is exactly 0 or ±1): zeros D sees come from augmentation.
  batch = {"image": rng.integers(1, 255, (N, 16, 16, 3), dtype=np.uint8),
           "label": np.zeros(N, np.int32)}
  return family, family.init(jax.random.PRNGKey(0), batch), batch


def _d_and_g_inputs(**augment):
  """What D is given in one D update and one G update (same state and keys whatever the
  augmentation), recorded through jit and grad; and G's gradient norm in the G update."""
  family, state, batch = _gan(**augment)
  seen, discriminate = [], family.discriminate

  def recording(d, x, *args, **kwargs):
    jax.debug.callback(lambda v: seen.append(np.asarray(v)), x, ordered=True)
    return discriminate(d, x, *args, **kwargs)

  family.discriminate = recording  # This family instance only.
  x = family.inputs(batch)
  after_d, _ = family.d_step(state, x, None, jax.random.PRNGKey(1))
  _, metrics = family.g_step(after_d, x[:N], None, jax.random.PRNGKey(2))
  jax.effects_barrier()
  d_input, g_input = seen
  return np.asarray(x), d_input, g_input, float(metrics["g_grad_norm"])


@functools.lru_cache(maxsize=None)
def _plain():
  """The same without augmentation (shared by the tests of this file)."""
  return _d_and_g_inputs()


def test_flip_zoom_rotate_touch_real_images_only():
  """D's real half is warped; its fake half and the G step's fakes are the raw samples."""
  x, plain_d, plain_g, _ = _plain()
  np.testing.assert_array_equal(plain_d[:N], x)  # Without augmentation D sees the data.
  _, aug_d, aug_g, _ = _d_and_g_inputs(flip=True, zoom=0.2, rotate=15.0)
  assert all(not np.allclose(aug_d[i], x[i], atol=1e-3) for i in range(N))  # Every real warped.
  np.testing.assert_array_equal(aug_d[N:], plain_d[N:])  # Fakes untouched in the D step ...
  np.testing.assert_array_equal(aug_g, plain_g)          # ... and in the G step.


def _cut(augmented, plain):
  """Per image: the pixels (over all channels) zeroed by augmentation."""
  return ((augmented == 0) & (plain != 0)).all(-1)


def test_diff_augment_one_policy_for_real_and_fake_in_both_steps():
  """Cutout (a zeroed 8x8 square, clipped at the border) in every image D sees: the real and
  the fake half in the D step, the fakes in the G step; G's gradient passes through it."""
  _, plain_d, plain_g, plain_norm = _plain()
  _, cut_d, cut_g, cut_norm = _d_and_g_inputs(diff="cutout")
  for image in itertools.chain(_cut(cut_d, plain_d), _cut(cut_g, plain_g)):
    rows, cols = np.nonzero(image)
    assert 16 <= len(rows) <= 64
    assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # A box.
  # Nothing but the square changes: the rest of each image is what D sees without DiffAugment.
  np.testing.assert_array_equal(np.where(cut_d == 0, plain_d, cut_d), plain_d)
  np.testing.assert_array_equal(np.where(cut_g == 0, plain_g, cut_g), plain_g)
  # Gradients reach G through the augmentation (a stop_gradient would make this 0) and change.
  assert cut_norm > 0 and plain_norm > 0 and cut_norm != plain_norm


def test_translation_moves_each_image_by_a_whole_shift_with_zero_fill():
  """Each output is its input shifted by (dy, dx) in [-2, 2]^2 (1/8 of 16 px), zeros shifted
  in; the shifts are drawn per image and cover both directions of both axes."""
  x = np.random.default_rng(0).uniform(0.1, 1.0, (64, 16, 16, 3)).astype(np.float32)
  out = np.asarray(A.diff_augment(jnp.asarray(x), jax.random.PRNGKey(0), ("translation",)))
  shifts = []
  for a, o in zip(x, out):
    found = []
    for dy, dx in itertools.product(range(-2, 3), repeat=2):
      want = np.zeros_like(a)
      want[max(dy, 0):16 + min(dy, 0), max(dx, 0):16 + min(dx, 0)] = \
          a[max(-dy, 0):16 + min(-dy, 0), max(-dx, 0):16 + min(-dx, 0)]
      if np.array_equal(o, want):
        found.append((dy, dx))
    assert len(found) == 1, found
    shifts.append(found[0])
  dys, dxs = zip(*shifts)
  assert {min(dys), max(dys), min(dxs), max(dxs)} == {-2, 2}
  assert sum(s == (0, 0) for s in shifts) < 16  # Mostly moved (1 in 25 stays put).


def test_color_is_brightness_saturation_contrast_with_the_reference_ranges():
  """Color (DiffAugment's reference): x + b, b in [-0.5, 0.5); saturation s in [0, 2) about each
  pixel's channel mean; contrast c in [0.5, 1.5) about the image mean. So each output is
  M + b + c * s * (x - m) + c * (m - M) (m: pixel channel means, M: image mean): fitted per
  image, exactly, with the three parameters in range and drawn per image."""
  x = np.random.default_rng(1).uniform(size=(32, 8, 8, 3)).astype(np.float32).astype(np.float64)
  out = np.asarray(A.diff_augment(jnp.asarray(x, jnp.float32), jax.random.PRNGKey(0),
                                  ("color",)), np.float64)
  params = []
  for a, o in zip(x, out):
    m = a.mean(-1, keepdims=True)
    big_m = a.mean()
    design = np.stack([(a - m).ravel(), np.broadcast_to(m - big_m, a.shape).ravel(),
                       np.ones(a.size)], 1)
    (cs, c, b), *_ = np.linalg.lstsq(design, o.ravel() - big_m, rcond=None)
    np.testing.assert_allclose(design @ [cs, c, b] + big_m, o.ravel(), atol=1e-5)
    params.append((b, cs / c, c))
  b, s, c = np.asarray(params).T
  assert (-0.5 <= b).all() and (b < 0.5).all() and b.std() > 0.15  # uniform: std 0.29
  assert (0 <= s).all() and (s < 2).all() and s.std() > 0.3         # std 0.58
  assert (0.5 <= c).all() and (c < 1.5).all() and c.std() > 0.15   # std 0.29


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",)])
def test_each_diff_augment_is_drawn_per_image(policy):
  """Two copies of one image in a batch come out differently (per-image draws)."""
  x = jnp.broadcast_to(jnp.asarray(np.random.default_rng(2).uniform(0.1, 1.0, (1, 16, 16, 3)),
                                   jnp.float32), (8, 16, 16, 3))
  out = np.asarray(A.diff_augment(x, jax.random.PRNGKey(3), policy))
  assert len({o.tobytes() for o in out}) > 4
