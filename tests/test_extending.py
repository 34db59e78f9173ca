"""Extending gm from outside the package (docs/extending.md): a relativistic GAN loss, a D
penalty and a G term with their own weights, a new generator, and a discriminator with a new
option, registered here, train a `:smoke` run through the one loop with no edit under gm/."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from configs import common
from gm import train
from gm.losses import gan as gan_losses
from gm.models import gan as gan_models
from tests.conftest import load_config


def _drift(t: gan_losses.TermInputs):
  """A D penalty: D's squared output on real images (PGGAN's drift)."""
  return jnp.mean(t.d_fn(t.real) ** 2)


def _mean_gap(t: gan_losses.TermInputs):
  """A G term that reads D(x): the squared gap between D's global mean outputs."""
  return (t.out.batch_mean(t.out.real) - t.out.batch_mean(t.out.fake)) ** 2


def _rahinge_d(o: gan_losses.DOut):
  """Relativistic average hinge (Jolicoeur-Martineau 2018), D's side."""
  real, fake = o.real - o.batch_mean(o.fake), o.fake - o.batch_mean(o.real)
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def _rahinge_g(o: gan_losses.DOut):
  real, fake = o.real - o.batch_mean(o.fake), o.fake - o.batch_mean(o.real)
  return jnp.mean(jax.nn.relu(1.0 + real)) + jnp.mean(jax.nn.relu(1.0 - fake))


class _TinyGenerator(nn.Module):
  """noise -> dense -> 28x28x1, tanh: the least a generator declares."""
  output_range = (-1.0, 1.0)
  hidden: int = 16

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    del cond, train
    h = nn.relu(nn.Dense(self.hidden)(z))
    return jnp.tanh(nn.Dense(28 * 28)(h)).reshape(-1, 28, 28, 1)


class _NoisyInputDiscriminator(gan_models.MLPDiscriminator):
  """The MLP discriminator with a new option: Gaussian noise of std `input_noise` added to its
  inputs in training (instance noise)."""
  input_noise: float = 0.0

  def __call__(self, x, cond=None, train: bool = True, bn_running: bool = False):
    if train and self.input_noise:
      x = x + self.input_noise * jax.random.normal(self.make_rng("dropout"), x.shape)
    return super().__call__(x, cond, train, bn_running)


def _register():
  if "test-rahinge" not in gan_losses.GAN_LOSSES:
    gan_losses.GAN_LOSSES.register("test-rahinge")(gan_losses.GANLoss(
        _rahinge_d, _rahinge_g, uses_targets=False, probability=False, needs_real=True))
    gan_losses.TERMS.register("test-drift")(gan_losses.Term("d", "drift_weight", _drift))
    gan_losses.TERMS.register("test-gap")(gan_losses.Term("g", "gap_weight", _mean_gap,
                                                          needs_real=True))
  if "test-tiny" not in gan_models.GENERATORS:
    gan_models.GENERATORS.register("test-tiny")(_TinyGenerator)
    gan_models.DISCRIMINATORS.register("test-noisy")(_NoisyInputDiscriminator)


def test_a_loss_terms_and_a_generator_registered_outside_gm_train_a_smoke_run(tmp_path):
  _register()
  c = load_config("gan_mlp_mnist", "smoke")
  common.architectures(c, "test-tiny", "test-noisy", d={"input_noise": 0.1})
  assert c.model.g.to_dict() == {"hidden": 16}  # The new modules' fields and defaults.
  assert c.model.d.to_dict() == {"hidden": (256, 256), "input_noise": 0.1, "leak": 0.01,
                                 "spectral_norm": False}
  c.loss.name = "test-rahinge"
  c.loss.drift_weight = 0.1  # Each term's weight: one config key.
  c.loss.gap_weight = 0.5
  c.train.num_epochs = 1
  c.train.progress = False
  c.train.tensorboard = False
  run = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert int(run.step) == c.data.num_train // c.train.batch_size
  assert np.asarray(run.model.g.params["Dense_0"]["kernel"]).shape == (96, 16)
  with open(tmp_path / "run" / "metrics.jsonl") as f:
    record = [json.loads(line) for line in f][-1]
  assert np.isfinite(record["train/test-drift"]) and record["train/test-drift"] >= 0
  assert np.isfinite(record["train/test-gap"]) and record["train/test-gap"] >= 0
  assert np.isfinite(record["train/d_loss"]) and np.isfinite(record["train/g_loss"])
  with open(tmp_path / "run" / "config.json") as f:
    assert json.load(f)["model"]["d"]["input_noise"] == 0.1
  from gm import families  # pylint: disable=g-import-not-at-top
  assert families.get(c).disc.input_noise == 0.1  # The option reaches the module.


def test_terms_registered_for_other_configs_stay_off():
  _register()
  from gm.families.gan import active_terms  # pylint: disable=g-import-not-at-top
  c = load_config("gan_mlp_mnist", "smoke")
  assert active_terms(gan_losses.GAN_LOSSES.get("ns"), c.loss) == []  # no drift/gap keys: off
  c.loss.drift_weight = 0.0
  assert active_terms(gan_losses.GAN_LOSSES.get("ns"), c.loss) == []  # weight 0: off
  c.loss.drift_weight, c.loss.r1_weight = 0.2, 4.0
  on = active_terms(gan_losses.GAN_LOSSES.get("ns"), c.loss)
  assert [(name, weight) for name, weight, _ in on] == [("r1", 2.0), ("test-drift", 0.2)]
  gp = active_terms(gan_losses.GAN_LOSSES.get("wgan-gp"), c.loss)
  assert [name for name, *_ in gp] == ["gp", "r1", "test-drift"]  # the loss's own term is on
