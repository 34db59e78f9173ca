"""Ordinary mistakes are one-line errors before anything is written: image sizes the networks
cannot draw or read, model options the architecture lacks, eval flags out of range, and
results that are not finite."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import gm
from gm import train
from gm.commands.base import nonfinite_path, write_json
from gm.errors import ConfigError, UserError
from tests.conftest import ROOT, load_config


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
  d = tmp_path_factory.mktemp("photos")
  rng = np.random.default_rng(0)
  for i in range(80):
    Image.fromarray(rng.integers(0, 256, (70, 70, 3), dtype=np.uint8)).save(d / f"{i}.png")
  return str(d)


def _photo_config(name, photos, tmp_path, **data):
  c = load_config(name, "smoke")
  c.data.dir, c.data.cache_dir = photos, str(tmp_path / "cache")
  c.train.progress = c.train.tensorboard = False
  for k, v in data.items():
    c.data[k] = v
  return c


@pytest.mark.parametrize("name,size,drawn", [("cake_fast", 33, 32), ("dcgan_cake", 48, 64)])
def test_an_image_size_the_generator_does_not_draw_is_one_line(name, size, drawn, photos,
                                                               tmp_path):
  c = _photo_config(name, photos, tmp_path, image_size=size)
  with pytest.raises(ConfigError) as e:
    train.train_and_evaluate(c, str(tmp_path / "run"))
  msg = str(e.value)
  assert "\n" not in msg and f"draws {drawn}x{drawn}x3 images but the data are {size}x{size}x3" in msg
  assert f"--config.data.image_size={drawn}" in msg
  assert not (tmp_path / "run").exists()  # Nothing written.


def test_a_model_option_the_architecture_lacks_names_the_key_and_the_fields(tmp_path):
  c = load_config("dcgan_mnist", "smoke")
  c.model.d.dropout = 0.3
  with pytest.raises(ConfigError, match=r"^model\.d\.dropout: DCGANMnistDiscriminator has no "
                     r"field 'dropout'; its fields: leak, spectral_norm$"):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp("gan") / "run")
  gm.fit(gm.load_config(os.path.join(ROOT, "configs/gan_mlp_mnist.py:smoke"),
                        ["train.num_epochs=1", "train.progress=False",
                         "train.tensorboard=False"]), wd)
  return wd


@pytest.mark.parametrize("flags,message", [
    (["--lr", "nan"], "--lr nan: pass a finite number"),
    (["--lr", "inf"], "--lr inf: pass a finite number"),
    (["--lr", "0"], "--lr 0.0: it must be > 0"),
    (["--steps", "0"], "--steps 0: it must be >= 1"),
    (["--restarts", "-2"], "--restarts -2: it must be >= 1"),
    (["--momentum", "1.5"], "--momentum 1.5: it must be in [0, 1)"),
    (["--prior_weight", "-1"], "--prior_weight -1.0: it must be >= 0"),
])
def test_eval_flags_out_of_range_are_refused_before_anything_is_written(gan_run, flags, message):
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  before = sorted(os.listdir(gan_run))
  with pytest.raises(UserError, match=message.replace("[", r"\[").replace(")", r"\)")):
    run(parser().parse_args(["invert", "--workdir", gan_run, "--index", "0", *flags]))
  assert sorted(os.listdir(gan_run)) == before


def test_a_diverged_inversion_is_an_error_and_writes_no_json(gan_run, monkeypatch):
  """A bounded generator keeps the loss finite for any finite lr, so divergence is simulated:
  the optimizer's loss comes back NaN for the second target."""
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  from gm import invert as inv  # pylint: disable=g-import-not-at-top
  real = inv.invert

  def diverging(*args, **kwargs):
    res = real(*args, **kwargs)
    res["loss"] = np.asarray(res["loss"]).copy()
    res["loss"][1] = np.nan
    return res

  monkeypatch.setattr(inv, "invert", diverging)
  with pytest.raises(UserError, match="the inversion diverged: its mse loss is not finite for "
                     r"target\(s\) 1 \(lr 0.5, optimizer sgd\); try a lower --lr"):
    run(parser().parse_args(["invert", "--workdir", gan_run, "--index", "0,1", "--steps", "3",
                             "--lr", "0.5", "--name", "diverged"]))
  out = os.path.join(gan_run, "eval")
  assert not os.path.isdir(out) or not [f for f in os.listdir(out) if f.startswith("diverged")]


def test_results_are_strict_json(tmp_path):
  assert nonfinite_path({"a": [1.0, {"b": float("nan")}]}) == "a[1].b"
  assert nonfinite_path({"a": [1.0, 2], "c": np.float32(3)}) is None
  with pytest.raises(UserError, match=r"psnr_db\[0\] is not finite: the computation diverged"):
    write_json(str(tmp_path / "r.json"), {"psnr_db": [float("inf")]})
  assert not (tmp_path / "r.json").exists()
  assert json.load(open(write_json(str(tmp_path / "ok.json"), {"x": [1.5]}))) == {"x": [1.5]}
