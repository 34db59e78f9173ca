"""Small-photo GANs: the 32x32 report's model, generator EMA, held-out photos, the report's inversion."""

import json
import os

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_trees_equal, load_config, tiny, tiny_config, trees_equal
from gm import config_utils, data, families, invert as inv
from gm.train import loop
from gm.errors import UserError
from gm.families.base import GeneratorView
from gm.models import gan as M


def _tiny_gan(name="gan_mlp_mnist", **train):
  return tiny_config(name, num_train=256, num_test=64, model__noise_dim=4,
                     **{f"train__{k}": v for k, v in train.items()})


def _init(c):
  t = tiny(c)
  return t.family, t.state, t.batch


def test_report32_parameter_counts_and_shapes_from_the_layer_formulas():
  """The 32x32 report's networks: 169,249 and 807,107 trainable parameters, as PyTorch counts."""
  conv = lambda k, i, o: k * k * i * o + o
  bn = lambda c: 2 * c  # PyTorch's trainable scale and shift (running statistics are buffers)
  d = (conv(4, 3, 32) + bn(32) + conv(4, 32, 64) + bn(64) + conv(4, 64, 128) + bn(128)
       + 5 * 5 * 128 + 1)
  g = (64 * 4 * 4 * 64 + 4 * 4 * 64 + conv(4, 64, 64) + conv(4, 64, 128) + conv(4, 128, 256)
       + conv(5, 256, 3))
  assert (d, g) == (169_249, 807_107)
  key = jax.random.PRNGKey(0)
  disc, gen = M.DISCRIMINATORS.get("dcgan_cake32")(), M.GENERATORS.get("dcgan_cake32")()
  dv = disc.init({"params": key, "dropout": key}, jnp.zeros((2, 32, 32, 3)), train=False)
  gv = gen.init(key, jnp.zeros((2, 64)), train=False)
  assert M.count_params(dv["params"]) == d and M.count_params(gv["params"]) == g
  _, inter = disc.apply(dv, jnp.zeros((2, 32, 32, 3)), train=False, mutable=["intermediates"])
  assert inter["intermediates"]["features"][0].shape == (2, 5 * 5 * 128)  # 32 -> 17 -> 9 -> 5
  out = gen.apply(gv, jax.random.normal(key, (2, 64)), train=False)
  assert out.shape == (2, 32, 32, 3) and float(jnp.abs(out).max()) <= 1.0
  # PyTorch's default init: uniform in +-1/sqrt(fan_in); a transposed conv's fan_in is
  # out_channels * k * k (PyTorch reads it from the weight's dim 1).
  k0 = gv["params"]["ConvTranspose_2"]["kernel"]  # [4, 4, 128, 256]
  assert float(jnp.abs(k0).max()) <= 1 / np.sqrt(256 * 16) < float(jnp.abs(k0).max()) * 1.05


def test_report32_config_is_the_report():
  c = load_config("dcgan_cake32", None)
  assert (c.data.image_size, c.model.noise_dim, c.model.noise, c.train.batch_size) == (
      32, 64, "normal", 16)
  assert (c.optim_d.lr, c.optim_g.lr, c.optim_d.b1, c.optim_g.b1, c.optim_d.b2) == (
      1e-5, 1.5e-5, 0.5, 0.5, 0.999)
  assert (c.loss.name, c.loss.label_noise, c.train.d_batches, c.train.d_bn_in_g_step) == (
      "ns", 0.0, "separate", "batch")
  assert not (c.augment.flip or c.augment.zoom or c.augment.rotate or c.augment.diff)


def test_separate_discriminator_passes_normalise_real_and_fake_apart():
  """'separate' (PyTorch's two forward passes): D's outputs on the real photos do not depend on
  the fakes in the same step; 'joint' (one batch) mixes their batch-norm statistics."""
  c = load_config("dcgan_cake32", "smoke")
  d_real = {}
  for mode in ("separate", "joint"):
    c.train.d_batches = mode
    family = families.get(c)
    family.total_steps = 10
    x = jax.random.uniform(jax.random.PRNGKey(0), (8, 32, 32, 3), minval=-1, maxval=1)
    state = family.init(jax.random.PRNGKey(0), {"image": np.zeros((8, 32, 32, 3), np.uint8),
                                                "label": np.zeros(8, np.int32)})
    other_g = family.init(jax.random.PRNGKey(5), {"image": np.zeros((8, 32, 32, 3), np.uint8),
                                                  "label": np.zeros(8, np.int32)}).g
    step = jax.jit(family.d_step)
    key = jax.random.PRNGKey(1)
    d_real[mode] = [float(step(s, x, None, key)[1]["d_real"])
                    for s in (state, state.replace(g=other_g))]
  assert d_real["separate"][0] == d_real["separate"][1]
  assert d_real["joint"][0] != d_real["joint"][1]


def test_ema_update_formula_and_ramp():
  c = _tiny_gan(ema_decay=0.99)
  family, state, _ = _init(c)
  ema, params = {"w": jnp.full((3,), 2.0)}, {"w": jnp.full((3,), 4.0)}
  for step, decay in ((0, 0.1), (5, 6 / 15), (10_000, 0.99)):
    out = family.update_ema(ema, params, jnp.asarray(step, jnp.int32))
    np.testing.assert_allclose(out["w"], decay * 2.0 + (1 - decay) * 4.0, rtol=1e-6)
  # Inside the generator step: the average of the new params, the D step leaves it alone.
  x = family.inputs({"image": np.zeros((16, 28, 28, 1), np.uint8)})
  after_d, _ = jax.jit(family.d_step)(state, x, None, jax.random.PRNGKey(1))
  assert trees_equal(after_d.ema, state.ema)
  after_g, _ = jax.jit(family.g_step)(after_d, x, None, jax.random.PRNGKey(2))
  d = min(0.99, 2 / 11)  # after the first generator update, step 1
  expected = jax.tree.map(lambda e, p: d * e + (1 - d) * p, state.ema, after_g.g.params)
  assert len(jax.tree.leaves(after_g.ema)) == len(jax.tree.leaves(expected))
  for a, b in zip(jax.tree.leaves(after_g.ema), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert not trees_equal(after_g.ema, after_g.g.params)


def test_ema_resumes_bit_exactly_and_serves_samples_scores_and_inversion(tmp_path):
  from gm.commands.base import RunContext  # pylint: disable=g-import-not-at-top
  c = _tiny_gan(num_epochs=2, ema_decay=0.9)
  straight = loop.train_and_evaluate(c, str(tmp_path / "a"))
  loop.train_and_evaluate(_tiny_gan(num_epochs=1, ema_decay=0.9), str(tmp_path / "b"))
  resumed = loop.train_and_evaluate(c, str(tmp_path / "b"), allow_config_change=True)
  assert trees_equal(straight.model, resumed.model)
  assert not trees_equal(resumed.model.ema, resumed.model.g.params)
  # eval.py: the EMA generator by default, the trained weights with --raw.
  ctx, raw = RunContext(str(tmp_path / "a")), RunContext(str(tmp_path / "a"), raw=True)
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (4, 4)))
  fam = ctx.family
  from_ema = fam.images(straight.model.g.replace(params=straight.model.ema), z)
  from_raw = fam.images(straight.model.g, z)
  assert not np.array_equal(from_ema, from_raw)
  np.testing.assert_array_equal(inv.generator_of(fam, ctx.state).apply(z), from_ema)
  np.testing.assert_array_equal(inv.generator_of(fam, raw.state).apply(z), from_raw)
  key = jax.random.PRNGKey(4)
  np.testing.assert_array_equal(fam.sample(ctx.state, key, 8), fam.sample(straight.model, key, 8))
  assert not np.array_equal(fam.sample(raw.state, key, 8), fam.sample(ctx.state, key, 8))
  # Training logs the scores of both (here the MNIST-free folder score is off: no judge).
  records = [json.loads(line) for line in open(tmp_path / "a" / "metrics.jsonl")]
  assert all("train/g_loss" in r for r in records)


def test_runs_written_before_a_key_existed_resume_under_its_old_behaviour():
  old = {"family": "gan", "train": {"num_epochs": 3}, "data": {"name": "image_folder"}}
  same = {"family": "gan", "train": {"num_epochs": 3, "ema_decay": 0.0, "d_batches": "joint"},
          "data": {"name": "image_folder", "holdout": 0, "holdout_seed": 0}}
  assert config_utils.differences(old, same) == []
  changed = json.loads(json.dumps(same))
  changed["train"]["ema_decay"], changed["data"]["holdout"] = 0.999, 100
  assert config_utils.differences(old, changed) == ["data.holdout", "train.ema_decay"]


def _photos(d, n):
  d.mkdir()
  rng = np.random.default_rng(0)
  for i in range(n):
    Image.fromarray(np.full((40, 40, 3), i * 7 % 256, np.uint8)
                    + rng.integers(0, 3, (40, 40, 3), dtype=np.uint8)).save(d / f"{i:02d}.png")


def test_holdout_split_is_reproducible_disjoint_and_recorded(tmp_path):
  _photos(tmp_path / "photos", 20)
  cfg = load_config("dcgan_cake", "smoke").data
  cfg.dir, cfg.cache_dir, cfg.num_train, cfg.num_test = (str(tmp_path / "photos"),
                                                         str(tmp_path / "c"), 0, 0)
  full = data.load(cfg).train["image"]
  cfg.holdout = 6
  a, b = data.load(cfg), data.load(cfg)
  assert len(a.train["image"]) == 14 and len(a.test["image"]) == 6
  np.testing.assert_array_equal(a.test["image"], b.test["image"])
  held = [int(f.split(".")[0]) for f in a.info["holdout"]["files"]]
  assert held == sorted(held) and a.info["holdout"] == {"count": 6, "seed": 0,
                                                        "files": [f"{i:02d}.png" for i in held]}
  np.testing.assert_array_equal(a.test["image"], full[held])
  np.testing.assert_array_equal(a.train["image"], np.delete(full, held, axis=0))
  cfg.holdout_seed = 1
  assert data.load(cfg).info["holdout"]["files"] != a.info["holdout"]["files"]
  cfg.holdout, cfg.holdout_seed = 0.25, 0  # A fraction: 5 of 20.
  assert data.load(cfg).info["holdout"]["count"] == 5
  for bad in (20, 2.5, -1):
    cfg.holdout = bad
    with pytest.raises(UserError, match="a count between 0 and 19"):
      data.load(cfg)


def test_sse_inversion_loss_is_the_report_sum_of_squares_of_tanh_outputs():
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=(3, 2 * 2 * 3)), jnp.float32)
  gen = GeneratorView(apply=lambda z, cond=None: jax.nn.sigmoid(z @ w).reshape(-1, 2, 2, 3),
                      noise=lambda k, n: jax.random.normal(k, (n, 3)), latent_size=3,
                      output_range=(-1.0, 1.0))  # A tanh network's output, mapped to [0, 1].
  z = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
  target = jnp.asarray(rng.uniform(size=(4, 2, 2, 3)), jnp.float32)
  img = np.asarray(gen.apply(z), np.float64)
  tanh_out, tanh_target = 2 * img - 1, 2 * np.asarray(target, np.float64) - 1
  np.testing.assert_allclose(inv.per_code_loss(gen, z, target, "sse", 0.0),
                             ((tanh_out - tanh_target) ** 2).sum((1, 2, 3)), rtol=1e-5)
  np.testing.assert_allclose(inv.per_code_loss(gen, z, target, "mse", 0.0),
                             ((img - np.asarray(target)) ** 2).mean((1, 2, 3)), rtol=1e-5)


def test_inversion_targets_held_out_photos_by_index(tmp_path):
  from gm.commands.invert import load_targets  # pylint: disable=g-import-not-at-top

  class Ctx:  # What load_targets reads of a run context.
    def __init__(self, ds, config):
      self.dataset, self.config = ds, config

  _photos(tmp_path / "photos", 10)
  c = load_config("dcgan_cake", "smoke")
  c.data.dir, c.data.cache_dir, c.data.num_train, c.data.num_test = (
      str(tmp_path / "photos"), str(tmp_path / "c"), 0, 0)
  c.data.holdout = 3
  ds = data.load(c.data)
  targets, names = load_targets(Ctx(ds, c), "1,test:2", "")
  assert names == ["train[1]", "test[2]"]
  np.testing.assert_allclose(targets[1], ds.test["image"][2] / 255.0, atol=1e-6)
  for bad, message in (("test:3", "outside the 3 test"), ("x", "test:<i>"), ("-1", "test:<i>")):
    with pytest.raises(UserError, match=message):
      load_targets(Ctx(ds, c), bad, "")


def test_fast_recipe_smoke_trains_scores_held_out_photos_with_ema_and_raw(tmp_path):
  _photos(tmp_path / "photos", 48)
  c = load_config("cake_fast", "smoke")
  c.data.dir, c.data.cache_dir = str(tmp_path / "photos"), str(tmp_path / "c")
  c.train.progress, c.train.tensorboard, c.train.num_epochs = False, False, 1
  wd = tmp_path / "run"
  loop.train_and_evaluate(c, str(wd))
  record = json.loads(open(wd / "metrics.jsonl").read().splitlines()[-1])
  assert {"quality/swd", "quality_raw/swd", "time/process_s"} <= set(record)
  assert record["quality/swd"] != record["quality_raw/swd"]
  cfg = json.load(open(wd / "config.json"))
  assert cfg["data"]["holdout"] == 0.25 and cfg["train"]["ema_decay"] == 0.999
  assert json.load(open(wd / "config.json"))["data"]["image_size"] == 32


def test_a_gan_state_is_a_pytree_with_an_optional_ema():
  from gm.families.gan import GANState  # pylint: disable=g-import-not-at-top
  t = {"w": jnp.ones(2)}
  paths = lambda s: [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(s)[0]]
  assert paths(GANState(t, t)) == [".g['w']", ".d['w']"]  # EMA off: no leaves in its slot.
  with_ema = GANState(t, t, ema={"w": jnp.zeros(2)})
  assert paths(with_ema)[-1] == ".ema['w']"
  doubled = jax.tree.map(lambda x: 2 * x, with_ema)
  assert isinstance(doubled, GANState) and float(doubled.g["w"][0]) == 2.0
  assert jax.tree.map(lambda x: x, GANState(t, t)).ema is None


class _BeforeEMA(flax.struct.PyTreeNode):  # GANState as runs before the generator EMA saved it
  g: object
  d: object


class _Before(flax.struct.PyTreeNode):  # GANState with an `ema` slot (None with EMA off)
  g: object
  d: object
  ema: object = None


@pytest.mark.parametrize("layout", ["no ema slot", "empty ema slot"])
def test_checkpoints_of_both_earlier_gan_layouts_restore(tmp_path, layout):
  """Runs written before the generator EMA saved {g, d}; later ones an `ema` entry, None with
  EMA off (runs/cake32 of the cake section is one): both restore, array for array; a
  checkpoint of another model, or with arrays the target lacks, is still refused."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from gm import checkpoint  # pylint: disable=g-import-not-at-top
  Before = _BeforeEMA if layout == "no ema slot" else _Before

  run_state = lambda m: loop.RunState(model=m, step=jnp.int32(0), rng=jax.random.PRNGKey(1),
                                     data_rng=jax.random.PRNGKey(2))
  target = run_state(_init(_tiny_gan())[1])
  bump = lambda x: x + 1 if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x
  model = jax.tree.map(bump, target.model)
  old = loop.RunState(model=Before(model.g, model.d), step=target.step + 7, rng=target.rng,
                      data_rng=target.data_rng)
  manager = ocp.CheckpointManager(str(tmp_path / "checkpoints"))
  manager.save(7, args=ocp.args.Composite(state=ocp.args.StandardSave(old),
                                          meta=ocp.args.JsonSave({"epoch": 1, "step": 7})))
  manager.wait_until_finished()
  ckpt = checkpoint.Checkpointer(str(tmp_path), create=False)
  state, meta = ckpt.restore(7, target, note=False)
  assert meta["step"] == 7 and int(state.step) == int(target.step) + 7
  assert state.model.ema is None
  assert_trees_equal(state.model, model)
  # A checkpoint of another model, or one holding arrays the target lacks (an EMA restored
  # into a state without one), still fails with the one-line error.
  with pytest.raises(UserError, match="written by a different model"):
    ckpt.restore(7, run_state(_init(_tiny_gan("dcgan_mnist"))[1]), note=False)
  fuller = loop.RunState(model=_Before(model.g, model.d, ema=model.g.params), step=old.step,
                         rng=old.rng, data_rng=old.data_rng)
  manager.save(8, args=ocp.args.Composite(state=ocp.args.StandardSave(fuller),
                                          meta=ocp.args.JsonSave({"epoch": 2, "step": 8})))
  manager.wait_until_finished()
  with pytest.raises(UserError, match="written by a different model"):
    ckpt.restore(8, target, note=False)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["7", "8"]
