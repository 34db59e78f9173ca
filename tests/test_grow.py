"""The growing 64x64 recipe (configs/cake_grow.py): the first stage computes what the full
model computes at alpha 0, the fade schedule, and a run across the stages resumes bit-exactly."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gm import families, models
from gm.train import loop
from gm.errors import ConfigError
from gm.models import gan as M
from tests.conftest import assert_trees_equal, load_config

G_WIDTHS, D_WIDTHS = (8, 8, 4, 4, 4), (4, 4, 4, 8, 8)


def test_first_stage_equals_the_full_model_at_alpha_zero_and_skips_the_64px_blocks():
  g = M.GrowingDCGANGenerator(size=64, start=32, widths=G_WIDTHS)
  d = M.GrowingDCGANDiscriminator(size=64, start=32, widths=D_WIDTHS)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 5))
  gv = g.init(jax.random.PRNGKey(1), z)
  x = g.apply(gv, z, alpha=0.0)
  assert x.shape == (3, 64, 64, 3)
  np.testing.assert_array_equal(g.apply(gv, z, res=32), x)
  # At 32 px the output is a 32 px image upsampled: every 2x2 block is one colour.
  np.testing.assert_array_equal(x[:, ::2, ::2], x[:, 1::2, 1::2])
  assert not np.allclose(g.apply(gv, z, alpha=1.0), x)
  dv = d.init(jax.random.PRNGKey(2), x, train=False)
  a = d.apply(dv, x, train=False, alpha=0.0)
  np.testing.assert_array_equal(d.apply(dv, x, train=False, res=32), a)
  assert not np.allclose(d.apply(dv, x, train=False, alpha=1.0), a)
  # The 64 px blocks exist (init) but get no gradient at 32 px.
  grads = jax.grad(lambda p: g.apply({"params": p}, z, res=32).sum())(gv["params"])
  assert not np.any(grads["up_64"]["kernel"]) and not np.any(grads["to_rgb_64"]["kernel"])
  assert np.any(grads["to_rgb_32"]["kernel"])
  # The halfway blend is the mean of the two paths before the tanh.
  half = np.arctanh(np.clip(np.asarray(g.apply(gv, z, alpha=0.5)), -0.999999, 0.999999))
  ends = [np.arctanh(np.clip(np.asarray(g.apply(gv, z, alpha=t)), -0.999999, 0.999999))
          for t in (0.0, 1.0)]
  np.testing.assert_allclose(half, (ends[0] + ends[1]) / 2, atol=1e-3)


def test_fade_schedule_and_the_one_line_error_for_models_that_do_not_grow():
  c = load_config("cake_grow", "smoke")
  family = families.get(c)
  family.steps_per_epoch = 10
  alpha = [float(family.fade_alpha(jnp.asarray(s))) for s in (0, 19, 20, 25, 30, 99)]
  assert alpha == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]  # 2 epochs at 32 px, 1 fading.
  c.model.generator, c.model.g = "dcgan", models.fields_config(M.GENERATORS.get("dcgan"))
  with pytest.raises(ConfigError, match="dcgan_grow"):
    families.get(c)


def _photos(d, n):
  d.mkdir()
  rng = np.random.default_rng(0)
  for i in range(n):
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / f"{i:02d}.png")


def test_a_run_across_the_stages_logs_them_and_resumes_bit_exactly(tmp_path):
  _photos(tmp_path / "photos", 48)

  def config(epochs):
    c = load_config("cake_grow", "smoke")
    c.data.dir, c.data.cache_dir = str(tmp_path / "photos"), str(tmp_path / "cache")
    c.train.progress, c.train.tensorboard, c.train.num_epochs = False, False, epochs
    c.eval.score_every = 0
    return c

  straight = loop.train_and_evaluate(config(4), str(tmp_path / "a"))
  loop.train_and_evaluate(config(3), str(tmp_path / "b"))  # Stopped inside the fade.
  resumed = loop.train_and_evaluate(config(4), str(tmp_path / "b"), allow_config_change=True)
  assert_trees_equal(straight.model, resumed.model)
  records = [json.loads(line) for line in open(tmp_path / "a" / "metrics.jsonl")]
  assert [r["train/grow_res"] for r in records] == [32.0, 32.0, 64.0, 64.0]
  # One step per epoch (36 photos, batch 32): the fade's one step starts at alpha 0.
  assert [r["train/grow_alpha"] for r in records] == [0.0, 0.0, 0.0, 1.0]
