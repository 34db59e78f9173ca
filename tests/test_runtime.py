"""`gm.backend.runtime.jit`: the CPU compiler option reaches XLA, and the user's XLA_FLAGS win."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm.backend import runtime


def _conv(x, k):
  return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.fixture
def fresh_options():
  runtime._options.cache_clear()  # pylint: disable=protected-access
  yield
  runtime._options.cache_clear()  # pylint: disable=protected-access


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU compiler option")
def test_cpu_convolutions_are_not_handed_to_ynnpack(fresh_options, monkeypatch):
  monkeypatch.delenv("GM_XLA_DEFAULTS", raising=False)
  monkeypatch.setenv("XLA_FLAGS", "")
  x, k = jnp.ones((2, 12, 12, 32)), jnp.ones((5, 5, 32, 64))
  assert runtime.compiler_options() == runtime.CPU_OPTIONS
  ours = runtime.jit(_conv).lower(x, k).compile().as_text()
  assert "convolution(" in ours and "__ynn_fusion" not in ours
  np.testing.assert_allclose(runtime.jit(_conv)(x, k), jax.jit(_conv)(x, k), rtol=1e-5)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="off CPU there is no option to turn off")
def test_users_xla_flags_and_gm_xla_defaults_turn_it_off(fresh_options, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=+eltwise")
  assert runtime.compiler_options() is None
  runtime._options.cache_clear()  # pylint: disable=protected-access
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("GM_XLA_DEFAULTS", "1")
  assert runtime.compiler_options() is None
  f = runtime.jit(lambda x: x * 2)
  assert float(f(jnp.float32(3))) == 6.0


def test_layers_are_flax_or_the_cpu_lowerings():
  """'flax' gives Flax's own modules; 'cpu' the lowerings of gm.backend.cpu_layers; 'auto' by backend."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from gm.backend import cpu_layers  # pylint: disable=g-import-not-at-top

  def config(**kw):
    return ml_collections.ConfigDict({"runtime": {"layers": "auto", "conv_transpose_impl": "auto",
                                                  **kw}})
  flax_layers = runtime.layers(config(layers="flax"))
  assert (flax_layers["conv"], flax_layers["conv_transpose"]) == (nn.Conv, nn.ConvTranspose)
  cpu = runtime.layers(config(layers="cpu"))
  assert cpu["conv"] is cpu_layers.Conv and cpu["conv_transpose"].keywords == {"impl": "subpixel"}
  assert runtime.layers(config(layers="cpu", conv_transpose_impl="native"))[
      "conv_transpose"].keywords == {"impl": "native"}
  assert runtime.layers(config()) == (cpu if jax.default_backend() == "cpu" else flax_layers)
  with pytest.raises(Exception, match="valid: auto, flax, cpu"):
    runtime.layers(config(layers="eigen"))


def test_only_the_runtime_reads_the_backend_and_models_import_nothing_cpu_specific():
  import pathlib  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).parent.parent / "gm"
  readers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if "default_backend" in p.read_text())
  assert readers == ["backend/runtime.py"]
  for p in (root / "models").rglob("*.py"):
    assert "cpu_layers" not in p.read_text() and "import runtime" not in p.read_text(), p
  importers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if "import cpu_layers" in p.read_text() or "gm.backend.cpu_layers" in p.read_text())
  assert importers == ["backend/runtime.py"]
  assert [p.name for p in root.rglob("*.py") if "cpu_subpixel" in p.read_text()] == [
      "cpu_layers.py"]


def test_old_configs_conv_transpose_impl_reads_as_the_runtime_key():
  from gm import config_utils  # pylint: disable=g-import-not-at-top
  old = {"model": {"conv_transpose_impl": "native", "latent_dim": 2}}
  new = {"model": {"latent_dim": 2}, "runtime": {"layers": "auto", "conv_transpose_impl": "auto"}}
  assert config_utils.from_dict(old).runtime.conv_transpose_impl == "native"
  assert "conv_transpose_impl" not in config_utils.from_dict(old).model
  assert config_utils.differences(old, new) == []  # Resumes: the runtime group is resumable.


def test_old_configs_judge_every_reads_as_score_every():
  from gm import config_utils  # pylint: disable=g-import-not-at-top
  old = {"eval": {"batch_size": 500, "judge": "builtin", "judge_every": 20}}
  new = {"eval": {"batch_size": 500, "judge": "builtin", "score_every": 20}}
  assert config_utils.from_dict(old).eval.score_every == 20
  assert "judge_every" not in config_utils.from_dict(old).eval
  assert config_utils.upgrade(old) == new and old["eval"]["judge_every"] == 20  # Not in place.
  assert config_utils.differences(old, new) == []


def test_a_run_written_with_eval_judge_every_resumes_and_scores_on_its_period(
    tmp_path, tiny_vae, judge_dir):
  """A run whose config.json has `eval.judge_every` (before it became `eval.score_every`)
  resumes without --allow_config_change, goes on scoring every epoch, and eval.py reads its
  period under the new name."""
  import json  # pylint: disable=g-import-not-at-top
  from gm.train import loop  # pylint: disable=g-import-not-at-top
  from gm.commands.base import RunContext  # pylint: disable=g-import-not-at-top
  c = tiny_vae
  c.eval.judge, c.eval.score_every, c.train.num_epochs = judge_dir, 1, 1
  wd = tmp_path / "run"
  loop.train_and_evaluate(c, str(wd))
  cfg = wd / "config.json"
  old = json.loads(cfg.read_text())
  old["eval"]["judge_every"] = old["eval"].pop("score_every")
  cfg.write_text(json.dumps(old, indent=2))  # As train.py wrote it before the rename.
  assert RunContext(str(wd)).config.eval.score_every == 1  # What eval.py reads.
  c.train.num_epochs = 2
  loop.train_and_evaluate(c, str(wd))  # The same config: resumes, no --allow_config_change.
  records = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in records] == [1, 2]
  assert all("judge/frechet" in r for r in records)  # Scored before and after the resume.
  new = json.loads(cfg.read_text())
  assert new["eval"]["score_every"] == 1 and "judge_every" not in new["eval"]
  (bak,) = wd.glob("config.json.*.bak")  # The old file is kept.
  assert json.loads(bak.read_text()) == old


def test_a_loaded_old_config_is_filled_with_the_keys_added_since():
  """Code reads keys directly: an old run's config.json gains ADDED_KEYS in the groups it has."""
  from gm import config_utils  # pylint: disable=g-import-not-at-top
  old = {"family": "vae", "model": {"latent_dim": 2}, "optim": {"lr": 1e-3},
         "train": {"batch_size": 32}}
  c = config_utils.from_dict(old)
  assert (c.model.start, tuple(c.model.encoder_strides), c.model.compute_dtype) == (
      7, (2, 2), "float32")
  assert c.model.encoder_padding == "VALID"
  assert "optim_g" not in c  # No group is added.
  assert "r1_every" not in c.get("loss", {}) and "ema_decay" not in c.train  # GAN keys.


def test_an_old_gan_config_gains_no_autoencoder_keys():
  """ADDED_KEYS of another family stay out of a loaded config (its model group has fields of
  its own: an autoencoder's `model.start` there would be read as if it meant something)."""
  from gm import config_utils  # pylint: disable=g-import-not-at-top
  old = {"family": "gan", "model": {"generator": "mlp", "discriminator": "mlp", "latent_dim": 64},
         "train": {"batch_size": 32}, "loss": {"name": "ns"}}
  c = config_utils.from_dict(old)
  assert not {"out_channels", "start", "encoder_strides", "encoder_padding",
              "decoder_strides"} & set(c.model)
  assert (c.model.compute_dtype, c.train.ema_decay, c.loss.r1_every) == ("float32", 0.0, 1)


def test_the_old_name_on_the_command_line_is_an_error_naming_the_new_one(tmp_path):
  """As for every renamed key, only config.json files are read under the new name: a
  `--config.eval.judge_every` override is a one-line error naming the new key (exit 2,
  nothing written)."""
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  r = subprocess.run([sys.executable, "train.py", "--config", "configs/gan_mlp_mnist.py:smoke",
                      "--workdir", str(tmp_path / "w"), "--config.eval.judge_every=20"],
                     cwd=root, capture_output=True, text=True, timeout=300,
                     env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert r.returncode == 2 and not (tmp_path / "w").exists()
  assert ("config key eval.judge_every is now eval.score_every: "
          "--config.eval.score_every=<value>") in r.stderr
