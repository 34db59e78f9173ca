"""Autoencoder (AE) and variational autoencoder (VAE) families.

Both use the convolutional encoder/decoder of the TensorFlow "Convolutional
VAE" tutorial. The AE encodes to a deterministic latent and is trained on a
selectable reconstruction loss; the VAE encodes to mean and log-variance and
maximises an ELBO (Monte-Carlo or closed-form KL, optional beta).
"""

import functools
from typing import Any, Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gm import losses, models, optim
from gm.backend import precision, runtime
from gm.data import to_float
from gm.families.base import FAMILIES, Batch, Family, GeneratorView, Metrics, TrainState


class AutoencoderNet(nn.Module):
  """Encoder + decoder; `encode` gives [B, enc_features], `decode` gives logits."""
  latent_dim: int
  enc_features: int
  out_channels: int = 1
  start: int = 7
  encoder_strides: Tuple[int, ...] = (2, 2)
  encoder_padding: str = "VALID"
  decoder_strides: Tuple[int, ...] = (2, 2)
  conv: models.ModuleDef = nn.Conv
  conv_transpose: models.ModuleDef = nn.ConvTranspose

  def setup(self):
    self.encoder = models.ConvEncoder(self.enc_features, strides=self.encoder_strides,
                                      padding=self.encoder_padding, conv=self.conv)
    self.decoder = models.ConvDecoder(start=self.start, strides=self.decoder_strides,
                                      out_channels=self.out_channels,
                                      conv_transpose=self.conv_transpose)

  def encode(self, x, cond=None):
    return self.encoder(x, cond)

  def decode(self, z, cond=None):
    return self.decoder(z, cond)

  def __call__(self, x, cond=None):
    h = self.encode(x, cond)
    return self.decode(h[..., :self.latent_dim], cond)


class _AutoencoderBase(Family):
  """What AE and VAE share: the network, the optimizer, inputs and state."""

  enc_multiplier = 1  # encoder outputs latent_dim * this

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__(config)
    m = config.model
    self.latent_dim = m.latent_dim
    self.dtype = precision.compute_dtype(m)
    self.net = models.build(
        AutoencoderNet, runtime.layers(config), latent_dim=m.latent_dim, enc_features=m.latent_dim * self.enc_multiplier,
        out_channels=m.out_channels, start=m.start, encoder_strides=tuple(m.encoder_strides),
        encoder_padding=m.encoder_padding, decoder_strides=tuple(m.decoder_strides))

  def inputs(self, batch: Batch) -> jnp.ndarray:
    """uint8 images -> float [B, H, W, C] in [0, 1] (binarized if configured)."""
    return to_float(batch["image"], self.config.data.binarize)

  def cond(self, batch: Batch):
    """The condition vector [B, K] for conditional families; None here."""
    return None

  def init(self, key: jax.Array, batch: Batch) -> TrainState:
    x = self.inputs(batch)
    params = self.net.init(key, x, self.cond(batch))["params"]
    tx = optim.make_optimizer(self.config.optim, self.total_steps)
    return TrainState.create(apply_fn=self.net.apply, params=params, tx=tx)

  def _apply(self, params, *args, method):
    """`net.apply` in the compute dtype (`model.compute_dtype`); float32 out."""
    params, args = precision.cast((params, args), self.dtype)
    return precision.to_float32(self.net.apply({"params": params}, *args, method=method))

  def encode(self, params, x, cond=None) -> jnp.ndarray:
    return self._apply(params, x, cond, method=AutoencoderNet.encode)

  def decode(self, params, z, cond=None) -> jnp.ndarray:
    """Latents [B, D] -> logits [B, H, W, C]."""
    return self._apply(params, z, cond, method=AutoencoderNet.decode)

  def embed(self, params, x, cond=None) -> Tuple[jnp.ndarray, Any]:
    """Codes of images for plots: (z or posterior mean [B, D], posterior std [B, D] or None)."""
    return self.encode(params, x, cond), None

  def images(self, params, z, cond=None) -> jnp.ndarray:
    """Latents [B, D] -> images [B, H, W, C] in [0, 1]."""
    return jax.nn.sigmoid(self.decode(params, z, cond))

  @functools.cached_property
  def images_jit(self):
    """`images`, compiled once per family (sampling for judge scores and eval commands)."""
    return runtime.jit(self.images)

  def generator(self, state: TrainState) -> GeneratorView:
    """The decoder of `state` with the N(0, I) prior; `encode`: the encoder's code (mean)."""
    return GeneratorView(
        apply=lambda z, cond=None: self.images(state.params, z, cond),
        noise=lambda key, n: jax.random.normal(key, (n, self.latent_dim)),
        latent_size=self.latent_dim, conditional=self.conditional,
        encode=lambda x, cond=None: self.embed(state.params, x, cond)[0])

  conditional = False  # Whether the networks see `cond(batch)`.

  def loss(self, params, batch: Batch, key: jax.Array) -> Tuple[jnp.ndarray, Metrics]:
    raise NotImplementedError

  def train_step(self, state: TrainState, batch: Batch, key: jax.Array):
    (loss, metrics), grads = jax.value_and_grad(self.loss, has_aux=True)(
        state.params, batch, key)
    state = state.apply_gradients(grads=grads)
    metrics["grad_norm"] = optim.global_norm(grads)
    return state, metrics

  def monitor_images(self, state: TrainState, inputs: Dict[str, Any]) -> jnp.ndarray:
    raise NotImplementedError


def _alternate_rows(x: jnp.ndarray, recon: jnp.ndarray) -> jnp.ndarray:
  """Images [8k, ...] and their reconstructions -> [16k, ...]: rows of 8 originals, then theirs."""
  pairs = jnp.stack([x.reshape(-1, 8, *x.shape[1:]), recon.reshape(-1, 8, *x.shape[1:])], 1)
  return pairs.reshape(-1, *x.shape[1:])


@FAMILIES.register("ae")
class AE(_AutoencoderBase):
  """Deterministic autoencoder with a selectable reconstruction loss (mse, bce)."""

  best_metric = ("test/mse", "min")

  def loss(self, params, batch, key):
    del key
    x = self.inputs(batch)
    z = self.encode(params, x, self.cond(batch))
    logits = self.decode(params, z, self.cond(batch))
    per_example = losses.RECON_LOSSES.get(self.config.loss.recon)(logits=logits, targets=x)
    loss = per_example.mean()
    return loss, {"loss": loss}

  def eval_step(self, state, batch, key):
    del key
    x = self.inputs(batch)
    logits = self.decode(state.params, self.encode(state.params, x, self.cond(batch)),
                         self.cond(batch))
    return {"mse": losses.RECON_LOSSES.get("mse")(logits=logits, targets=x),
            "bce": losses.RECON_LOSSES.get("bce")(logits=logits, targets=x)}

  def monitor_inputs(self, key, test):
    del key
    return {"image": test["image"][:32]}

  def monitor_images(self, state, inputs):
    """Rows alternate: 8 test images, then their reconstructions."""
    x = self.inputs(inputs)
    return _alternate_rows(x, self.images(state.params, self.encode(state.params, x)))


@FAMILIES.register("vae")
class VAE(_AutoencoderBase):
  """VAE of the TensorFlow tutorial: Gaussian q(z|x), N(0, I) prior, Bernoulli p(x|z)."""

  enc_multiplier = 2
  best_metric = ("test/elbo", "max")

  def posterior(self, params, x, cond=None) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """q(z|x) parameters: mean [B, D], logvar [B, D]."""
    h = self.encode(params, x, cond)
    return h[:, :self.latent_dim], h[:, self.latent_dim:]

  def embed(self, params, x, cond=None):
    mean, logvar = self.posterior(params, x, cond)
    return mean, jnp.exp(0.5 * logvar)

  def loss(self, params, batch, key):
    x = self.inputs(batch)
    objective, log_px_z, kl = losses.elbo(
        **self._sample(params, x, self.cond(batch), key), kl=self.config.loss.kl,
        beta=self.config.loss.beta)
    loss = -objective.mean()
    return loss, {"loss": loss, "recon_nll": -log_px_z.mean(), "kl": kl.mean()}

  def eval_step(self, state, batch, key):
    """Per-example test ELBO (closed-form KL and single-sample MC) and its terms."""
    x, cond = self.inputs(batch), self.cond(batch)
    elbo, log_px_z, kl = losses.elbo(**self._sample(state.params, x, cond, key), kl="analytic")
    elbo_mc, _, _ = losses.elbo(**self._sample(state.params, x, cond, key), kl="mc")
    return {"elbo": elbo, "elbo_mc": elbo_mc, "recon_nll": -log_px_z, "kl": kl}

  def _sample(self, params, x, cond, key) -> Dict[str, jnp.ndarray]:
    """One reparameterized draw z ~ q(z|x) and the decoder logits at it."""
    mean, logvar = self.posterior(params, x, cond)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
    return {"x": x, "logits": self.decode(params, z, cond), "z": z, "mean": mean,
            "logvar": logvar}

  def iwae(self, params, x, cond, key, k: int) -> jnp.ndarray:
    """Importance-weighted k-sample bound per example [B] (k=1 gives the MC ELBO)."""
    mean, logvar = self.posterior(params, x, cond)

    def log_weight(key):
      z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
      return (losses.bernoulli_log_likelihood(self.decode(params, z, cond), x)
              + losses.log_normal_pdf(z, 0.0, 0.0)
              - losses.log_normal_pdf(z, mean, logvar))  # [B]

    return losses.iwae_bound(jax.lax.map(log_weight, jax.random.split(key, k)))

  def monitor_inputs(self, key, test):
    return {"z": jax.random.normal(key, (64, self.latent_dim))}

  def sample(self, state, key: jax.Array, num: int, labels=None) -> np.ndarray:
    """`num` decoded prior draws z ~ N(0, I): images [num, H, W, C] in [0, 1] (host)."""
    del labels
    z = jax.random.normal(key, (num, self.latent_dim))
    return np.concatenate([np.asarray(self.images_jit(state.params, z[i:i + 1000]))
                           for i in range(0, num, 1000)])

  scoring = "judge"  # The judge's distances of prior samples to test images.

  def monitor_images(self, state, inputs):
    return self.images(state.params, inputs["z"])

  def _reconstructions(self, params, batch):
    x, cond = self.inputs(batch), self.cond(batch)
    return _alternate_rows(x, self.images(params, self.embed(params, x, cond)[0], cond))

  @functools.cached_property
  def _reconstructions_jit(self):
    return runtime.jit(self._reconstructions)

  def tensorboard_images(self, state, test):
    """'reconstructions': the first 32 test images, each row of 8 followed by their decoded
    posterior means (the grid 'samples' shows prior samples; the AE's grid is reconstructions)."""
    n = min(32, len(test["image"])) // 8 * 8
    if not n:
      return {}
    return {"reconstructions": self._reconstructions_jit(
        state.params, {k: v[:n] for k, v in test.items()})}


@FAMILIES.register("cvae")
class CVAE(VAE):
  """Conditional VAE: encoder and decoder both see the condition `batch['cond']`.

  The encoder concatenates it after the conv stack, the decoder with z.
  """

  conditional = True

  def cond(self, batch):
    return batch["cond"]

  def monitor_inputs(self, key, test):
    """One fixed z per digit row; the 9 cells along each row."""
    from gm.data.canvas import condition  # pylint: disable=g-import-not-at-top
    z = jax.random.normal(key, (10, self.latent_dim))
    labels, cells = np.repeat(np.arange(10), 9), np.tile(np.arange(9), 10)
    return {"z": np.repeat(np.asarray(z), 9, axis=0), "cond": condition(labels, cells)}

  def monitor_images(self, state, inputs):
    return self.images(state.params, inputs["z"], inputs["cond"])

  scoring = "canvas"  # The judge on the requested cell, position, ink outside (`cvae-score`).

  @property
  def grid_columns(self):
    return 9
