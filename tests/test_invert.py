"""Latent-space optimization: z moves and weights do not, recovery, restarts, metrics, commands."""

import json
import os

import jax
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from tests.conftest import load_config
from gm import families, invert as inv
from gm.train import loop


def _gan(arg="smoke,noise=8"):
  c = load_config("gan_mlp_mnist", arg)
  fam = families.get(c)
  fam.total_steps = 1
  batch = {"image": np.zeros((64, 28, 28, 1), np.uint8), "label": np.zeros(64, np.int32)}
  return fam, fam.init(jax.random.PRNGKey(0), batch)


def test_only_z_changes_and_a_generated_target_is_recovered():
  fam, state = _gan()
  before = [np.array(v) for v in jax.tree.leaves(state)]
  gen = inv.generator_of(fam, state)
  z_star = gen.noise(jax.random.PRNGKey(5), 2)
  target = np.asarray(gen.apply(z_star))
  z0 = np.asarray(gen.noise(jax.random.PRNGKey(1), 2 * 4))
  res = inv.invert(gen, target, jax.random.PRNGKey(1), steps=300, restarts=4, lr=0.05,
                   optimizer="adam")
  assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, jax.tree.leaves(state)))
  assert not np.allclose(res["z_all"].reshape(8, -1), z0)  # z moved from its random start
  assert (inv.psnr(res["images"], target) > 40).all()
  assert (res["losses"][-1].min(1) < 1e-3 * res["losses"][0].min(1)).all()
  # The assignment's default (SGD 0.01, momentum 0.9, 100 steps) lowers the loss too.
  default = inv.invert(gen, target, jax.random.PRNGKey(1))
  assert (default["losses"][-1, :, 0] < default["losses"][0, :, 0]).all()


def test_restarts_keep_the_lowest_final_loss():
  fam, state = _gan()
  gen = inv.generator_of(fam, state)
  target = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
  res = inv.invert(gen, target, jax.random.PRNGKey(2), steps=20, restarts=5)
  final = res["losses"][-1]  # [T, R]
  np.testing.assert_array_equal(res["best"], final.argmin(1))
  np.testing.assert_allclose(res["loss"], final.min(1), rtol=1e-5)
  np.testing.assert_allclose(res["z"], res["z_all"][np.arange(3), res["best"]])
  mse = np.mean((res["images"] - target) ** 2, axis=(1, 2, 3))
  np.testing.assert_allclose(mse, res["loss"], rtol=1e-4)
  assert res["evolution"].shape == (10, 3, 28, 28, 1) and res["snapshot_steps"][-1] == 20
  # The per-step loop (CPU default) and the scanned program (GPU default) agree.
  scan = inv.invert(gen, target, jax.random.PRNGKey(2), steps=20, restarts=5, driver="scan")
  loop_ = inv.invert(gen, target, jax.random.PRNGKey(2), steps=20, restarts=5, driver="loop")
  for key in ("losses", "z_all", "evolution"):
    np.testing.assert_allclose(loop_[key], scan[key], rtol=1e-4, atol=1e-6)


def test_repeated_inversions_on_one_generator_compile_once():
  fam, state = _gan()
  gen = inv.generator_of(fam, state)
  rng = np.random.default_rng(1)
  t1, t2 = (rng.uniform(size=(3, 28, 28, 1)).astype(np.float32) for _ in range(2))
  inv.invert(gen, t1, jax.random.PRNGKey(0), steps=3, driver="loop")
  sizes = {k: f._cache_size() for k, f in gen.compiled.items()}  # pylint: disable=protected-access
  assert ("step", "sgd", 0.01, 0.9, "mse", 0.01) in sizes and ("apply",) in sizes
  # `_cache_size` is JAX's private count of compiled signatures. If it stopped counting (0, say),
  # the comparison below would pass without checking anything. (`apply` counts 2: it is called
  # with numpy and with jax arrays, which jit compiles separately.)
  assert sizes[("step", "sgd", 0.01, 0.9, "mse", 0.01)] == 1 and min(sizes.values()) >= 1, sizes
  again = inv.invert(gen, t2, jax.random.PRNGKey(3), steps=5, driver="loop")  # new targets, steps
  assert {k: f._cache_size() for k, f in gen.compiled.items()} == sizes  # pylint: disable=protected-access
  # Reuse changes nothing: a fresh generator of the same state gives the same codes.
  fresh = inv.invert(inv.generator_of(fam, state), t2, jax.random.PRNGKey(3), steps=5,
                     driver="loop")
  np.testing.assert_array_equal(again["z_all"], fresh["z_all"])
  # Another optimizer is another compiled step, not a stale one.
  inv.invert(gen, t2, jax.random.PRNGKey(3), steps=2, optimizer="adam", driver="loop")
  assert ("step", "adam", 0.01, 0.9, "mse", 0.01) in gen.compiled


def test_loss_options_and_encoder_initialisation(tiny_vae):
  fam, state = _gan()
  gen = inv.generator_of(fam, state)
  target = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
  for loss in inv.LOSSES:
    res = inv.invert(gen, target, jax.random.PRNGKey(0), steps=5, loss=loss, optimizer="adam")
    assert np.isfinite(res["loss"]).all()
  vae = families.get(tiny_vae)
  vstate = vae.init(jax.random.PRNGKey(0), {"image": np.zeros((4, 28, 28, 1), np.uint8),
                                            "label": np.zeros(4, np.int32)})
  vgen = inv.generator_of(vae, vstate)
  res = inv.invert(vgen, target, jax.random.PRNGKey(0), steps=3, init="encoder")
  mean, _ = vae.posterior(vstate.params, target)
  recon = np.asarray(vae.images(vstate.params, mean))
  np.testing.assert_allclose(res["losses"][0, :, 0], np.mean((recon - target) ** 2, axis=(1, 2, 3)),
                             rtol=1e-5)  # step 0 is the encoder's code


def test_psnr_ssim_and_slerp_against_independent_computations():
  rng = np.random.default_rng(0)
  a = rng.uniform(size=(2, 32, 32, 3))
  b = np.clip(a + 0.1 * rng.normal(size=a.shape), 0, 1)
  ref = [structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                               data_range=1.0, channel_axis=-1) for x, y in zip(a, b)]
  np.testing.assert_allclose(inv.ssim(a, b), ref, rtol=1e-6)
  mse = ((a - b) ** 2).mean((1, 2, 3))
  np.testing.assert_allclose(inv.psnr(a, b), -10 * np.log10(mse), rtol=1e-9)
  x, y = rng.normal(size=16), rng.normal(size=16)
  y *= np.linalg.norm(x) / np.linalg.norm(y)
  path = inv.slerp(x, y, np.linspace(0, 1, 5))
  np.testing.assert_allclose(path[[0, -1]], [x, y], atol=1e-12)
  np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(x), rtol=1e-9)


@pytest.fixture(scope="module")
def two_gan_runs(tmp_path_factory):
  runs = []
  for name in ("gan_mlp_mnist", "lsgan_mlp_mnist"):
    c = load_config(name, "smoke")
    c.data.num_train, c.data.num_test = 128, 64
    c.train.num_epochs, c.train.progress, c.train.tensorboard = 1, False, False
    wd = str(tmp_path_factory.mktemp(name) / "run")
    loop.train_and_evaluate(c, wd)
    runs.append(wd)
  return runs


def test_inversion_commands_write_their_files(two_gan_runs, tmp_path):
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  wd, other = two_gan_runs
  photo = tmp_path / "photo.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(photo)
  run(parser().parse_args(["invert", "--workdir", wd, "--index", "0,3", "--image", str(photo),
                           "--restarts", "2", "--steps", "10"]))
  run(parser().parse_args(["perturb", "--workdir", wd, "--top", "3", "--n", "5"]))
  run(parser().parse_args(["interpolate", "--workdir", wd, "--a", "0", "--b", str(photo),
                           "--steps", "5", "--k", "4"]))
  run(parser().parse_args(["compare-generators", "--workdir", wd, "--other", other,
                           "--steps", "5", "--k", "3", "--top", "2", "--n", "3"]))
  ev = os.path.join(wd, "eval")
  step = 2  # 128 images, batch 64, 1 epoch
  expected = {f"invert_{s}_step{step}.{e}" for s, e in (("evolution", "png"), ("evolution", "gif"),
                                                        ("result", "png"), ("loss", "png"),
                                                        ("z", "npz"))}
  expected |= {f"invert_step{step}.json", f"perturb_step{step}.png", f"perturb_step{step}.json",
               f"interpolate_step{step}.png"}
  assert expected <= set(os.listdir(ev))
  report = json.load(open(os.path.join(ev, f"invert_step{step}.json")))
  assert report["targets"] == ["train[0]", "train[3]", "photo.png"] and len(report["ssim"]) == 3
  assert np.load(os.path.join(ev, f"invert_z_step{step}.npz"))["z"].shape == (3, 96)
  perturb = json.load(open(os.path.join(ev, f"perturb_step{step}.json")))
  assert len(perturb["coords"]) == 3 and len(perturb["values"]) == 5
  compare = [f for f in os.listdir(ev) if f.startswith("compare_")]
  assert len(compare) == 4 and any(f.endswith(".json") for f in compare)
