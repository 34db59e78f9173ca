"""GAN family: the reference documents' architectures, loss formulas, separate updates, multi-device equality."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import ROOT, read_tensorboard, tiny, tiny_config, trees_equal
from gm import families
from gm.train import loop
from gm.losses import gan as L
from gm.minimax import alternating_gradient
from gm.models import gan as M


def _tiny(name, **train):
  return tiny_config(name, num_train=256, num_test=64, **{f"train__{k}": v for k, v in train.items()})


def test_parameter_counts_match_the_notebook():
  key = jax.random.PRNGKey(0)
  x, z = jnp.zeros((2, 28, 28, 1)), jnp.zeros((2, 4))
  counts = {name: (M.count_params(M.DISCRIMINATORS.get(name)().init(key, x)),
                   M.count_params(M.GENERATORS.get(name)().init(key, z)))  # params + BN stats
            for name in ("mlp", "dcgan_mnist")}
  assert counts == {"mlp": (267_009, 1_858_320), "dcgan_mnist": (1_102_721, 6_595_521)}


def _np_sigmoid(v):
  return 1 / (1 + np.exp(-v))


def test_losses_match_their_formulas_in_numpy():
  """Every registered loss against a plain numpy transcription of its paper's formula
  (ns / minimax: Goodfellow et al. 2014; lsgan: Mao et al. 2017; hinge: Lim & Ye 2017;
  wgan-gp: Gulrajani et al. 2017; ragan / ralsgan: Jolicoeur-Martineau 2018, the
  relativistic average losses)."""
  rng = np.random.default_rng(0)
  r, f = rng.normal(size=64) * 3, rng.normal(size=64) * 3
  t_r, t_f = 0.9 + rng.uniform(-0.05, 0.05, 64), rng.uniform(-0.05, 0.05, 64)
  sr, sf = _np_sigmoid(r), _np_sigmoid(f)
  soft_bce = lambda p, t: -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
  rr, rf = r - f.mean(), f - r.mean()  # relativistic average: against the other batch's mean
  expected = {
      "ns": (-np.mean(np.log(sr)) - np.mean(np.log(1 - sf)), -np.mean(np.log(sf))),
      "minimax": (-np.mean(np.log(sr)) - np.mean(np.log(1 - sf)), np.mean(np.log(1 - sf))),
      "lsgan": (0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f ** 2), 0.5 * np.mean((f - 1) ** 2)),
      "hinge": (np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)), -np.mean(f)),
      "wgan-gp": (np.mean(f) - np.mean(r), -np.mean(f)),
      "ragan": (-np.mean(np.log(_np_sigmoid(rr))) - np.mean(np.log(1 - _np_sigmoid(rf))),
                -np.mean(np.log(_np_sigmoid(rf))) - np.mean(np.log(1 - _np_sigmoid(rr)))),
      "ralsgan": (np.mean((rr - 1) ** 2) + np.mean((rf + 1) ** 2),
                  np.mean((rf - 1) ** 2) + np.mean((rr + 1) ** 2)),
  }
  # Every loss gm registers (tests/test_extending.py registers "test-*" ones from outside).
  assert sorted(expected) == [n for n in L.GAN_LOSSES.names() if not n.startswith("test-")]
  out = L.DOut(fake=jnp.asarray(f), real=jnp.asarray(r))
  for name, (d, g) in expected.items():
    loss = L.GAN_LOSSES.get(name)
    assert float(loss.d(out)) == pytest.approx(d, rel=1e-5), name
    assert float(loss.g(out)) == pytest.approx(g, rel=1e-5, abs=1e-6), name
    if not loss.needs_real:  # G's loss must not read D(x) unless it says so.
      assert float(loss.g(L.DOut(fake=jnp.asarray(f)))) == pytest.approx(g, rel=1e-5, abs=1e-6)
  # Soft / noisy targets enter the cross-entropy and least-squares losses as written.
  soft = out._replace(real_target=jnp.asarray(t_r), fake_target=jnp.asarray(t_f))
  assert float(L.GAN_LOSSES.get("ns").d(soft)) == pytest.approx(
      soft_bce(sr, t_r) + soft_bce(sf, t_f), rel=1e-5)
  ls = L.GAN_LOSSES.get("lsgan").d(soft._replace(fake_target=0.0))
  assert float(ls) == pytest.approx(0.5 * np.mean((r - t_r) ** 2) + 0.5 * np.mean(f ** 2), rel=1e-5)


def test_feature_matching_matches_its_formula():
  """Salimans et al. (2016): |E_x f(x) - E_z f(G(z))|^2, f = D's sown features."""
  rng = np.random.default_rng(3)
  fr, ff = rng.normal(size=(16, 5)), rng.normal(size=(16, 5)) + 0.3
  expected = np.sum((fr.mean(0) - ff.mean(0)) ** 2)
  assert float(L.feature_matching(jnp.asarray(fr), jnp.asarray(ff))) == pytest.approx(expected, rel=1e-5)
  term = L.TERMS.get("feature_matching")
  assert (term.player, term.weight, term.needs_real, term.needs_features) == ("g", "fm_weight",
                                                                               True, True)
  out = L.DOut(fake=jnp.zeros(16), real=jnp.zeros(16), fake_features=jnp.asarray(ff),
               real_features=jnp.asarray(fr))
  t = L.TermInputs(None, None, None, out, jax.random.PRNGKey(0), None)
  assert float(term.fn(t)) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_and_noise_targets():
  t = np.asarray(L.targets(jax.random.PRNGKey(0), 10_000, 0.9, 0.05))
  assert t.min() >= 0.85 and t.max() <= 0.95 and abs(t.mean() - 0.9) < 2e-3 and t.std() > 0.02
  assert (np.asarray(L.targets(jax.random.PRNGKey(0), 5, 1.0, 0.0)) == 1.0).all()


def test_gradient_penalties_match_closed_forms():
  rng = np.random.default_rng(1)
  real, fake = rng.normal(size=(8, 4, 4, 1)), rng.normal(size=(8, 4, 4, 1))
  eps = rng.uniform(size=8)
  w = rng.normal(size=(4, 4, 1))
  linear = lambda x: jnp.sum(x * w, axis=(1, 2, 3))  # grad = w everywhere
  gp = L.gradient_penalty(linear, jnp.asarray(real), jnp.asarray(fake), jnp.asarray(eps))
  assert float(gp) == pytest.approx((np.linalg.norm(w) - 1) ** 2, rel=1e-5)
  square = lambda x: jnp.sum(x ** 2, axis=(1, 2, 3))  # grad = 2x
  x_hat = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
  expected = np.mean((np.linalg.norm(2 * x_hat.reshape(8, -1), axis=1) - 1) ** 2)
  gp = L.gradient_penalty(square, jnp.asarray(real), jnp.asarray(fake), jnp.asarray(eps))
  assert float(gp) == pytest.approx(expected, rel=1e-5)
  r1 = L.r1_penalty(square, jnp.asarray(real))
  assert float(r1) == pytest.approx(np.mean(np.sum((2 * real.reshape(8, -1)) ** 2, 1)), rel=1e-5)


def _init(config):
  t = tiny(config)
  return t.family, t.state, t.batch


def test_each_update_leaves_the_other_network_bit_identical():
  family, state, batch = _init(_tiny("cgan_mnist"))  # BN in G: its statistics count too.
  x, cond = family.inputs(batch), family.one_hot(batch["label"])
  after_d, _ = jax.jit(family.d_step)(state, x, cond, jax.random.PRNGKey(1))
  assert trees_equal(after_d.g, state.g)  # params, Optax state, batch stats, step
  assert not trees_equal(after_d.d.params, state.d.params)
  after_g, _ = jax.jit(family.g_step)(after_d, x, cond, jax.random.PRNGKey(2))
  assert trees_equal(after_g.d, after_d.d)
  assert not trees_equal(after_g.g.params, after_d.g.params)
  assert not trees_equal(after_g.g.batch_stats, after_d.g.batch_stats)


def test_d_steps_per_generator_step_use_separate_batches():
  c = _tiny("gan_mlp_mnist", d_steps=3, batch_size=16)
  family, state, batch = _init(c)
  assert len(batch["image"]) == 48 == family.examples_per_step(16)
  new, metrics = jax.jit(family.train_step)(state, batch, jax.random.PRNGKey(0))
  assert int(new.d.step) == 3 and int(new.g.step) == 1
  assert {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"} <= set(metrics)


@pytest.mark.parametrize("loss", ["minimax", "lsgan", "hinge", "wgan-gp", "ragan", "ralsgan"])
def test_every_loss_trains_one_step(loss):
  c = _tiny("dcgan_mnist", batch_size=8)
  c.loss.name = loss
  c.loss.r1_weight = 1.0 if loss == "hinge" else 0.0
  c.loss.fm_weight = 0.5 if loss == "ralsgan" else 0.0  # A G term beside a loss that reads D(x).
  family, state, batch = _init(c)
  _, metrics = jax.jit(family.train_step)(state, batch, jax.random.PRNGKey(0))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert ("gp" in metrics) == (loss == "wgan-gp") and ("r1" in metrics) == (loss == "hinge")
  assert ("feature_matching" in metrics) == (loss == "ralsgan")


def test_lazy_r1_is_k_times_r1_on_every_kth_d_step_and_absent_between():
  """loss.r1_every = k: D's update at a step divisible by k equals the eager update with k x
  gamma; at the other steps it equals the update without R1 (StyleGAN2's lazy regularization)."""
  def d_update(weight, every, step):
    c = _tiny("dcgan_mnist", batch_size=8)
    c.optim_d.name, c.optim_d.lr = "sgd", 0.1  # SGD: the update is the gradient, unrounded.
    c.loss.r1_weight, c.loss.r1_every = weight, every
    family, state, batch = _init(c)
    state = state.replace(d=state.d.replace(step=jnp.asarray(step, jnp.int32)))
    x, cond = family.inputs(batch), family.one_hot(batch["label"])
    new, metrics = jax.jit(family.d_step)(state, x, cond, jax.random.PRNGKey(3))
    return new.d.params, metrics
  lazy_on, m_on = d_update(2.0, 4, 8)
  eager, m_eager = d_update(8.0, 1, 8)
  lazy_off, m_off = d_update(2.0, 4, 9)
  plain, _ = d_update(0.0, 1, 9)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), lazy_on, eager)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), lazy_off, plain)
  assert float(m_eager["r1"]) > 0
  assert float(m_on["r1"]) == pytest.approx(4 * float(m_eager["r1"]), rel=1e-5)
  assert float(m_off["r1"]) == 0.0


def test_label_options_are_refused_for_losses_without_targets():
  c = _tiny("gan_mlp_mnist")
  c.loss.name, c.loss.label_smoothing = "hinge", 0.1
  with pytest.raises(ValueError, match="label_smoothing"):
    families.get(c)


_MULTI_DEVICE = r"""
import os, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, os.path.join({root!r}, "tests"))
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from tests.conftest import load_config
from gm import families
from gm.backend import sharding
assert jax.device_count() == 8
c = load_config("cgan_mnist", "smoke")  # conditional DCGAN: batch norm in G, labels
c.train.batch_size = 32
{extra}
# SGD: Adam's first steps are lr * sign(grad), which turns float-rounding noise in
# near-zero gradients into lr-sized differences; SGD keeps the comparison sharp.
for o in (c.optim_g, c.optim_d):
  o.name, o.lr = "sgd", 0.05
rng = np.random.default_rng(0)
batches = [{{"image": rng.integers(0, 256, (32, 28, 28, 1), dtype=np.uint8),
             "label": rng.integers(0, 10, 32).astype(np.int32)}} for _ in range(2)]
keys = [jax.random.PRNGKey(i) for i in range(2)]

def run_single():
  fam = families.get(c); fam.total_steps = 2
  state = fam.init(jax.random.PRNGKey(0), batches[0]); step = jax.jit(fam.train_step)
  for b, k in zip(batches, keys):
    state, m = step(state, b, k)
  return state, m

def run_mesh():
  fam = families.get(c); fam.total_steps = 2
  mesh = sharding.data_mesh()
  state = sharding.replicate(fam.init(jax.random.PRNGKey(0), batches[0]), mesh)
  step = jax.jit(lambda s, b, k: fam.train_step(s, sharding.shard_batch(b, mesh), k))
  for b, k in zip(batches, keys):
    b = jax.device_put(b, NamedSharding(mesh, P("data")))
    state, m = step(state, b, k)
  return state, m

def run_pmap():
  fam = families.get(c, axis_name="batch"); fam.total_steps = 2
  state = jax.tree.map(lambda v: jnp.stack([v] * 8), fam.init(jax.random.PRNGKey(0), batches[0]))
  step = jax.pmap(fam.train_step, axis_name="batch", in_axes=(0, 0, None))
  for b, k in zip(batches, keys):
    state, m = step(state, jax.tree.map(lambda v: v.reshape(8, 4, *v.shape[1:]), b), k)
  return jax.tree.map(lambda v: v[0], (state, m))

(s1, m1), (s2, m2), (s3, m3) = run_single(), run_mesh(), run_pmap()
s0 = families.get(c).init(jax.random.PRNGKey(0), batches[0])
leaves = lambda s: [np.asarray(v, np.float64) for v in jax.tree.leaves(
    (s.g.params, s.d.params, s.g.batch_stats))]
# Relative error of the two steps' total change of every parameter and statistic, as one
# vector. Float rounding differs between the paths (seen: 1e-6 relative in the generator's
# last layer, pmapped vs not), and a rounding-sized change in a fake image can flip one of the
# discriminator's LeakyReLU or max-pool decisions for one example: a localised, real change
# of its gradient. Per-leaf ratios of tiny, cancelling sums (a bias's gradient) magnify that
# to percents; the whole update vector does not. Measured 2026-12-02: 3e-7 when every path
# rounds alike, 2.2e-4 with one such flip, 0.12 with the pmap path's gradient pmean removed.
worst = 0.0
for other in (s2, s3):
  num = sum(np.sum((a - b) ** 2) for a, b in zip(leaves(s1), leaves(other)))
  den = sum(np.sum((a - z) ** 2) for a, z in zip(leaves(s1), leaves(s0)))
  worst = max(worst, float(np.sqrt(num / den)))
for k in m1:
  np.testing.assert_allclose(float(m1[k]), float(m2[k]), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(float(m1[k]), float(m3[k]), rtol=1e-4, atol=1e-5)
assert not np.array_equal(np.asarray(jax.tree.leaves(s1.g.params)[0]),
                          np.asarray(jax.tree.leaves(families.get(c).init(
                              jax.random.PRNGKey(0), batches[0]).g.params)[0]))
print("WORST", worst)
assert worst < 2e-3, worst
"""


@pytest.mark.parametrize("extra", [
    # Batch statistics inside the losses (the relativistic means, feature matching's mean
    # features) must be the global batch's: 8 devices of 4 examples give the 32-example step.
    "c.loss.name, c.loss.fm_weight = 'ralsgan', 1.0",
    # The ns loss with lazy R1: D's update runs in a lax.cond around its collectives, with the
    # penalty at D step 0 and without it (the plain ns update) at step 1.
    "c.loss.r1_weight, c.loss.r1_every = 1.0, 2",
], ids=["ralsgan+fm", "ns+lazy_r1"])
def test_sharded_pmapped_and_single_device_updates_agree(extra):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", _MULTI_DEVICE.format(root=ROOT, extra=extra)],
                       env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "WORST" in out.stdout


def test_resume_is_bitwise_exact(tmp_path):
  c = _tiny("gan_mlp_mnist", num_epochs=2)
  straight = loop.train_and_evaluate(c, str(tmp_path / "a"))
  c1 = _tiny("gan_mlp_mnist", num_epochs=1)
  loop.train_and_evaluate(c1, str(tmp_path / "b"))
  resumed = loop.train_and_evaluate(c, str(tmp_path / "b"), allow_config_change=True)
  assert trees_equal(straight.model, resumed.model) and int(resumed.step) == int(straight.step)


def test_training_scores_draw_the_same_generator_inputs_at_every_checkpoint(tmp_path, monkeypatch):
  """Common random numbers: a change of the logged score is the generator's, not the draw's
  (`health.degrading` compares these scores across checkpoints)."""
  keys = []
  monkeypatch.setattr(loop, "_scores", lambda family, model, judge, key, *rest: keys.append(
      np.asarray(key)) or {})
  c = _tiny("gan_mlp_mnist", num_epochs=2, batch_size=64)
  c.eval.score_every = 1  # The builtin judge.
  loop.train_and_evaluate(c, str(tmp_path / "run"))
  assert len(keys) == 2 and all((k == keys[0]).all() for k in keys)


def test_eval_health_replays_the_rules_over_a_log_or_a_gan_score_history(tmp_path, capsys,
                                                                      caplog):
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  from gm.errors import UserError  # pylint: disable=g-import-not-at-top
  c = _tiny("gan_mlp_mnist", num_epochs=2, batch_size=64)
  c.health.degrade_evals = 1  # Median of one score: the last one against the best before it.
  wd = str(tmp_path / "run")
  with caplog.at_level("WARNING", logger="gm"):
    loop.train_and_evaluate(c, wd)
  logged = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
  steps = [json.loads(line)["step"] for line in open(os.path.join(wd, "metrics.jsonl"))]
  scores = tmp_path / "gan_score_history.json"
  scores.write_text(json.dumps({"scores": [{"step": steps[0], "frechet": 10.0},
                                           {"step": steps[1], "frechet": 12.5}]}))
  health = lambda *flags: run(parser().parse_args(["health", "--workdir", wd, *flags]))
  health()  # The same warnings as training logged (this tiny run's samples collapse).
  out = capsys.readouterr().out.splitlines()
  assert logged and out[:len(logged)] == logged and "collapsed" in logged[0]
  assert out[len(logged)].startswith(f"{len(logged)} warnings over 2 records")
  health("--scores", str(scores))  # 12.5 is 25% worse than 10.
  out = capsys.readouterr().out
  assert ("epoch 2: the run is degrading: judge/frechet's median over the last 1 scored "
          "checkpoints (12.5) is 12.5, 25% worse than its best median 10") in out
  assert "(2 of the 2 records scored)" in out
  written = json.load(open(os.path.join(wd, "eval", "health_gan_score_history.json")))
  assert json.load(open(os.path.join(wd, "eval", "health.json")))["scores_from"] == "metrics.jsonl"
  assert [w["epoch"] for w in written["warnings"]] == [2] * (len(logged) + 1)
  assert written["rules"]["degrade_evals"] == 1
  import gm  # pylint: disable=g-import-not-at-top
  assert gm.load_run(wd).health(str(scores)) == [(w["epoch"], w["warning"])
                                                 for w in written["warnings"]]  # = the Python API
  for bad, match in ((tmp_path / "none.json", "No such file"), (wd + "/config.json", "'scores'")):
    with pytest.raises(UserError, match=match):
      health("--scores", str(bad))
  scores.write_text(json.dumps({"scores": [{"step": 10 ** 6, "frechet": 1.0}]}))
  with pytest.raises(UserError, match="none of its steps"):
    health("--scores", str(scores))
  scores.write_text(json.dumps({"scores": [{"step": steps[0], "frechet": float("nan")}]}))
  with pytest.raises(UserError, match=f"frechet is not finite at step {steps[0]}"):
    health("--scores", str(scores))


def test_conditional_gan_trains_scores_and_draws_its_plots(tmp_path, judge_dir, capsys,
                                                          monkeypatch):
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  from gm import plots  # pylint: disable=g-import-not-at-top
  from gm.errors import UserError  # pylint: disable=g-import-not-at-top
  c = _tiny("cgan_mnist", num_epochs=1, batch_size=32)
  c.eval.judge, c.eval.score_every = judge_dir, 1
  c.train.tensorboard = True
  wd = str(tmp_path / "cgan")
  loop.train_and_evaluate(c, wd)
  record = json.loads(open(os.path.join(wd, "metrics.jsonl")).read().splitlines()[-1])
  judged = {"judge/frechet", "judge/kid_x1e3", "judge/kid_x1e3_std", "judge/precision",
            "judge/recall", "judge/density", "judge/coverage", "judge/label_accuracy"}
  assert judged | {"test/d_real", "train/d_loss", "train/g_loss", "train/d_real",
                   "train/d_fake"} <= set(record)
  events = read_tensorboard(os.path.join(wd, "tensorboard"))  # The judge's curves and the grids.
  assert all(events[k] == [(8, "simple_value")] for k in judged)
  assert events["samples"] == [(0, "image"), (8, "image")]
  monitor = np.load(os.path.join(wd, "monitor.npz"))
  assert (monitor["label"] == np.repeat(np.arange(10), 8)).all()  # One row per digit.
  assert sorted(os.listdir(os.path.join(wd, "samples"))) == ["step_00000000.png",
                                                             "step_00000008.png"]
  run(parser().parse_args(["all", "--workdir", wd]))
  drawn, curves = [], plots.curves
  monkeypatch.setattr(plots, "curves", lambda records, keys, path, **kw: drawn.append(
      (keys, kw["hlines"])) or curves(records, keys, path, **kw))
  capsys.readouterr()
  run(parser().parse_args(["gan-score", "--workdir", wd, "--all", "--num", "64"]))
  assert "2/2" in capsys.readouterr().err  # The progress bar over the checkpoints.
  # One plot of every score over the steps, the real-vs-real floor dashed.
  (keys, floor), = drawn
  assert keys == ["frechet", "kid_x1e3", "kid_x1e3_std", "precision", "recall", "density",
                  "coverage", "label_accuracy"] and set(floor) == set(keys) - {"label_accuracy"}
  with pytest.raises(UserError, match="image-folder runs"):
    run(parser().parse_args(["gan-score", "--workdir", wd, "--reference", str(tmp_path)]))
  produced = sorted(os.listdir(os.path.join(wd, "eval")))
  assert produced == sorted(["samples_step8.png", "digits_step8.png", "loss_curves.png",
                             "evolution.gif", "gan_score_step8.json", "gan_score_history.json",
                             "gan_score_history.png", "data_grid.png"])
  history = json.load(open(os.path.join(wd, "eval", "gan_score_history.json")))
  assert [r["step"] for r in history["scores"]] == [0, 8]
  # One row of the first 5 fixed-noise samples per checkpoint: 2 rows of 5 cells of 28 px (x2).
  run(parser().parse_args(["evolution", "--workdir", wd, "--strip", "5"]))
  from PIL import Image  # pylint: disable=g-import-not-at-top
  strip = Image.open(os.path.join(wd, "eval", "evolution_strip.png"))
  assert 5 * 56 <= strip.width < 6 * 56 and 2 * 56 <= strip.height < 3 * 56
  run(parser().parse_args(["evolution", "--workdir", wd, "--strip", "5", "--rows", "1"]))
  strip = Image.open(os.path.join(wd, "eval", "evolution_strip.png"))
  assert 56 <= strip.height < 2 * 56  # One checkpoint's row: the last.
  # `--all` and one checkpoint score the same 64 samples; 8 steps from an untrained generator
  # leave them far from the digits (Fréchet measured 232, real training images 15.9), and
  # the label accuracy counts whole samples of the 64.
  single = json.load(open(os.path.join(wd, "eval", "gan_score_step8.json")))
  assert single["scores"] == history["scores"][-1:] and single["num_samples"] == 64
  # Another draw keeps its own file (scripts/reproduce.py averages the photo rows' draws).
  run(parser().parse_args(["gan-score", "--workdir", wd, "--num", "64", "--seed", "1",
                           "--name", "again"]))
  again = json.load(open(os.path.join(wd, "eval", "again_seed1_step8.json")))
  assert again["real_train_vs_test"] == single["real_train_vs_test"]
  assert again["scores"][0]["frechet"] != single["scores"][0]["frechet"]
  assert json.load(open(os.path.join(wd, "eval", "gan_score_step8.json"))) == single
  for r in history["scores"]:
    assert r["frechet"] > 5 * history["real_train_vs_test"]["frechet"], history
    assert (64 * r["label_accuracy"]).is_integer() and r["label_accuracy"] < 0.5, history


def test_minimax_exercise_cycles_with_period_six(tmp_path):
  expected = [(1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1), (1, 0), (1, 1)]
  np.testing.assert_array_equal(alternating_gradient(), np.asarray(expected, np.float64))
  out = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "minimax", "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert out.returncode == 0, out.stderr
  assert " 3   -1.000   -1.000" in out.stdout
  assert json.load(open(tmp_path / "minimax.json"))["iterates"] == [list(p) for p in expected]
  assert os.path.getsize(tmp_path / "minimax.png") > 0
