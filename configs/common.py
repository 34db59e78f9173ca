"""Defaults shared by every config; each config file changes only what differs."""

import ml_collections


def base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.family = ""

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist"
  c.data.source = "tfds"      # tfds | idx | embedded  (see gm/data/mnist.py)
  c.data.dir = ""             # directory of the idx files (source=idx)
  c.data.tfds_data_dir = ""   # TFDS data_dir ('' = TFDS default)
  c.data.binarize = False
  c.data.num_train = 0        # 0 = all
  c.data.num_test = 0
  c.data.resize = "crop"      # images of another size (photos, eval --image files): crop | pad

  c.model = ml_collections.ConfigDict()
  c.model.compute_dtype = "float32"     # float32 | bfloat16 (mixed: params, optimizer state f32)

  # How this backend runs the models (gm/backend/runtime.py); same numbers up to float rounding.
  c.runtime = ml_collections.ConfigDict()
  c.runtime.layers = "auto"               # auto (CPU: cpu, else flax) | flax | cpu (gm/backend/cpu_layers.py)
  c.runtime.conv_transpose_impl = "auto"  # auto (subpixel with cpu layers) | native | subpixel

  c.loss = ml_collections.ConfigDict()

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adam"
  c.optim.lr = 1e-3
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.schedule = "constant"  # constant | cosine | warmup_cosine
  c.optim.warmup_steps = 0
  c.optim.grad_clip = 0.0
  c.optim.weight_decay = 1e-4    # adamw only
  c.optim.momentum = 0.0         # sgd only (0 = plain SGD)

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 32
  c.train.num_epochs = 10
  c.train.checkpoint_every = 1   # epochs
  c.train.keep_checkpoints = 0   # 0 = keep the whole history
  c.train.eval_every = 1         # epochs
  c.train.num_devices = 0        # devices of the data-parallel mesh (0 = all)
  c.train.epoch_driver = "auto"  # auto | loop | scan
  c.train.progress = True
  c.train.tensorboard = True
  c.train.on_nonfinite = "stop"       # stop | rollback (to the last checkpoint, learning rates lowered)
  c.train.max_rollbacks = 3           # then stop
  c.train.rollback_lr_factor = 0.5    # learning rates x this at each rollback

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 500
  c.eval.judge = "builtin"  # MNIST judge: builtin (gm/metrics/judge_mnist.npz), a run dir or .npz.
  c.eval.score_every = 0                  # Epochs between scores of samples (0 = never): the
                                          # MNIST judge's, or photo folders' SWD. Was judge_every.
  return c


def autoencoder(family: str) -> ml_collections.ConfigDict:
  """Defaults of the AE, VAE and CVAE: the TensorFlow tutorial's conv encoder and decoder."""
  c = base()
  c.family = family
  c.model.out_channels = 1            # image channels
  c.model.start = 7                   # decoder: spatial size after its dense layer
  c.model.encoder_strides = (2, 2)    # 28 -> 13 -> 6 (VALID)
  c.model.encoder_padding = "VALID"
  c.model.decoder_strides = (2, 2)    # 7 -> 14 -> 28
  return c


def augment(flip: bool = False, zoom: float = 0.0, rotate: float = 0.0,
            diff: str = "") -> ml_collections.ConfigDict:
  """On-device augmentation (gm/data/augment.py): of real images before D, and DiffAugment."""
  return ml_collections.ConfigDict({
      "flip": flip,      # random horizontal flip of real images
      "zoom": zoom,      # zoom factor in [1 - zoom, 1 + zoom]
      "rotate": rotate,  # rotation in +-degrees
      "diff": diff,      # DiffAugment of real and fake: '' or e.g. 'color,translation,cutout'
  })


def gan() -> ml_collections.ConfigDict:
  """Defaults of every GAN: the CS231n notebook's training (Adam 1e-3, beta1 0.5, batch 128)."""
  c = base()
  c.family = "gan"
  architectures(c, "mlp", "mlp")
  c.model.noise_dim = 96
  c.model.noise = "uniform"        # uniform in [-1, 1] (the course notebook) | normal
  c.model.num_classes = 0          # > 0: conditional on a one-hot label
  c.loss.name = "ns"               # a name in gm.losses.gan.GAN_LOSSES (formulas there)
  c.loss.label_smoothing = 0.0     # one-sided: real targets 1 - this
  c.loss.label_noise = 0.0         # targets + uniform[-this, this]
  c.loss.gp_weight = 10.0          # wgan-gp's lambda
  c.loss.r1_weight = 0.0           # gamma of the R1 penalty (0 = off)
  c.loss.r1_every = 1              # R1 on every k-th D step at k x its weight (StyleGAN2's lazy R1)
  c.loss.fm_weight = 0.0           # feature matching added to G's loss (0 = off)
  c.optim.lr = 1e-3
  c.optim.b1 = 0.5
  c.optim_g = c.optim              # Separate optimizers (and Optax states) for G and D.
  c.optim_d = ml_collections.ConfigDict(c.optim.to_dict())
  del c.optim
  c.augment = augment()
  c.train.batch_size = 128
  c.train.d_steps = 1              # discriminator updates per generator update
  c.train.d_bn_in_g_step = "batch"  # D's batch norm in the G update: batch | running (Keras)
  c.train.d_batches = "joint"      # D's step: real and fake as one batch (joint) or two (separate)
  c.train.ema_decay = 0.0          # > 0: keep an EMA of G's params; samples and scores use it
  c.train.grow_epochs = 0          # Growing models (PGGAN): epochs at the first resolution,
  c.train.fade_epochs = 0          #   then epochs fading the higher blocks in (0, 0: no growing).
  c.health = ml_collections.ConfigDict()  # Logged warnings (training goes on).
  c.health.d_win_epochs = 5        # D "wins" this many epochs in a row ->
  c.health.d_win_loss = 0.01       #   D loss below this, or D(x) > 0.99 and D(G(z)) < 0.01
  c.health.collapse_ratio = 0.2    # sample spread (test/fake_std) below this x test/real_std
  c.health.degrade_evals = 3       # quality score's running median over this many checkpoints
  c.health.degrade_margin = 0.1    #   worse than its best running median by more than this
  c.eval.score_every = 0
  # Image folders: a local FID-Inception weights file (.npz; gm/metrics/inception.py) adds the
  # Fréchet Inception distance (quality/fid) to the sliced Wasserstein distance. '' = no FID.
  c.eval.inception_weights = ""
  return c


def architectures(c: ml_collections.ConfigDict, generator: str, discriminator: str,
                  g=None, d=None) -> ml_collections.ConfigDict:
  """Sets a GAN's architectures (names in gm/models/gan.py) and their fields: `model.g` and
  `model.d` hold every field of the generator's and discriminator's module at the module's own
  default, then those of `g` / `d`. The command line sets any field, typed:
  --config.model.d.spectral_norm=true. Replaces both groups (nothing of an earlier
  architecture's fields stays)."""
  from gm import models  # pylint: disable=g-import-not-at-top
  from gm.models import gan  # pylint: disable=g-import-not-at-top
  c.model.generator, c.model.discriminator = generator, discriminator
  c.model.g = models.fields_config(gan.GENERATORS.get(generator), "model.g", **(g or {}))
  c.model.d = models.fields_config(gan.DISCRIMINATORS.get(discriminator), "model.d", **(d or {}))
  return c


def fast_photo_training(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The training of configs/cake_fast.py for small photo folders (docs/cake.md): 15% held out,
  normal noise, the non-saturating loss, Adam 2e-4 (0.5, 0.99), batch 32, flips and DiffAugment,
  D's real and fake in two passes, a generator EMA (0.999)."""
  c.data.holdout = 0.15
  c.model.noise = "normal"
  c.loss.name = "ns"
  c.loss.label_noise = 0.0
  for o in (c.optim_g, c.optim_d):
    o.lr, o.b1, o.b2 = 2e-4, 0.5, 0.99
  c.augment = augment(flip=True, diff="color,translation,cutout")
  c.train.batch_size = 32
  c.train.d_bn_in_g_step = "batch"
  c.train.d_batches = "separate"
  c.train.ema_decay = 0.999
  return c


def shrink_for_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A tiny variant that trains in seconds on a CPU with no network."""
  c.data.source = "embedded"
  c.data.num_train = 512
  c.data.num_test = 256
  c.train.num_epochs = 2
  c.train.batch_size = 32
  c.eval.batch_size = 128
  return c
