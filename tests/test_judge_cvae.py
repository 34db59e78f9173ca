"""The MNIST judge and its distances, the 3x3 canvas, and the conditional VAE end to end."""

import json
import os

import jax
import numpy as np
import pytest

from gm import data
from gm.train import loop
from gm.commands.base import RunContext
from gm.data.canvas import condition
from gm.errors import UserError
from gm.metrics.canvas import crop_cells, ink_per_cell, sample_requests
from gm.data import canvas
from gm.judge import load_judge
from gm.metrics import frechet_distance, kernel_distance
from tests.conftest import load_config


def test_frechet_distance_matches_an_eigenvalue_computation():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
  b = rng.normal(loc=0.5, size=(300, 5)) @ rng.normal(size=(5, 5))
  mu1, mu2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a.T), np.cov(b.T)
  # Tr((S1 S2)^1/2) = sum of square roots of the (real, non-negative) eigenvalues of S1 S2.
  tr_sqrt = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
  expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
  assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
  assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kernel_distance_matches_a_direct_double_sum():
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(30, 4)), rng.normal(loc=0.3, size=(30, 4))
  k = lambda u, v: (u @ v / 4 + 1) ** 3
  m = len(x)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
  mean, std = kernel_distance(x, y, subsets=3, subset_size=m)
  assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-9) and std < 1e-9


def test_judge_separates_real_halves_from_noise(judge_dir):
  judge = load_judge(judge_dir)
  ds = data.load(load_config("vae_mnist", "smoke").data)
  x = ds.test["image"].astype(np.float32) / 255
  out = judge(x)
  assert (out["labels"] == ds.test["label"]).mean() > 0.8
  halves = judge.distances(x[:128], x[128:])
  noise = judge.distances(np.random.default_rng(0).uniform(size=x[:128].shape), x[128:])
  assert halves["frechet"] < 0.2 * noise["frechet"]
  assert halves["kid_x1e3"] < 0.1 * noise["kid_x1e3"]
  # Precision, recall, density and coverage on the judge's features: two halves of the test set
  # are one distribution; noise images land together (on the judge's features, all alike), so
  # they cover no digit.
  assert 0.8 < halves["density"] < 1.2 and halves["coverage"] > 0.9 and halves["recall"] > 0.9
  assert noise["recall"] < 0.1 and noise["coverage"] < 0.2 and noise["density"] < 0.6


def test_exported_judge_scores_exactly_as_its_run(judge_dir, tmp_path):
  from gm import judge as judge_lib  # pylint: disable=g-import-not-at-top
  run = judge_lib.Judge(judge_dir)
  path = str(tmp_path / "judge.npz")
  judge_lib.export(run, path, {"step": run.step})
  again = judge_lib.Judge(path)
  images = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype(np.float32)
  a, b = run(images), again(images)
  assert all(np.array_equal(a[k], b[k]) for k in a) and again.step == run.step
  with pytest.raises(UserError, match="export_judge.py"):
    judge_lib.Judge(str(tmp_path / "missing.npz"))


def test_the_shipped_judge_is_the_recorded_one_and_reads_digits():
  """gm/metrics/judge_mnist.npz: the digest it records, 99 % on real digits, the default."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  from gm.data.mnist import load_embedded  # pylint: disable=g-import-not-at-top
  from gm import judge as judge_lib  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "export_judge", os.path.join(os.path.dirname(__file__), "..", "scripts", "export_judge.py"))
  export_judge = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(export_judge)
  judge = judge_lib.Judge("builtin")
  assert export_judge.params_digest(judge) == judge.provenance["params_sha256"]
  assert judge.provenance["test_accuracy"] > 0.99
  ds = load_embedded()  # Real MNIST training digits (the judge trained on all 60,000).
  images = np.concatenate([ds.train["image"], ds.test["image"]]).astype(np.float32) / 255
  labels = np.concatenate([ds.train["label"], ds.test["label"]])
  assert np.mean(judge(images)["labels"] == labels) > 0.99
  assert load_config("gan_mlp_mnist").eval.judge == "builtin"


def test_canvas_places_digits_in_their_cell_with_the_right_condition():
  rng = np.random.default_rng(0)
  split = {"image": rng.integers(1, 256, (6, 28, 28, 1)).astype(np.uint8),
           "label": np.arange(6, dtype=np.int32)}
  out = canvas.make_canvases(split, placements=3, seed=7)
  assert out["image"].shape == (18, 42, 42, 1) and out["cond"].shape == (18, 12)
  again = canvas.make_canvases(split, placements=3, seed=7)
  np.testing.assert_array_equal(out["cell"], again["cell"])
  assert not np.array_equal(out["cell"], canvas.make_canvases(split, 3, seed=8)["cell"])
  small = canvas.shrink(split["image"])
  for i in range(18):
    r, c = divmod(int(out["cell"][i]), 3)
    img = out["image"][i, ..., 0]
    np.testing.assert_array_equal(img[14 * r:14 * r + 14, 14 * c:14 * c + 14], small[i // 3])
    assert img.sum() == small[i // 3].sum()                 # nothing outside the cell
    expected = np.zeros(12, np.float32)
    expected[i // 3], expected[10], expected[11] = 1, r / 2, c / 2
    np.testing.assert_array_equal(out["cond"][i], expected)
  ink = ink_per_cell(out["image"].astype(np.float32))
  assert (ink.argmax(1) == out["cell"]).all()
  crops = crop_cells(out["image"], out["cell"])
  np.testing.assert_array_equal(crops[0, ::2, ::2, 0], small[0])


def test_cvae_trains_and_draws_its_plots(tmp_path, judge_dir):
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  c = load_config("cvae_mnist", "smoke")
  c.data.num_train, c.data.num_test, c.train.num_epochs = 256, 64, 1
  c.train.progress, c.train.tensorboard = False, False
  c.eval.batch_size = 32
  c.eval.judge = judge_dir
  c.eval.score_every = 1  # Training-time judge scores.
  wd = str(tmp_path / "cvae")
  loop.train_and_evaluate(c, wd)
  record = json.loads(open(os.path.join(wd, "metrics.jsonl")).read().splitlines()[-1])
  # Accuracies count whole canvases: 5 per (label, cell) request, 450 in all.
  for k in ("judge/label_accuracy", "judge/position_accuracy"):
    assert abs(450 * record[k] - round(450 * record[k])) < 1e-6, record
  run(parser().parse_args(["all", "--workdir", wd]))
  produced = sorted(os.listdir(os.path.join(wd, "eval")))
  assert produced == sorted(["cvae_positions_step8.png", "cvae_prior_label3_step8.png",
                             "loss_curves.png", "evolution.gif", "elbo_step8.json",
                             "cvae_score_step8.json"])
  score = json.load(open(os.path.join(wd, "eval", "cvae_score_step8.json")))
  assert score["num_samples"] == 20 * 90
  assert score["real_test_canvases"]["position_accuracy"] == 1.0
  # Real canvases hold their digit inside the cell; 8 steps of training leave ink everywhere.
  assert score["real_test_canvases"]["ink_outside"] == 0.0 and score["ink_outside"] > 0.3, score
  assert abs(1800 * score["label_accuracy"] - round(1800 * score["label_accuracy"])) < 1e-6
  assert score["temperature"] == 1.0

  # Sampling temperature: z ~ N(0, t^2 I) is t times the prior draw of the same key, and its
  # files get their own names instead of replacing the prior's.
  ctx = RunContext(wd)
  key = jax.random.PRNGKey(3)
  labels, cells, prior = sample_requests(ctx.family, ctx.state, key, 2)
  _, _, cold = sample_requests(ctx.family, ctx.state, key, 2, temperature=0.5)
  z = 0.5 * jax.random.normal(key, (len(labels), ctx.family.latent_dim))
  expected = ctx.family.images_jit(ctx.state.params, z, condition(labels, cells))
  np.testing.assert_allclose(cold, expected, atol=1e-6)
  assert not np.allclose(cold, prior, atol=1e-3)
  _, _, mode = sample_requests(ctx.family, ctx.state, key, 2, temperature=0.0)
  np.testing.assert_array_equal(mode[0::2], mode[1::2])  # z = 0: one image per request
  run(parser().parse_args(["cvae-score", "--workdir", wd, "--num", "2", "--temperature", "0.5"]))
  run(parser().parse_args(["cvae-prior", "--workdir", wd, "--temperature", "0.5"]))
  cold_score = json.load(open(os.path.join(wd, "eval", "cvae_score_t0.5_step8.json")))
  assert cold_score["temperature"] == 0.5 and cold_score["num_samples"] == 2 * 90
  assert os.path.exists(os.path.join(wd, "eval", "cvae_prior_label3_t0.5_step8.png"))
  assert json.load(open(os.path.join(wd, "eval", "cvae_score_step8.json")))["num_samples"] == 1800
  with pytest.raises(UserError, match="--temperature -1.0: it must be >= 0"):
    run(parser().parse_args(["cvae-score", "--workdir", wd, "--temperature", "-1"]))
