"""The Python API (`gm.load_run`, `gm.fit`, `Run`): the same numbers as the eval.py commands."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import gm
from gm import plots
from gm.errors import UserError
from tests.conftest import ROOT

_QUIET = ["train.progress=False", "train.tensorboard=False"]


def _eval(*args):
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  run(parser().parse_args(list(args)))


def test_a_gan_run_from_python_gives_the_eval_commands_numbers(tmp_path):
  config = gm.load_config(os.path.join(ROOT, "configs/gan_mlp_mnist.py:smoke"),
                          ["train.num_epochs=2", *_QUIET])
  wd = str(tmp_path / "run")
  run = gm.fit(config, wd)
  assert isinstance(run, gm.Run) and run.step == run.steps()[-1] and run.steps()[0] == 0
  assert [r["epoch"] for r in run.metrics] == [1, 2]
  assert "gan" in repr(run)
  # Samples: eval.py samples --seed 3 draws the same images (its PNG grid, title row cut off,
  # scale 3 undone).
  images = run.sample(16, seed=3)
  assert images.shape == (16, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
  _eval("samples", "--workdir", wd, "--num", "16", "--seed", "3")
  png = np.asarray(Image.open(os.path.join(wd, "eval", f"samples_step{run.step}.png")))
  np.testing.assert_array_equal(png[24::3, ::3], plots.tile(images, 8)[..., 0])
  assert not np.array_equal(run.sample(16, seed=4), images)
  # Inversion: the same targets, options and seed give eval.py invert's PSNR / SSIM.
  targets, names = run.targets(index="0,1")
  assert names == ["train[0]", "train[1]"] and targets.shape == (2, 28, 28, 1)
  res = run.invert(targets, steps=15, optimizer="adam", lr=0.1, restarts=2, seed=1)
  _eval("invert", "--workdir", wd, "--index", "0,1", "--steps", "15", "--optimizer", "adam",
        "--lr", "0.1", "--restarts", "2", "--seed", "1")
  report = json.load(open(os.path.join(wd, "eval", f"invert_step{run.step}.json")))
  assert report["psnr_db"] == res["psnr_db"].tolist() and report["ssim"] == res["ssim"].tolist()
  # Scores: eval.py gan-score's numbers for the same checkpoint and seed.
  scores = run.score(num=64, seed=2)
  _eval("gan-score", "--workdir", wd, "--num", "64", "--seed", "2")
  command = json.load(open(os.path.join(wd, "eval", f"gan_score_seed2_step{run.step}.json")))
  assert {k: v for k, v in command["scores"][0].items() if k != "step"} == scores["scores"]
  assert command["real_train_vs_test"] == scores["real_train_vs_test"]
  # Another checkpoint, and one-line errors for what does not apply.
  first = gm.load_run(wd, step=run.steps()[1])
  assert first.step == run.steps()[1] and not np.array_equal(first.sample(16, seed=3), images)
  with pytest.raises(UserError, match="num must be > 0"):
    run.sample(0)
  with pytest.raises(UserError, match="autoencoder"):
    run.encode(targets)
  with pytest.raises(UserError, match="conditional runs only"):
    run.sample(2, labels=[0, 1])


def test_an_autoencoder_run_encodes_and_reconstructs(tmp_path):
  run = gm.fit(gm.load_config(os.path.join(ROOT, "configs/vae_mnist.py:smoke"),
                              ["train.num_epochs=1", *_QUIET]), str(tmp_path / "vae"))
  images = run.targets(index="0,test:1")[0]
  codes = run.encode(images)
  assert codes.shape == (2, run.config.model.latent_dim)
  recon = run.reconstruct(images)
  assert recon.shape == images.shape and recon.min() >= 0 and recon.max() <= 1
  view = run.family.generator(run.state)
  np.testing.assert_array_equal(recon, np.asarray(view.apply(view.encode(images), None)))


def test_import_gm_is_cheap_and_lists_the_api():
  out = subprocess.run([sys.executable, "-c", "import sys, gm; print(sorted(gm.__all__)); "
                        "print('jax' in sys.modules)"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
  assert out.stdout.split("\n")[:2] == ["['Run', 'fit', 'load_config', 'load_run']", "False"]
