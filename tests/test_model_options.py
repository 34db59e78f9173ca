"""Model options: the architectures' fields as typed config groups (`model.g`, `model.d`),
defaults from the modules, command-line overrides, old runs, and spectral normalization."""

import dataclasses
import json
import os
import typing

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from gm import cli, config_utils, models
from gm.errors import ConfigError, UserError
from gm.models import gan as M
from tests.conftest import ROOT, load_config

GAN_CONFIGS = ["gan_mlp_mnist", "lsgan_mlp_mnist", "dcgan_mnist", "cgan_mnist", "dcgan_cake",
               "dcgan_cake_upsample", "dcgan_cake32", "cake_fast", "cake_grow", "cake_sngan"]
GROUPS = (("g", "generator", M.GENERATORS), ("d", "discriminator", M.DISCRIMINATORS))


def _matches(annotation, value) -> bool:
  if annotation is bool:
    return isinstance(value, bool)
  if annotation in (int, float, str):
    return type(value) is annotation
  return typing.get_origin(annotation) is not None and isinstance(value, tuple)


def test_the_gan_configs_are_all_listed():
  names = {f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
           if f.endswith(".py") and f not in ("__init__.py", "common.py")}
  assert {n for n in names if load_config(n, "smoke").family == "gan"} == set(GAN_CONFIGS)


@pytest.mark.parametrize("arg", ["", "smoke"])
@pytest.mark.parametrize("name", GAN_CONFIGS)
def test_every_gan_config_holds_every_field_of_its_architectures_typed_by_the_module(name, arg):
  c = load_config(name, arg or None)
  for group, key, registry in GROUPS:
    cls = registry.get(c.model[key])
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    assert set(c.model[group]) == set(models.options(cls)), (name, group)
    for field, value in c.model[group].items():
      assert _matches(types[field], value), (name, group, field, value, types[field])


def test_the_groups_start_at_the_modules_own_defaults():
  """Defaults live in the module once: a config that sets nothing holds the module's values."""
  c = load_config("dcgan_mnist", None)
  assert c.model.d.to_dict() == {"leak": 0.01, "spectral_norm": False}
  assert c.model.d.to_dict() == models.options(M.DCGANMnistDiscriminator)


def _parse(*argv):
  """train.py's --config flag on argv: (config, None), or (None, train.py's one-line error)."""
  argv = ["train.py", "--config", os.path.join(ROOT, "configs", "cake_fast.py:smoke"), *argv]
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, flag_values=fv, sys_argv=argv)
  try:
    fv(list(argv))
  except Exception as e:  # pylint: disable=broad-except
    return None, cli.explain_flag_error(argv, e)
  return fv.config, None


def test_the_command_line_sets_any_field_with_its_type():
  config, err = _parse("--config.model.d.spectral_norm=true", "--config.model.d.norm=none",
                       "--config.model.g.width=8", "--config.model.d.leak=0.1")
  assert err is None
  assert config.model.d.spectral_norm is True and config.model.d.norm == "none"
  assert config.model.g.width == 8 and config.model.d.leak == 0.1


def test_a_field_the_architecture_lacks_or_a_wrong_type_is_one_line_naming_the_fields():
  _, err = _parse("--config.model.d.dropout=0.3")
  assert err == ("--config.model.d.dropout: unknown config key model.d.dropout; valid keys under "
                 "model.d (the fields of model.discriminator 'dcgan'): leak, norm, size, "
                 "spectral_norm, width")
  _, err = _parse("--config.model.d.spectral_norm=maybe")
  assert err == ("--config.model.d.spectral_norm=maybe: model.d.spectral_norm takes true or "
                 "false, e.g. --config.model.d.spectral_norm=false")
  _, err = _parse("--config.model.generator_kwargs.width=4")
  assert err == ("--config.model.generator_kwargs.width: config key model.generator_kwargs is "
                 "now model.g: --config.model.g.width=<value>")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_a_non_finite_model_field_is_refused_before_training(text):
  """A NaN leak would train and end as a divergence that blames the learning rate."""
  spec = os.path.join(ROOT, "configs", "cake_sngan.py:smoke")
  with pytest.raises(ConfigError) as e:
    config_utils.load_file(spec, [f"model.d.leak={text}"])
  assert str(e.value) == (f"config value out of range: model.d.leak={float(text)} (must be "
                          "finite); set it with --set <key>=<value>")


def test_another_architecture_on_the_command_line_takes_its_own_fields():
  """Switching model.generator starts from the new module's defaults plus the fields the
  command line set: not the old module's values (cake_fast's smoke width=4 channels would be a
  4x width factor of dcgan_cake)."""
  spec = os.path.join(ROOT, "configs", "dcgan_cake.py:smoke")
  c = config_utils.load_file(spec, ["model.generator=dcgan_cake_upsample", "model.g.leak=0.1"])
  assert c.model.g.to_dict() == {**models.options(M.DCGANCakeUpsampleGenerator), "leak": 0.1}
  spec = os.path.join(ROOT, "configs", "cake_fast.py:smoke")
  c = config_utils.load_file(spec, ["model.generator=dcgan_cake", "model.g.leak=0.3"])
  assert c.model.g.to_dict() == {**models.options(M.DCGANCakeGenerator), "leak": 0.3}
  with pytest.raises(UserError, match=r"^--set model\.g\.width=0\.25: model\.g\.width takes an "
                     r"integer, e\.g\. --set model\.g\.width=4$"):  # Not truncated to 0.
    config_utils.load_file(spec, ["model.g.width=0.25"])
  with pytest.raises(ConfigError, match=r"^model\.g\.norm: DCGANCakeGenerator has no field "
                     r"'norm'; its fields: channels, filters, leak, start, start_channels, width$"):
    config_utils.load_file(spec, ["model.generator=dcgan_cake", "model.g.norm=batch"])


def test_a_switched_architecture_types_its_fields_by_the_new_module():
  """`width` is channels (int) of cake_fast's `dcgan` and a factor (float) of `dcgan_cake`: with
  the switch, 0.25 is the new module's width, in either order of the overrides; without it,
  0.25 stays an error of the file's module (above)."""
  spec = os.path.join(ROOT, "configs", "cake_fast.py:smoke")
  for sets in (["model.generator=dcgan_cake", "model.g.width=0.25"],
               ["model.g.width=0.25", "model.generator=dcgan_cake"]):
    c = config_utils.load_file(spec, sets)
    assert c.model.g.to_dict() == {**models.options(M.DCGANCakeGenerator), "width": 0.25}
  c = config_utils.load_file(spec, ["model.discriminator=dcgan_cake", "model.d.width=1"])
  assert c.model.d.width == 1.0 and isinstance(c.model.d.width, float)
  assert c.model.g.width == 4  # The generator was not switched.
  with pytest.raises(UserError, match=r"^--set model\.g\.width=abc: model\.g\.width takes a "
                     r"number, e\.g\. --set model\.g\.width=1\.0$"):
    config_utils.load_file(spec, ["model.generator=dcgan_cake", "model.g.width=abc"])


def test_train_py_switches_an_architecture_with_a_field_the_file_types_otherwise(tmp_path):
  """The same on train.py's command line (absl would type --config.model.g.width by the config
  file's module): the run's config.json holds the new module's fields; an unknown field of the
  new module is one line naming its fields, and nothing is written."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  (tmp_path / "photos").mkdir()
  for i in range(8):
    Image.fromarray(np.full((64, 64, 3), 30 * i, np.uint8)).save(tmp_path / "photos" / f"{i}.png")

  def train(workdir, *extra):
    return subprocess.run(
        [sys.executable, "train.py", "--config", "configs/dcgan_cake.py:smoke", "--workdir",
         str(workdir), f"--config.data.dir={tmp_path / 'photos'}",
         f"--config.data.cache_dir={tmp_path / 'cache'}",
         "--config.train.num_epochs=0", "--config.model.generator=dcgan",
         "--config.model.g.size=64", *extra], cwd=ROOT, capture_output=True, text=True,
        timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})

  r = train(tmp_path / "a", "--config.model.g.width", "8")  # dcgan_cake's width is a float.
  assert r.returncode == 0, r.stderr[-2000:]
  g = json.loads((tmp_path / "a" / "config.json").read_text())["model"]["g"]
  assert g == {**json.loads(json.dumps(models.options(M.DCGANGenerator))), "width": 8, "size": 64}
  r = train(tmp_path / "b", "--config.model.g.filters=(8,)")
  assert r.returncode == 2 and not (tmp_path / "b").exists()
  assert r.stderr.strip() == ("error: model.g.filters: DCGANGenerator has no field "
                              "'filters'; its fields: " + ", ".join(sorted(models.options(
                                  M.DCGANGenerator))))


def _old_layout(d: dict) -> dict:
  """A config dict as train.py wrote it before the typed groups: the fields a config set in
  `generator_kwargs` / `discriminator_kwargs`, and no `norm` / `spectral_norm` fields."""
  d = json.loads(json.dumps(d))
  m = d["model"]
  for group, old, cls in (("g", "generator_kwargs", M.GENERATORS.get(m["generator"])),
                          ("d", "discriminator_kwargs", M.DISCRIMINATORS.get(m["discriminator"]))):
    defaults = json.loads(json.dumps(models.options(cls)))
    m[old] = {k: v for k, v in m.pop(group).items()
              if v != defaults[k] and k not in ("norm", "spectral_norm")}
  return d


@pytest.mark.parametrize("name", ["dcgan_cake", "cake_fast", "cake_grow", "dcgan_mnist"])
def test_an_old_run_config_reads_as_the_new_groups_and_needs_no_config_change(name):
  new = config_utils.to_dict(load_config(name, "smoke"))
  old = _old_layout(new)
  assert "g" not in old["model"] and "spectral_norm" not in json.dumps(old)
  assert config_utils.differences(old, new) == []
  model = config_utils.to_dict(config_utils.from_dict(old))["model"]
  assert (model["g"], model["d"]) == (new["model"]["g"], new["model"]["d"])
  assert "generator_kwargs" not in model and "discriminator_kwargs" not in model


def test_a_run_written_before_the_typed_groups_resumes_at_the_fields_defaults(tmp_path):
  """End to end: a GAN run whose config.json has generator_kwargs / discriminator_kwargs and
  lacks the fields added since reopens under today's config without --allow_config_change
  (its checkpoint restored, config.json rewritten with the groups)."""
  from gm.train import loop  # pylint: disable=g-import-not-at-top
  c = load_config("gan_mlp_mnist", "smoke")
  c.train.progress, c.train.tensorboard, c.train.num_epochs = False, False, 1
  c.model.g.hidden, c.model.d.hidden = (32,), (16,)
  wd = tmp_path / "run"
  loop.train_and_evaluate(c, str(wd))
  cfg = wd / "config.json"
  old = _old_layout(json.loads(cfg.read_text()))
  assert old["model"]["generator_kwargs"] == {"hidden": [32]}
  cfg.write_text(json.dumps(old, indent=2))
  run = loop.train_and_evaluate(c, str(wd))  # Reopens and restores; would raise on a change.
  assert int(run.step) == c.data.num_train // c.train.batch_size  # The finished run, restored.
  assert json.loads(cfg.read_text())["model"]["d"] == {"hidden": [16], "leak": 0.01,
                                                       "spectral_norm": False}


# --- spectral normalization ------------------------------------------------------------------

class _SNDense(nn.Module):
  @nn.compact
  def __call__(self, x, train):
    return M._spectral(nn.Dense(3), True, train)(x)  # pylint: disable=protected-access


def _normalize(v):
  return v / max(np.linalg.norm(v), 1e-12)


def test_spectral_norm_divides_the_kernel_by_one_power_iteration_estimate():
  """Miyato et al. 2018, Algorithm 1, for W = kernel^T [out, in] and the stored u [out]:
  v = W^T u / |W^T u|, u' = W v / |W v|, sigma = u'^T W v; the layer computes x (W / sigma)^T + b
  and, in training, stores u'. Repeated training calls converge to the largest singular value."""
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
  m = _SNDense()
  v = m.init(jax.random.PRNGKey(0), x, train=False)
  kernel, bias = (np.asarray(v["params"]["Dense_0"][k], np.float64) for k in ("kernel", "bias"))
  (u0,) = [np.asarray(a, np.float64)[0] for p, a in
           jax.tree_util.tree_leaves_with_path(v["batch_stats"]) if p[-1].key.endswith("/u")]
  w = kernel.T  # [out, in]
  vv = _normalize(w.T @ u0)
  u1 = _normalize(w @ vv)
  sigma = u1 @ w @ vv
  out, upd = m.apply(v, x, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(np.asarray(out), np.asarray(x) @ (w / sigma).T + bias, rtol=1e-5)
  stats = dict((p[-1].key.rsplit("/", 1)[-1], np.asarray(a)) for p, a in
               jax.tree_util.tree_leaves_with_path(upd["batch_stats"]))
  np.testing.assert_allclose(stats["u"][0], u1, rtol=1e-5)
  np.testing.assert_allclose(stats["sigma"], sigma, rtol=1e-5)
  frozen = m.apply(v, x, train=False, mutable=["batch_stats"])[1]  # Inference: u unchanged.
  assert jax.tree.leaves(frozen)[1].tolist() == jax.tree.leaves(v["batch_stats"])[1].tolist()
  variables = v
  for _ in range(60):
    _, upd = m.apply(variables, x, train=True, mutable=["batch_stats"])
    variables = {"params": v["params"], "batch_stats": upd["batch_stats"]}
  np.testing.assert_allclose(stats_sigma(variables), np.linalg.svd(w, compute_uv=False)[0],
                             rtol=1e-4)


def stats_sigma(variables) -> float:
  return float([a for p, a in jax.tree_util.tree_leaves_with_path(variables["batch_stats"])
                if p[-1].key.endswith("/sigma")][0])


SHAPES = {"mlp": (28, 28, 1), "dcgan_mnist": (28, 28, 1), "dcgan_cake32": (32, 32, 3)}


@pytest.mark.parametrize("name", M.DISCRIMINATORS.names())
def test_every_discriminator_takes_spectral_norm_and_keeps_its_parameters(name):
  """The option adds u / sigma per weight to batch_stats and nothing to params (a run's
  parameters read the same either way); `norm='none'` drops batch norm where D has it."""
  cls = M.DISCRIMINATORS.get(name)
  x = jnp.ones((2, *SHAPES.get(name, (64, 64, 3))))
  keys = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
  init = lambda **fields: jax.eval_shape(  # Shapes only: nothing computed.
      lambda: cls(**fields).init(keys, x, train=False))
  plain, sn = init(), init(spectral_norm=True)
  assert jax.tree.structure(plain["params"]) == jax.tree.structure(sn["params"])
  weights = [a for a in jax.tree.leaves(plain["params"]) if len(a.shape) >= 2]
  added = jax.tree.leaves(sn["batch_stats"])
  assert len(added) - len(jax.tree.leaves(plain.get("batch_stats", {}))) == 2 * len(weights)
  if "norm" in models.options(cls):
    bare = init(spectral_norm=True, norm="none")
    assert not any("BatchNorm" in jax.tree_util.keystr(p)
                   for p, _ in jax.tree_util.tree_leaves_with_path(bare))
    with pytest.raises(ConfigError) as e:
      init(norm="layer")
    assert str(e.value) == "model.d.norm='layer'; valid: batch, none"


def test_the_discriminator_step_advances_spectral_norm_and_the_generator_step_does_not():
  from gm import families  # pylint: disable=g-import-not-at-top
  c = load_config("cake_sngan", "smoke")
  assert c.model.d.spectral_norm and c.model.d.norm == "none" and c.loss.name == "hinge"
  c.model.g.size = c.model.d.size = 16  # Few layers: a quick compile.
  family = families.get(c)
  family.total_steps = 10
  images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
  state = jax.jit(family.init)(jax.random.PRNGKey(0), {"image": images, "label": np.zeros(8, np.int32)})
  x, key = family.inputs({"image": images}), jax.random.PRNGKey(3)
  u = lambda s: [a for p, a in jax.tree_util.tree_leaves_with_path(s.d.batch_stats)
                 if jax.tree_util.keystr(p).endswith("/u']")]
  assert len(u(state)) == 3  # The 2 convs and the dense layer of the 16 px dcgan D.
  d_state, _ = jax.jit(family.d_step)(state, x, None, key)
  assert all(not np.array_equal(a, b) for a, b in zip(u(state), u(d_state)))
  g_state, _ = jax.jit(family.g_step)(d_state, x, None, key)
  assert all(np.array_equal(a, b) for a, b in zip(u(d_state), u(g_state)))
