"""Extending gm from outside the package (docs/extending.md): a new GAN loss with its own
weight and a new generator, registered here, train a `:smoke` step through the one loop."""

import json

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from gm import train
from gm.losses import gan as gan_losses
from gm.models import gan as gan_models
from tests.conftest import load_config


def _mean_output_penalty(d_fn, real, fake, key):
  """A toy penalty: D's squared mean output on real images (drift, as in PGGAN)."""
  del fake, key
  return jnp.mean(d_fn(real) ** 2)


class _TinyGenerator(nn.Module):
  """noise -> dense -> 28x28x1, tanh: the least a generator declares."""
  output_range = (-1.0, 1.0)
  hidden: int = 16

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    del cond, train
    h = nn.relu(nn.Dense(self.hidden)(z))
    return jnp.tanh(nn.Dense(28 * 28)(h)).reshape(-1, 28, 28, 1)


def _register():
  if "test-hinge-drift" not in gan_losses.GAN_LOSSES:
    gan_losses.GAN_LOSSES.register("test-hinge-drift")(gan_losses.GANLoss(
        gan_losses.hinge_d, gan_losses.critic_g, uses_targets=False, probability=False,
        penalty=_mean_output_penalty, weight="drift_weight"))
  if "test-tiny" not in gan_models.GENERATORS:
    gan_models.GENERATORS.register("test-tiny")(_TinyGenerator)


def test_a_loss_and_a_generator_registered_outside_gm_train_a_smoke_step(tmp_path):
  _register()
  c = load_config("gan_mlp_mnist", "smoke")
  c.model.generator = "test-tiny"
  c.loss.name = "test-hinge-drift"
  c.loss.drift_weight = 0.1  # The loss's own weight: one config key.
  c.train.num_epochs = 1
  c.train.progress = False
  c.train.tensorboard = False
  run = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert int(run.step) == c.data.num_train // c.train.batch_size
  assert np.asarray(run.model.g.params["Dense_0"]["kernel"]).shape == (96, 16)
  with open(tmp_path / "run" / "metrics.jsonl") as f:
    record = [json.loads(line) for line in f][-1]
  assert np.isfinite(record["train/drift"]) and record["train/drift"] >= 0
  assert np.isfinite(record["train/d_loss"]) and np.isfinite(record["train/g_loss"])
