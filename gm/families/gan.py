"""GAN family: unconditional and conditional GANs with swappable losses.

State: a generator `TrainState` and a discriminator `TrainState`, each with its
own Optax state (and batch-norm statistics). One training step consumes
`train.d_steps` real batches: one discriminator update per batch (generator
untouched), then one generator update (discriminator untouched).

The update functions are pure `(state, batch, key) -> (state, metrics)`. Under
`jax.jit` with a batch sharded over a device mesh they need nothing more; built
with `axis_name` (for `jax.pmap` / `shard_map`) they average gradients and
metrics over that axis, batch norm averages its statistics over it, and random
draws (noise, label noise, penalty interpolation) are drawn for the global batch
and sliced per device, so every mapping gives the single-device result.
"""

import contextlib
import functools
from typing import Any, Callable, Optional, Tuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from gm import models, optim
from gm.backend import precision, runtime, sharding
from gm.data import augment as augment_lib, to_float
from gm.errors import ConfigError
from gm.families.base import FAMILIES, Batch, Family, Metrics, TrainState
from gm.families.gan_sampling import GANSampling
from gm.losses import gan as gan_losses
from gm.models import gan as gan_models


@flax.struct.dataclass
class GANState:
  """Generator and discriminator train states (separate params and Optax states).

  `ema`: an exponential moving average of the generator's params, updated after
  every generator step (`train.ema_decay` > 0), else None. Checkpoints of earlier
  layouts (no `ema` entry at all) restore through `gm.checkpoint`'s migration.
  """
  g: TrainState
  d: TrainState
  ema: Any = None


def _masked_std(x: jnp.ndarray, valid=None) -> jnp.ndarray:
  """Standard deviation over axis 0 of the rows where `valid` [B] is 1 (all rows if None)."""
  if valid is None:
    return jnp.std(x, axis=0)
  w = valid.astype(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
  count = jnp.sum(w)
  mean = jnp.sum(w * x, axis=0) / count
  return jnp.sqrt(jnp.sum(w * jnp.square(x - mean), axis=0) / count)


NOISES = {"uniform": lambda key, shape: jax.random.uniform(key, shape, minval=-1.0, maxval=1.0),
          "normal": jax.random.normal}


def active_terms(loss: gan_losses.GANLoss, lc: ml_collections.ConfigDict):
  """[(name, weight, Term)] of the terms on for this loss and config, in name order: those the
  loss lists, and those whose weight `loss.<key>` is non-zero (`Term.by_weight`)."""
  for name in loss.terms:
    gan_losses.TERMS.get(name)  # An unknown name: the registry's error lists the valid ones.
  out = []
  for name in gan_losses.TERMS.names():
    term = gan_losses.TERMS.get(name)
    if term.player not in ("d", "g"):
      raise ConfigError(f"loss term {name!r} has player {term.player!r}; it must be 'd' or 'g'")
    if term.weight not in lc:
      if name in loss.terms:
        raise ConfigError(f"loss {lc.name!r} needs loss.{term.weight} (the weight of its term "
                          f"{name!r}); set it in the config")
      continue  # A term registered for other configs.
    if name in loss.terms or (term.by_weight and lc[term.weight]):
      out.append((name, term.scale * lc[term.weight], term))
  return out


@FAMILIES.register("gan")
class GAN(GANSampling, Family):
  """GAN of `model.generator` and `model.discriminator` trained with `loss.name`.

  Config keys: model.{generator, discriminator, noise_dim, noise (uniform |
  normal), num_classes (0: unconditional; >0: both nets see a one-hot label)};
  loss.{name, label_smoothing, label_noise} and the weights of the loss terms
  (`gm.losses.gan.TERMS`: gp_weight, r1_weight, fm_weight);
  optim_g, optim_d (separate optimizers); train.d_steps.
  """

  def __init__(self, config: ml_collections.ConfigDict, axis_name: Optional[str] = None):
    super().__init__(config)
    self.axis_name = axis_name
    m, lc = config.model, config.loss
    self.noise_dim = m.noise_dim
    self.dtype = precision.compute_dtype(m)
    self.num_classes = m.num_classes
    if m.noise not in NOISES:
      raise ConfigError(f"unknown model.noise {m.noise!r}; valid names: {', '.join(NOISES)}")
    self._noise = NOISES[m.noise]
    self.loss = gan_losses.GAN_LOSSES.get(lc.name)
    if not self.loss.uses_targets and (lc.label_smoothing or lc.label_noise):
      with_targets = gan_losses.loss_names(lambda loss: loss.uses_targets)
      raise ConfigError(f"loss.label_smoothing / label_noise apply to {', '.join(with_targets)}, "
                       f"not {lc.name!r}; set them to 0")
    terms = active_terms(self.loss, lc)
    self.d_terms = [t for t in terms if t[2].player == "d"]
    self.g_terms = [t for t in terms if t[2].player == "g"]
    self.d_features = self.loss.needs_features or any(t.needs_features for *_, t in self.d_terms)
    self.g_features = self.loss.needs_features or any(t.needs_features for *_, t in self.g_terms)
    self.g_needs_real = self.loss.needs_real or any(t.needs_real for *_, t in self.g_terms)
    self.d_steps = config.train.d_steps
    if self.d_steps < 1:
      raise ConfigError(f"train.d_steps={self.d_steps}; it must be >= 1")
    layers = runtime.layers(config)
    # Batch norm averages its statistics over the mapped axis (pmap / shard_map).
    layers["batch_norm"] = (nn.BatchNorm if axis_name is None
                            else functools.partial(nn.BatchNorm, axis_name=axis_name))
    self.gen = models.build(gan_models.GENERATORS.get(m.generator), layers, "model.g",
                            **m.g.to_dict())
    self.disc = models.build(gan_models.DISCRIMINATORS.get(m.discriminator), layers, "model.d",
                             **m.d.to_dict())
    self.output_range = getattr(self.gen, "output_range", (-1.0, 1.0))
    self._augment_real, self._diff_augment = augment_lib.from_config(
        config.augment)
    self.d_bn_in_g_step = config.train.d_bn_in_g_step
    if self.d_bn_in_g_step not in ("batch", "running"):
      raise ConfigError(f"train.d_bn_in_g_step={self.d_bn_in_g_step!r}; valid: batch, running")
    self.d_batches = config.train.d_batches
    if self.d_batches not in ("joint", "separate"):
      raise ConfigError(f"train.d_batches={self.d_batches!r}; valid: joint, separate")
    self.ema_decay = config.train.ema_decay
    if not 0.0 <= self.ema_decay < 1.0:
      raise ConfigError(f"train.ema_decay={self.ema_decay}; it must be in [0, 1) (0 = off)")
    self.grow_epochs, self.fade_epochs = config.train.grow_epochs, config.train.fade_epochs
    self.grows = bool(self.grow_epochs or self.fade_epochs)
    if self.grows and not (getattr(self.gen, "grows", False) and getattr(self.disc, "grows", False)):
      growing = sorted(n for n in gan_models.GENERATORS.names()
                       if getattr(gan_models.GENERATORS.get(n), "grows", False))
      raise ConfigError(f"train.grow_epochs / fade_epochs need a generator and discriminator "
                        f"that grow ({', '.join(growing)}); set model.generator and "
                        f"model.discriminator, or set both to 0")
    if self.grows and (self.gen.start, self.gen.size) != (self.disc.start, self.disc.size):
      raise ConfigError("the growing generator and discriminator need the same start and size "
                        f"(generator {self.gen.start} -> {self.gen.size} px, discriminator "
                        f"{self.disc.start} -> {self.disc.size} px)")
    self._stage = None  # (res, alpha) while a growing train step is traced.
    self._static_res = None  # The resolution `at_stage` fixes for the steps traced in it.
    self.inception_weights = config.eval.inception_weights
    if self.inception_weights:
      if self.scoring == "judge":
        raise ConfigError("eval.inception_weights applies to image folders; MNIST runs are scored "
                          "by the MNIST judge: set it to ''")
      from gm.metrics import inception  # pylint: disable=g-import-not-at-top
      inception.check_weights_path(self.inception_weights)  # Before training: exists, .npz / .pth.

  @property
  def scoring(self) -> str:
    """MNIST runs are scored by the MNIST judge; image folders by the sliced Wasserstein distance
    (`gm.metrics.sample_scores`)."""
    return "judge" if self.config.data.name == "mnist" else "folder"

  @property
  def best_metric(self):
    return ("judge/frechet", "min") if self.scoring == "judge" else ("quality/swd", "min")

  @property
  def score_prefix(self) -> str:
    return "judge" if self.scoring == "judge" else "quality"

  # --- data -----------------------------------------------------------------

  def examples_per_step(self, batch_size: int) -> int:
    return batch_size * self.d_steps

  def inputs(self, batch: Batch) -> jnp.ndarray:
    """uint8 images -> float in the generator's output range ([-1, 1] for tanh)."""
    lo, hi = self.output_range
    return lo + (hi - lo) * to_float(batch["image"])

  def to_unit(self, images: jnp.ndarray) -> jnp.ndarray:
    """Generator outputs -> [0, 1] for plots and the judge."""
    lo, hi = self.output_range
    return jnp.clip((images - lo) / (hi - lo), 0.0, 1.0)

  def one_hot(self, labels: jnp.ndarray):
    return jax.nn.one_hot(labels, self.num_classes) if self.num_classes else None

  # --- global draws, sliced per device under a mapped axis ---------------------

  def _draw(self, sample: Callable, key: jax.Array, shape: Tuple[int, ...]) -> jnp.ndarray:
    return sharding.global_draw(sample, key, shape, self.axis_name)

  def _mean(self, tree):
    return sharding.global_mean(tree, self.axis_name)

  def _local_key(self, key: jax.Array) -> jax.Array:
    return sharding.local_key(key, self.axis_name)

  def noise(self, key: jax.Array, n: int) -> jnp.ndarray:
    """Generator inputs [n, noise_dim] (uniform in [-1, 1] as the course notebook, or normal)."""
    return self._draw(self._noise, key, (n, self.noise_dim))

  def random_labels(self, key: jax.Array, n: int):
    if not self.num_classes:
      return None
    return self.one_hot(self._draw(
        lambda k, s: jax.random.randint(k, s, 0, self.num_classes), key, (n,)))

  # --- networks ----------------------------------------------------------------

  def init(self, key: jax.Array, batch: Batch) -> GANState:
    kg, kd = jax.random.split(key)
    x, cond = self.inputs(batch), self.one_hot(batch["label"])
    z = jnp.zeros((x.shape[0], self.noise_dim))
    gv = self.gen.init(kg, z, cond, train=False)
    dv = self.disc.init({"params": kd, "dropout": kd}, x, cond, train=False)
    steps = self.total_steps
    return GANState(
        g=TrainState.create(apply_fn=self.gen.apply, params=gv["params"],
                            batch_stats=gv.get("batch_stats", {}),
                            tx=optim.make_optimizer(self.config.optim_g, steps)),
        d=TrainState.create(apply_fn=self.disc.apply, params=dv["params"],
                            batch_stats=dv.get("batch_stats", {}),
                            tx=optim.make_optimizer(self.config.optim_d, steps * self.d_steps)),
        ema=jax.tree.map(jnp.copy, gv["params"]) if self.ema_decay else None)

  def check_data(self, image_shape) -> None:
    """The generator draws, and the discriminator reads, images of the data's [H, W, C]
    (shapes only: `jax.eval_shape`, nothing computed)."""
    m = self.config.model
    data = "x".join(map(str, image_shape))
    key = jax.random.PRNGKey(0)
    cond = (jax.ShapeDtypeStruct((2, self.num_classes), jnp.float32) if self.num_classes
            else None)
    z = jax.ShapeDtypeStruct((2, self.noise_dim), jnp.float32)
    try:
      drawn = jax.eval_shape(lambda z, c: self.gen.init_with_output(key, z, c, train=False)[0],
                             z, cond).shape[1:]
    except ConfigError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f"model.generator {m.generator!r} cannot be built with "
                        f"model.g {m.g.to_dict()}: "
                        f"{str(e).splitlines()[0][:200]}") from None
    if tuple(drawn) != tuple(image_shape):
      size = "x".join(map(str, drawn))
      raise ConfigError(f"model.generator {m.generator!r} draws {size} images but the data are "
                        f"{data} (data.image_size={self.config.data.image_size}); set "
                        f"--config.data.image_size={drawn[0]}, or a generator of {data} "
                        f"(model.g)")
    x = jax.ShapeDtypeStruct((2, *image_shape), jnp.float32)
    try:
      out = jax.eval_shape(lambda x, c: self.disc.init_with_output(
          {"params": key, "dropout": key}, x, c, train=False)[0], x, cond)
    except ConfigError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f"model.discriminator {m.discriminator!r} cannot read {data} images "
                        f"({str(e).splitlines()[0][:200]}); set data.image_size to the size it "
                        "was built for, or its fields (model.d)") from None
    if out.shape != (2,):
      raise ConfigError(f"model.discriminator {m.discriminator!r} gives outputs of shape "
                        f"{out.shape[1:]} per {data} image, not one logit; set data.image_size "
                        "to the size it was built for, or its fields (model.d)")

  # --- generator EMA ----------------------------------------------------------------

  def update_ema(self, ema, params, step: jnp.ndarray):
    """ema <- d ema + (1 - d) params, d = min(ema_decay, (1 + step) / (10 + step)).

    The ramp (TensorFlow's ExponentialMovingAverage with num_updates) keeps the
    average from dragging the untrained initial weights along for thousands of
    steps; `step` is the generator's optimizer step after this update.
    """
    t = step.astype(jnp.float32)
    decay = jnp.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)

  def sampling_state(self, state: GANState, raw: bool = False) -> GANState:
    """The state whose generator draws samples: params replaced by their EMA when the run
    keeps one (and not `raw`). Batch-norm statistics stay the generator's own."""
    if raw or state.ema is None:
      return state
    return state.replace(g=state.g.replace(params=state.ema))

  def raw_state(self, state: GANState):
    """The state without its EMA (samples use the trained weights); None if it keeps none."""
    return None if state.ema is None else state.replace(ema=None)

  # --- growing (PGGAN): the resolution and fade-in of a step --------------------------

  def fade_alpha(self, step) -> jnp.ndarray:
    """Fade-in of the blocks above the first resolution after `step` generator steps: 0 for
    `train.grow_epochs`, then linear to 1 over `train.fade_epochs`."""
    if not self.steps_per_epoch:
      raise RuntimeError("steps_per_epoch is unset: build the family with gm.train.build")
    t = jnp.asarray(step, jnp.float32) - self.grow_epochs * self.steps_per_epoch
    fade = self.fade_epochs * self.steps_per_epoch
    return jnp.clip(t / fade, 0.0, 1.0) if fade else (t >= 0).astype(jnp.float32)

  def _grow_args(self, step: jnp.ndarray) -> dict:
    """Keyword arguments of a growing module for a step: the traced train step's stage, else
    alpha from the step (the full computation, equal to the first stage's at alpha = 0)."""
    if not self.grows:
      return {}
    if self._stage is not None:
      res, alpha = self._stage
      return {"res": res, "alpha": alpha}
    return {"alpha": self.fade_alpha(step)}

  def epoch_stage(self, epoch: int):
    """The resolution every step of `epoch` (1-based) runs at, or None when nothing grows: the
    epoch runner compiles one program per stage (a `lax.cond` between them runs several
    times slower on XLA:CPU than either branch)."""
    if not self.grows:
      return None
    return self.gen.start if epoch <= self.grow_epochs else self.gen.size

  @contextlib.contextmanager
  def at_stage(self, res):
    """While tracing inside this context, train steps run at resolution `res` (static)."""
    self._static_res = res
    try:
      yield
    finally:
      self._static_res = None

  def _growing_step(self, state: GANState, batch: Batch, key: jax.Array):
    """`_train_step` at the first resolution alone while alpha is 0 (the higher blocks are not
    computed: a cheaper program, the same numbers), else at full size with the fade-in. The
    resolution is static under `at_stage` (the epoch runner), else chosen by a `lax.cond`."""
    step = state.g.step
    alpha = self.fade_alpha(step)
    first = step < self.grow_epochs * self.steps_per_epoch

    def at(res):
      def run(operands):
        self._stage = (res, alpha)
        try:
          return self._train_step(*operands)
        finally:
          self._stage = None
      return run

    if self._static_res is not None:
      res = self._static_res
      state, metrics = at(res)((state, batch, key))
    else:
      res = jnp.where(first, self.gen.start, self.gen.size)
      state, metrics = jax.lax.cond(first, at(self.gen.start), at(self.gen.size),
                                    (state, batch, key))
    metrics["grow_alpha"] = alpha
    metrics["grow_res"] = jnp.asarray(res, jnp.float32)
    return state, metrics

  def generate(self, g: TrainState, z, cond=None, train: bool = False, params=None):
    """(images [B, H, W, C] in the output range, updated batch stats)."""
    params, z, cond = precision.cast((g.params if params is None else params, z, cond), self.dtype)
    variables = {"params": params, "batch_stats": g.batch_stats}
    grow = self._grow_args(g.step)
    if not train:
      return (precision.to_float32(self.gen.apply(variables, z, cond, train=False, **grow)),
              g.batch_stats)
    out, upd = self.gen.apply(variables, z, cond, train=True, mutable=["batch_stats"], **grow)
    return precision.to_float32(out), upd.get("batch_stats", {})

  def discriminate(self, d: TrainState, x, cond=None, train: bool = False, key=None, params=None,
                   bn_running: bool = False, features: bool = False):
    """(outputs [B] (logits or critic scores), updated batch stats), and with `features` the
    features [B, F] the discriminator sows as a third item.

    `bn_running`: in training mode, normalise with the running statistics (and
    leave them unchanged) while dropout stays on.
    """
    params, x, cond = precision.cast((d.params if params is None else params, x, cond), self.dtype)
    variables = {"params": params, "batch_stats": d.batch_stats}
    grow = self._grow_args(d.step // self.d_steps)
    mutable = ["batch_stats"] + (["intermediates"] if features else [])
    if train:
      out, upd = self.disc.apply(variables, x, cond, train=True, bn_running=bn_running,
                                 mutable=mutable, rngs={"dropout": key}, **grow)
    else:
      out, upd = self.disc.apply(variables, x, cond, train=False, mutable=mutable, **grow)
    stats = upd.get("batch_stats", {}) if train else d.batch_stats
    if not features:
      return precision.to_float32(out), stats
    return (precision.to_float32(out), stats,
            precision.to_float32(upd["intermediates"]["features"][-1]))

  def images(self, g: TrainState, z, cond=None) -> jnp.ndarray:
    """Noise [B, noise_dim] (+ one-hot [B, K]) -> images [B, H, W, C] in [0, 1] (inference mode)."""
    return self.to_unit(self.generate(g, z, cond)[0])

  @functools.cached_property
  def images_jit(self):
    return runtime.jit(self.images)

  def _readout(self, outputs: jnp.ndarray) -> jnp.ndarray:
    """D(x) as a probability for probability losses, the raw score otherwise."""
    return jax.nn.sigmoid(outputs) if self.loss.probability else outputs

  # --- updates -------------------------------------------------------------------

  def d_step(self, state: GANState, x: jnp.ndarray, cond, key: jax.Array) -> Tuple[GANState, Metrics]:
    """One discriminator update on real images x [B, ...] and as many fresh fakes:
    `loss.d(DOut)` plus the active D terms (`gm.losses.gan`)."""
    n = x.shape[0]
    kz, kt, kdrop, kp, ka = jax.random.split(key, 5)
    kdrop = self._local_key(kdrop)  # Dropout masks differ between devices.
    fake, _ = self.generate(state.g, self.noise(kz, n), cond, train=True)  # G's stats untouched.
    fake = jax.lax.stop_gradient(fake)
    x, both = self._d_inputs(x, fake, ka)
    real_t, fake_t = self._targets(kt, n)

    def loss_fn(params):
      real_out, fake_out, stats, feats = self._d_pass(state.d, params, both, cond, kdrop)
      out = gan_losses.DOut(fake_out, real_out, *feats, real_t, fake_t, self.axis_name)
      loss = self.loss.d(out)
      aux = {"d_loss": loss, "d_real": self._readout(real_out).mean(),
             "d_fake": self._readout(fake_out).mean()}
      d_fn = lambda im: self.discriminate(state.d, im, cond, True, kdrop, params)[0]
      loss = self._add_terms(loss, aux, self.d_terms,
                             gan_losses.TermInputs(d_fn, x, fake, out, kp, self._draw),
                             step=state.d.step)
      return loss, (stats, aux)

    grads, (stats, metrics) = jax.grad(loss_fn, has_aux=True)(state.d.params)
    grads, metrics = self._mean(grads), self._mean(metrics)
    metrics["d_grad_norm"] = optim.global_norm(grads)
    d = state.d.apply_gradients(grads=grads).replace(batch_stats=stats)
    return state.replace(d=d), metrics

  def g_step(self, state: GANState, x: jnp.ndarray, cond, key: jax.Array
             ) -> Tuple[GANState, Metrics]:
    """One generator update on as many fresh fakes as x [B, ...] has rows: `loss.g(DOut)` plus
    the active G terms. D's params and stats are untouched; D sees the real batch (x, cond)
    only when the loss or a G term `needs_real`."""
    n = x.shape[0]
    kz, kc, kdrop, ka = jax.random.split(key, 4)
    kdrop = self._local_key(kdrop)
    z, fake_cond = self.noise(kz, n), self.random_labels(kc, n)
    bn_running = self.d_bn_in_g_step == "running"
    real = real_out = real_feats = None
    if self.g_needs_real:  # D on the real batch, as in D's step (augmented; D fixed).
      kr, kreal_drop = jax.random.split(jax.random.fold_in(ka, 1))
      real, real_in = self._d_inputs(x, None, kr)
      real_out, _, *real_feats = self.discriminate(
          state.d, real_in, cond, True, self._local_key(kreal_drop), bn_running=bn_running,
          features=self.g_features)
      real_feats = (real_feats or [None])[0]

    def loss_fn(params):
      fake, stats = self.generate(state.g, z, fake_cond, train=True, params=params)
      fake = self._diff_augment(fake, self._local_key(ka))
      fake_out, _, *feats = self.discriminate(state.d, fake, fake_cond, True, kdrop,
                                              bn_running=bn_running, features=self.g_features)
      out = gan_losses.DOut(fake_out, real_out, (feats or [None])[0], real_feats,
                            axis_name=self.axis_name)
      loss = self.loss.g(out)
      aux = {"g_loss": loss}
      d_fn = lambda im: self.discriminate(state.d, im, fake_cond, True, kdrop,
                                          bn_running=bn_running)[0]
      loss = self._add_terms(loss, aux, self.g_terms, gan_losses.TermInputs(
          d_fn, real, fake, out, jax.random.fold_in(ka, 3), self._draw))
      return loss, (stats, aux)

    grads, (stats, metrics) = jax.grad(loss_fn, has_aux=True)(state.g.params)
    grads, metrics = self._mean(grads), self._mean(metrics)
    metrics["g_grad_norm"] = optim.global_norm(grads)
    g = state.g.apply_gradients(grads=grads).replace(batch_stats=stats)
    ema = None if state.ema is None else self.update_ema(state.ema, g.params, g.step)
    return state.replace(g=g, ema=ema), metrics

  # --- the steps' plumbing: D's inputs, targets, passes and terms ---------------------

  def _d_inputs(self, x: jnp.ndarray, fake: Optional[jnp.ndarray], key: jax.Array):
    """(x after the data augmentation, D's input batch: [x; fake] after DiffAugment [2B, ...]
    (x alone without fake))."""
    k_real, k_diff = jax.random.split(self._local_key(key))
    x = self._augment_real(x, k_real)
    return x, self._diff_augment(x if fake is None else jnp.concatenate([x, fake]), k_diff)

  def _targets(self, key: jax.Array, n: int):
    """Real and fake targets [n] (label smoothing and noise; global draws)."""
    lc = self.config.loss
    kr, kf = jax.random.split(key)
    draw_t = lambda k, value: self._draw(
        lambda k, s: gan_losses.targets(k, s[0], value, lc.label_noise), k, (n,))
    return draw_t(kr, 1.0 - lc.label_smoothing), draw_t(kf, 0.0)

  def _d_pass(self, d: TrainState, params, both: jnp.ndarray, cond, key: jax.Array):
    """D in training mode on [real; fake] (2n rows): (real_out [n], fake_out [n], new batch
    stats, (real_features, fake_features) or (None, None)). `train.d_batches`: 'joint' is one
    pass over both (batch norm sees both, as the assignment's 64x64 model); else real, then
    fake (as PyTorch loops do)."""
    n = both.shape[0] // 2
    want = self.d_features
    if self.d_batches == "joint":
      both_cond = None if cond is None else jnp.concatenate([cond, cond])
      out, stats, *f = self.discriminate(d, both, both_cond, True, key, params, features=want)
      feats = (f[0][:n], f[0][n:]) if want else (None, None)
      return out[:n], out[n:], stats, feats
    k_real, k_fake = jax.random.split(key)
    real_out, stats, *fr = self.discriminate(d, both[:n], cond, True, k_real, params,
                                             features=want)
    fake_out, stats, *ff = self.discriminate(d.replace(batch_stats=stats), both[n:], cond, True,
                                             k_fake, params, features=want)
    return real_out, fake_out, stats, (fr[0], ff[0]) if want else (None, None)

  def _add_terms(self, loss, aux: dict, terms, inputs, step=None) -> jnp.ndarray:
    """loss + sum of weight * term over `terms` ((name, weight, Term)), each logged in aux.

    A term with an interval k = `loss[Term.every]` > 1 (lazy regularization) is computed at the
    steps `step` % k == 0 only, as k x its value (0 at the others: a `lax.cond` inside the loss),
    so its logged epoch mean estimates the term itself. (A cond around the whole gradient
    instead, with and without the term, measured 7x slower per step on the CPU.)
    """
    for i, (name, weight, term) in enumerate(terms):
      inp = inputs._replace(key=jax.random.fold_in(inputs.key, i))
      every = int(self.config.loss.get(term.every, 1)) if term.every else 1
      if every > 1 and step is not None:
        on = lambda term=term, inp=inp: every * term.fn(inp)
        off = lambda shape=jax.eval_shape(on): jnp.zeros(shape.shape, shape.dtype)
        aux[name] = jax.lax.cond(step % every == 0, on, off)
      else:
        aux[name] = term.fn(inp)
      loss = loss + weight * aux[name]
    return loss

  def train_step(self, state: GANState, batch: Batch, key: jax.Array):
    """`d_steps` discriminator updates (one per chunk of the batch), then one generator update;
    growing models log their resolution and fade-in (`grow_res`, `grow_alpha`)."""
    if self.grows:
      return self._growing_step(state, batch, key)
    return self._train_step(state, batch, key)

  def _train_step(self, state: GANState, batch: Batch, key: jax.Array):
    x, cond = self.inputs(batch), self.one_hot(batch["label"])
    n = x.shape[0] // self.d_steps
    keys = jax.random.split(key, self.d_steps + 1)
    d_metrics = []
    for i in range(self.d_steps):  # Unrolled: d_steps is small.
      chunk = slice(i * n, (i + 1) * n)
      state, m = self.d_step(state, x[chunk], None if cond is None else cond[chunk], keys[i])
      d_metrics.append(m)
    metrics = jax.tree.map(lambda *v: sum(v) / len(v), *d_metrics)
    last = slice(x.shape[0] - n, None)  # G's step sees the last chunk when it reads D(x).
    state, g_metrics = self.g_step(state, x[last], None if cond is None else cond[last],
                                   keys[-1])
    return state, {**metrics, **g_metrics}

  def eval_step(self, state: GANState, batch: Batch, key: jax.Array) -> Metrics:
    """Per-example D(x) on test images and D(G(z)) on as many samples (inference mode).

    Also the spread of the batch (`real_std`, `fake_std`: per-pixel standard
    deviation over the batch's valid rows (`batch['valid']`; padding rows left
    out), averaged over pixels, repeated per example): samples collapsing to
    near-identical images drive `fake_std` towards 0.
    """
    x, cond = self.inputs(batch), self.one_hot(batch["label"])
    fake, _ = self.generate(self.sampling_state(state).g, self.noise(key, x.shape[0]), cond)
    valid = batch.get("valid")
    spread = lambda im: jnp.full(im.shape[:1], _masked_std(im, valid).mean())
    return {"d_real": self._readout(self.discriminate(state.d, x, cond)[0]),
            "d_fake": self._readout(self.discriminate(state.d, fake, cond)[0]),
            "real_std": spread(x), "fake_std": spread(fake)}
