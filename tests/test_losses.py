"""Loss functions against independent numpy/scipy computations."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from gm import losses


@pytest.fixture
def gaussians():
  rng = np.random.default_rng(0)
  return (rng.normal(size=(5, 3)).astype(np.float32),
          rng.normal(scale=0.5, size=(5, 3)).astype(np.float32))


def test_log_normal_pdf_matches_scipy(gaussians):
  mean, logvar = gaussians
  x = np.random.default_rng(1).normal(size=mean.shape).astype(np.float32)
  expected = stats.norm.logpdf(x, mean, np.exp(0.5 * logvar)).sum(-1)
  np.testing.assert_allclose(losses.log_normal_pdf(x, mean, logvar), expected, rtol=1e-5)


def test_closed_form_kl_matches_monte_carlo(gaussians):
  mean, logvar = gaussians
  std = np.exp(0.5 * logvar)
  z = mean + std * np.random.default_rng(2).normal(size=(200_000, *mean.shape))
  mc = (stats.norm.logpdf(z, mean, std) - stats.norm.logpdf(z)).sum(-1).mean(0)
  np.testing.assert_allclose(losses.kl_normal(mean, logvar), mc, atol=0.02)


def test_bernoulli_log_likelihood():
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(4, 6, 6, 1)).astype(np.float32)
  x = (rng.uniform(size=logits.shape) > 0.5).astype(np.float32)
  p = special.expit(logits)
  expected = (x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(4, -1).sum(-1)
  np.testing.assert_allclose(losses.bernoulli_log_likelihood(logits, x), expected, rtol=1e-5)


@pytest.mark.parametrize("kl", ["mc", "analytic"])
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_elbo_terms(gaussians, kl, beta):
  mean, logvar = gaussians
  rng = np.random.default_rng(4)
  z = (mean + np.exp(0.5 * logvar) * rng.normal(size=mean.shape)).astype(np.float32)
  logits = rng.normal(size=(5, 4, 4, 1)).astype(np.float32)
  x = (rng.uniform(size=logits.shape) > 0.5).astype(np.float32)
  objective, log_px_z, kl_term = losses.elbo(x=x, logits=logits, z=z, mean=mean,
                                             logvar=logvar, kl=kl, beta=beta)
  p = special.expit(logits)
  lpx = (x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(5, -1).sum(-1)
  if kl == "mc":  # log q(z|x) - log p(z) at the drawn z (the tutorial's estimator).
    expected_kl = (stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)) - stats.norm.logpdf(z)).sum(-1)
  else:
    expected_kl = 0.5 * (np.exp(logvar) + mean ** 2 - 1 - logvar).sum(-1)
  np.testing.assert_allclose(log_px_z, lpx, rtol=1e-5)
  np.testing.assert_allclose(kl_term, expected_kl, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(objective, lpx - beta * expected_kl, rtol=1e-4)


def test_elbo_rejects_unknown_estimator(gaussians):
  mean, logvar = gaussians
  with pytest.raises(ValueError, match="analytic, mc"):
    losses.elbo(x=jnp.zeros((5, 1)), logits=jnp.zeros((5, 1)), z=mean, mean=mean,
                logvar=logvar, kl="exact")


def test_iwae_bound_is_logmeanexp_and_above_the_elbo():
  log_w = np.random.default_rng(5).normal(scale=3.0, size=(50, 7)).astype(np.float32)
  bound = losses.iwae_bound(log_w)
  np.testing.assert_allclose(bound, special.logsumexp(log_w, 0) - np.log(50), rtol=1e-5)
  assert np.all(np.asarray(bound) >= log_w.mean(0))        # Jensen: IWAE >= ELBO.
  np.testing.assert_allclose(losses.iwae_bound(log_w[:1]), log_w[0], rtol=1e-6)


def test_reconstruction_losses_and_registry():
  rng = np.random.default_rng(6)
  logits = rng.normal(size=(3, 5, 5, 1)).astype(np.float32)
  t = rng.uniform(size=logits.shape).astype(np.float32)
  p = special.expit(logits)
  np.testing.assert_allclose(losses.RECON_LOSSES.get("mse")(logits=logits, targets=t),
                             ((p - t) ** 2).reshape(3, -1).mean(-1), rtol=1e-5)
  np.testing.assert_allclose(losses.RECON_LOSSES.get("bce")(logits=logits, targets=t),
                             -(t * np.log(p) + (1 - t) * np.log1p(-p)).reshape(3, -1).mean(-1),
                             rtol=1e-5)
  with pytest.raises(ValueError, match="valid names: bce, mse"):
    losses.RECON_LOSSES.get("l1")
