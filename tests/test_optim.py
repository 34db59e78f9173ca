"""Optimizer settings against optax itself: what each config asks for is what the run gets.

Each check builds the expected transform with optax directly, from numbers
written here (what each config is meant to train with), and compares the
updates of the built optimizer on one random gradient sequence bit for bit. A
swapped beta, a wrong learning rate, a dropped clip or schedule, or the
discriminator's schedule counting generator steps would all pass every other
test and train differently.
"""

import glob
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import common
from gm import data as gm_data, optim
from gm.train import loop
from tests.conftest import ROOT, load_config

# (config, arg) -> optimizer groups -> (name, lr, b1, b2, schedule). Adam's b2 is 0.999 everywhere.
GAN_MNIST = {"optim_g": ("adam", 1e-3, 0.5, 0.999, "constant"),  # CS231n: Adam 1e-3, beta1 0.5.
             "optim_d": ("adam", 1e-3, 0.5, 0.999, "constant")}
CAKE = {"optim_g": ("adam", 1e-5, 0.9, 0.999, "constant"),  # The assignment (Keras): Adam(1e-5) defaults.
        "optim_d": ("adam", 1e-5, 0.9, 0.999, "constant")}
EXPECTED = {
    ("ae_mnist", None): {"optim": ("adam", 1e-3, 0.9, 0.999, "constant")},
    ("vae_mnist", None): {"optim": ("adam", 1e-4, 0.9, 0.999, "constant")},  # The TF tutorial.
    ("vae_mnist", "quick"): {"optim": ("adam", 1e-3, 0.9, 0.999, "constant")},
    ("cvae_mnist", None): {"optim": ("adam", 1e-3, 0.9, 0.999, "constant")},
    ("classifier_mnist", None): {"optim": ("adam", 1e-3, 0.9, 0.999, "cosine")},
    ("gan_mlp_mnist", None): GAN_MNIST,
    ("lsgan_mlp_mnist", None): GAN_MNIST,
    ("dcgan_mnist", None): GAN_MNIST,
    ("cgan_mnist", None): GAN_MNIST,
    ("dcgan_cake", None): CAKE,
    ("dcgan_cake_upsample", None): CAKE,
    ("cake_fast", None): {"optim_g": ("adam", 2e-4, 0.5, 0.99, "constant"),  # The fast recipe.
                          "optim_d": ("adam", 2e-4, 0.5, 0.99, "constant")},
    ("cake_sngan", None): {"optim_g": ("adam", 2e-4, 0.5, 0.99, "constant"),  # Its D: SNGAN's.
                           "optim_d": ("adam", 2e-4, 0.5, 0.99, "constant")},
    ("cake_grow", None): {"optim_g": ("adam", 2e-4, 0.5, 0.99, "constant"),  # Growing, 64 px.
                          "optim_d": ("adam", 2e-4, 0.5, 0.99, "constant")},
    ("dcgan_cake", "cpu"): {"optim_g": ("adam", 2e-4, 0.5, 0.99, "constant"),  # At width 0.25.
                            "optim_d": ("adam", 2e-4, 0.5, 0.99, "constant")},
    ("dcgan_cake32", None): {"optim_g": ("adam", 1.5e-5, 0.5, 0.999, "constant"),  # The 32x32 report.
                             "optim_d": ("adam", 1e-5, 0.5, 0.999, "constant")},
}


def _updates(tx, steps: int = 5, seed: int = 0):
  """Updates of `tx` along one random gradient sequence (norms from 0.03 to 30) on small params."""
  rng = np.random.default_rng(seed)
  params = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
  state = tx.init(params)
  out = []
  for t in range(steps):
    scale = 10.0 ** (t % 4 - 1.5)
    grads = jax.tree.map(lambda p: jnp.asarray(scale * rng.normal(size=p.shape), jnp.float32),
                         params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    out += [np.asarray(u) for u in jax.tree.leaves(updates)]
  return out


def _assert_same_updates(tx, expected, steps: int = 5):
  got, want = _updates(tx, steps), _updates(expected, steps)
  assert all(np.abs(w).max() > 0 for w in want)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-7, atol=0)


def test_every_config_has_a_row():
  """A new config needs its optimizer settings written down here."""
  names = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))}
  names -= {"__init__", "common"}
  missing = names - {name for name, _ in EXPECTED}
  assert not missing, f"add the optimizer settings of {sorted(missing)} to EXPECTED"


@pytest.mark.parametrize("name,arg", sorted(EXPECTED, key=str))
def test_each_config_builds_the_optax_transform_it_names(name, arg):
  """Each group's name, learning rate, betas and schedule, and the transform built from them."""
  config = load_config(name, arg)
  total = 40
  for group, (opt, lr, b1, b2, schedule) in EXPECTED[(name, arg)].items():
    cfg = config[group]
    assert (cfg.name, cfg.get("schedule", "constant")) == (opt, schedule), group
    assert (cfg.lr, cfg.b1, cfg.b2) == (lr, b1, b2), group
    assert not cfg.get("grad_clip", 0.0), group
    rate = lr if schedule == "constant" else optax.cosine_decay_schedule(lr, total)
    _assert_same_updates(optim.make_optimizer(cfg, total), optax.adam(rate, b1=b1, b2=b2))


def _opt(**kw):
  """configs/common.py's optimizer group (every key a run has), with `kw` set."""
  c = common.base().optim
  c.update(kw)
  return c


def _sgd(lr, **kw):
  return _opt(name="sgd", lr=lr, **kw)


def test_schedules_take_their_values_at_given_steps():
  """constant, cosine over the run, linear warmup then cosine: the formulas, at given steps."""
  cos = lambda t, n: 0.5 * (1 + math.cos(math.pi * min(t, n) / n))
  cases = {
      "constant": lambda t: 0.1,
      "cosine": lambda t: 0.1 * cos(t, 20),
      "warmup_cosine": lambda t: 0.1 * t / 5 if t < 5 else 0.1 * cos(t - 5, 15),
  }
  for name, want in cases.items():
    sched = optim.make_schedule(_sgd(0.1, schedule=name, warmup_steps=5), 20)
    for t in (0, 1, 4, 5, 6, 10, 19, 20, 25):
      assert float(sched(t)) == pytest.approx(want(t), rel=1e-6, abs=1e-8), (name, t)
  # The optimizer applies the schedule: SGD's update is -lr(t) * grad at its t-th update.
  tx = optim.make_optimizer(_sgd(0.1, schedule="warmup_cosine", warmup_steps=5), 20)
  params = {"w": jnp.zeros(3)}
  state, g = tx.init(params), {"w": jnp.asarray([1.0, -2.0, 0.5])}
  for t in range(8):
    u, state = tx.update(g, state, params)
    np.testing.assert_allclose(u["w"], -cases["warmup_cosine"](t) * g["w"], rtol=1e-6, atol=1e-9)
  with pytest.raises(ValueError, match="valid names: constant, cosine"):
    optim.make_schedule(_sgd(0.1, schedule="step"), 20)


def test_gradient_clipping_adamw_sgd_momentum():
  """grad_clip chains a global-norm clip before the optimizer; adamw, sgd read their extras."""
  adam = _opt(name="adam", lr=1e-3, b1=0.5, b2=0.99, grad_clip=1.0)
  _assert_same_updates(optim.make_optimizer(adam, 10), optax.chain(
      optax.clip_by_global_norm(1.0), optax.adam(1e-3, b1=0.5, b2=0.99)))
  # The clip is not a no-op on this sequence (Adam normalises scale, but not across steps).
  with pytest.raises(AssertionError):
    _assert_same_updates(optim.make_optimizer(adam, 10), optax.adam(1e-3, b1=0.5, b2=0.99))
  sgd = _sgd(0.1, grad_clip=0.5)
  _assert_same_updates(optim.make_optimizer(sgd, 10), optax.chain(
      optax.clip_by_global_norm(0.5), optax.sgd(0.1)))
  adamw = _opt(name="adamw", lr=1e-2, b1=0.8, b2=0.95, weight_decay=0.05)
  _assert_same_updates(optim.make_optimizer(adamw, 10),
                       optax.adamw(1e-2, b1=0.8, b2=0.95, weight_decay=0.05))
  _assert_same_updates(optim.make_optimizer(_sgd(0.1, momentum=0.9), 10),
                       optax.sgd(0.1, momentum=0.9))


def test_rollback_scales_every_learning_rate_and_nothing_else():
  """`scale_learning_rates` (the divergence rollback): lr x scale in each optimizer group."""
  for name in ("gan_mlp_mnist", "vae_mnist"):
    config = load_config(name, None)
    before = config.to_dict()
    scaled = optim.scale_learning_rates(config, 0.25)
    assert config.to_dict() == before  # The run's own config is untouched.
    groups = [g for g in before if g.startswith("optim")]
    assert groups == (["optim_d", "optim_g"] if name.startswith("gan") else ["optim"])
    want = {**before, **{g: {**before[g], "lr": before[g]["lr"] * 0.25} for g in groups}}
    assert scaled.to_dict() == want
    for g in groups:
      c = before[g]
      _assert_same_updates(optim.make_optimizer(scaled[g], 10),
                           optax.adam(c["lr"] * 0.25, b1=c["b1"], b2=c["b2"]))


def _build(config, train):
  """`loop.build`'s family and run state, traced only (shapes, no compile): the optimizers
  are the state's static `tx` fields."""
  out = {}

  def build():
    out["family"], run, _ = loop.build(config, gm_data.Dataset(train=train, test=train, info={}))
    return run

  run = jax.eval_shape(build)
  return out["family"], run.model


def test_each_network_gets_its_own_optimizer_and_the_discriminator_counts_its_own_steps():
  """optim_g drives G, optim_d drives D; with d_steps D updates per G update, D's schedule
  spans d_steps x the run's generator steps (its optax step count)."""
  c = load_config("gan_mlp_mnist", "smoke")
  c.train.d_steps, c.train.batch_size, c.train.num_epochs = 3, 4, 5
  c.optim_g.lr, c.optim_g.schedule = 2e-3, "cosine"
  c.optim_d.lr, c.optim_d.schedule, c.optim_d.b1 = 5e-4, "cosine", 0.7
  n = 3 * 4 * 6  # 6 steps per epoch, each taking d_steps * batch_size examples.
  train = {"image": np.zeros((n, 28, 28, 1), np.uint8), "label": np.zeros(n, np.int32)}
  family, state = _build(c, train)
  assert family.total_steps == 30  # (test_gan: one train_step makes 3 D updates and 1 G update.)
  _assert_same_updates(state.g.tx, optax.adam(optax.cosine_decay_schedule(2e-3, 30), b1=0.5),
                       steps=8)
  _assert_same_updates(state.d.tx, optax.adam(optax.cosine_decay_schedule(5e-4, 90), b1=0.7),
                       steps=8)


def test_autoencoder_and_classifier_schedules_span_the_run():
  """Non-GAN families build `optim` over the run's optimizer steps (epochs x steps per epoch)."""
  c = load_config("classifier_mnist", "smoke")
  c.train.batch_size, c.train.num_epochs = 4, 3
  train = {"image": np.zeros((20, 28, 28, 1), np.uint8), "label": np.zeros(20, np.int32)}
  family, state = _build(c, train)
  assert family.total_steps == 15
  _assert_same_updates(state.tx, optax.adam(optax.cosine_decay_schedule(1e-3, 15)), steps=8)
