"""Training moves the right way, for every family, in seconds on the CPU.

The formula tests pin each loss in isolation; these pin the direction of the
updates that use them: a sign error in the VAE objective or in a GAN step, a
swapped real/fake pair, generator and discriminator labels that disagree, would
pass the formula tests and train nothing. Each test measures the model before and
after a few updates on fixed data with fixed keys, with quantities computed
outside the update being checked where the update's own metric could be wrong
in the same way as its gradient.
"""

import jax
import numpy as np
import pytest

from gm import data as gm_data, families
from gm.judge import load_judge
from tests.conftest import assert_trees_equal, load_config, tiny
from tests.resume_check import moved_means, straight_and_resumed


def _setup(name, arg="smoke", **overrides):
  """Like tests.conftest.tiny, but the initial state is init(PRNGKey(0)): the learning checks'
  preconditions (an untrained D rating the reals lower) were set on that draw."""
  t = tiny(name, arg=arg, **overrides)
  return t.config, t.family, t.family.init(jax.random.PRNGKey(0), t.batch), t.dataset


def _train(family, state, train, steps, batch_size, seed=0):
  """`steps` updates on batches drawn from `train` (a fixed sequence for a seed)."""
  step = jax.jit(family.train_step)
  n = len(train["image"])
  rng = np.random.default_rng(seed)
  for i in range(steps):
    idx = rng.choice(n, batch_size, replace=False)
    state, _ = step(state, {k: v[idx] for k, v in train.items()}, jax.random.PRNGKey(100 + i))
  return state


def test_vae_test_elbo_rises_within_a_few_dozen_steps():
  """The test ELBO (closed-form KL) of 128 held-out digits, same key before and after 40 steps."""
  _, family, state, ds = _setup("vae_mnist", optim__lr=1e-3)
  test = {k: v[:128] for k, v in ds.test.items()}
  elbo = jax.jit(lambda s: family.eval_step(s, test, jax.random.PRNGKey(7))["elbo"].mean())
  before = float(elbo(state))
  after = float(elbo(_train(family, state, ds.train, 40, 32)))
  assert after > before + 60, (before, after)


def test_ae_test_reconstruction_error_falls():
  """Test MSE of 128 held-out digits before and after 40 steps of the AE (bce loss)."""
  _, family, state, ds = _setup("ae_mnist")
  test = {k: v[:128] for k, v in ds.test.items()}
  mse = jax.jit(lambda s: family.eval_step(s, test, None)["mse"].mean())
  before = float(mse(state))
  after = float(mse(_train(family, state, ds.train, 40, 32)))
  assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("loss", ["ns", "minimax", "lsgan", "hinge", "wgan-gp", "ragan", "ralsgan",
                                  "ns+fm"])
def test_each_gan_update_lowers_its_own_loss_with_the_other_network_frozen(loss):
  """One discriminator update (G frozen) on a batch lowers D's loss on that batch and widens
  the gap between its outputs on real and fake; eight updates turn the untrained D, which
  rates these reals below these fakes, round to rate them clearly above. (With real and fake
  swapped in LSGAN's loss, one update still lowers that loss and widens the gap: both outputs
  rise towards the swapped targets, the reals' faster; the reals overshoot 0 for a few steps
  and then settle below the fakes.) One generator update (D frozen) lowers G's loss on the
  same noise and raises D's output on G's samples, as measured by the D step.

  Learning rate 1e-4: Adam's first step moves every weight by about the learning rate, and
  at the config's 1e-3 it overshoots LSGAN's target (D's loss rises). The D(G(z)) check uses
  `d_step`'s own readout of D on G's samples, computed outside `g_step`, so a sign error in the
  generator's loss cannot hide behind its own metric.
  """
  loss, _, fm = loss.partition("+")  # ns+fm: feature matching added to G's loss
  _, family, state, ds = _setup("gan_mlp_mnist", loss__name=loss, optim_g__lr=1e-4,
                                optim_d__lr=1e-4, loss__fm_weight=1.0 if fm else 0.0)
  x = family.inputs({"image": ds.train["image"][:64]})
  kd, kg = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
  d_step, g_step = jax.jit(family.d_step), jax.jit(family.g_step)
  lc = family.config.loss

  def d_objective(m):  # What the D step minimises, on its batch.
    return float(m["d_loss"] + lc.gp_weight * m.get("gp", 0.0)
                 + 0.5 * lc.r1_weight * m.get("r1", 0.0))

  after_d, m0 = d_step(state, x, None, kd)
  _, m1 = d_step(after_d, x, None, kd)  # Same batch, same fakes, same draws: D's new parameters.
  assert d_objective(m1) < d_objective(m0), (m0, m1)
  assert float(m1["d_real"] - m1["d_fake"]) > float(m0["d_real"] - m0["d_fake"]), (m0, m1)
  assert float(m0["d_real"]) < float(m0["d_fake"]), m0  # Untrained: the reals rated lower.
  trained_d = after_d
  for _ in range(7):
    trained_d, _ = d_step(trained_d, x, None, kd)
  _, m8 = d_step(trained_d, x, None, kd)  # After 8 updates. Measured gaps: ns and minimax 0.45,
  assert float(m8["d_real"] - m8["d_fake"]) > 0.3, (m0, m8)  # lsgan 1.08; swapped lsgan -0.19.
  after_g, g0 = g_step(after_d, x, None, kg)
  _, g1 = g_step(after_g, x, None, kg)  # Same noise and labels: G's new parameters.
  g_objective = lambda m: float(m["g_loss"] + lc.fm_weight * m.get("feature_matching", 0.0))
  assert g_objective(g1) < g_objective(g0), (g0, g1)
  if fm:  # Feature matching dominates this G step: it pulls G's features to the reals'.
    assert float(g1["feature_matching"]) < float(g0["feature_matching"]), (g0, g1)
    return
  # D's readout of G's samples in the D step (same D, noise and draws as m1): G's new samples
  # look more real to D.
  _, seen_after = d_step(after_g, x, None, kd)
  assert float(seen_after["d_fake"]) > float(m1["d_fake"]), (m1, seen_after)


def test_conditional_gan_draws_the_requested_digits_and_resumes_bit_exactly(tmp_path, judge_dir):
  """The conditional DCGAN on the zeros and ones of the smoke set (labels 0 and 1,
  `num_classes=2`: the same code as 10 classes, and digit shapes within a few dozen steps),
  45 epochs of 3 steps (batch 32, learning rate 2e-3), through the loop's epoch runner:

  - its last epoch, resumed from the checkpoint before it, ends bit-identical (batch norm
    in G, one-hot labels, both Optax states; `tests/resume_check.py`);
  - the MNIST judge reads its samples as the requested digit far above the 50 % of a
    generator that ignores its label (measured 0.94-1.0 after 135 steps over 4 seeds, at
    most 0.04 after 60: the digits form in between). Labels must reach G and D, and D must see each
    fake with the label it was drawn for.
  """
  c = load_config("cgan_mnist", "smoke")
  c.model.num_classes = 2
  c.optim_g.lr = c.optim_d.lr = 2e-3
  c.train.batch_size, c.train.num_epochs = 32, 45
  ds = gm_data.load(c.data)
  ds.train = {k: v[ds.train["label"] <= 1] for k, v in ds.train.items()}
  assert len(ds.train["image"]) // 32 == 3
  straight, resumed = straight_and_resumed(c, ds, str(tmp_path / "run"), epochs=45)
  assert int(straight.step) == 135
  assert_trees_equal(straight, resumed)
  assert moved_means(straight.model.g.batch_stats)
  labels = np.arange(200) % 2
  samples = families.get(c).sample(straight.model, jax.random.PRNGKey(5), len(labels), labels)
  accuracy = float(np.mean(load_judge(judge_dir)(samples)["labels"] == labels))
  assert accuracy > 0.8, accuracy
