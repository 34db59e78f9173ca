r"""DCGAN on a small folder of 64x64 RGB photos (the assignment's carrot cake), transposed generator.

  python train.py --config configs/dcgan_cake.py --workdir runs/cake \
      --config.data.dir=<folder of photos>
  python train.py --config configs/dcgan_cake.py:smoke --workdir /tmp/cake_smoke \
      --config.data.dir=<folder>               # under a minute on a CPU
  python eval.py data-grid --workdir runs/cake  # the loaded photos
  python eval.py augment-grid --workdir runs/cake

Training as the assignment: per step, a discriminator update on 8 real photos (label 1)
and 8 fresh fakes (label 0) in one batch of 16, labels + uniform[-0.05, 0.05]
noise, binary cross-entropy, Adam 1e-5; then a generator update on 8 new fakes
labelled real (no noise, no real images). Thousands of epochs: the whole
checkpoint history is kept, every `train.checkpoint_every` epochs.

Args (comma-separated): smoke (1/8 of the filters, 64 photos, 2 epochs); cpu (the same
architecture at a quarter of the filters, trained with configs/cake_fast.py's recipe: Adam 2e-4,
betas 0.5 / 0.99, batch 32, DiffAugment, flips, a generator EMA, 15% of the photos held out; a
size a 2-core CPU carries for hours, docs/cake.md).

  python train.py --config configs/dcgan_cake.py:cpu --workdir runs/cake64_transposed \
      --config.data.dir=<folder of photos>
"""

from configs import common
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False, cpu=False)
  c = common.gan()
  c.data.name = "image_folder"
  c.data.source = "folder"         # folder | tfds (Food-101 carrot_cake)
  c.data.dir = ""                  # Required for source=folder.
  c.data.image_size = 64
  c.data.resize = "crop"           # crop (center square) | pad
  c.data.cache_dir = ""            # Decoded-array cache ('' = ~/.cache/gm/image_folder).
  c.data.tfds_label = 14           # Food-101's carrot_cake.
  c.data.holdout = 0.0             # Photos held out of training, scores use them: a fraction
                                   # (0.15) or a count (128); 0 = none, test = the training set.
  c.data.holdout_seed = 0          # Which photos: a permutation from this seed.
  common.architectures(c, "dcgan_cake", "dcgan_cake")
  c.model.noise_dim = 128
  c.model.noise = "normal"
  c.loss.name = "ns"
  c.loss.label_noise = 0.05
  for o in (c.optim_g, c.optim_d):   # Keras Adam defaults, lr 1e-5.
    o.lr, o.b1 = 1e-5, 0.9
  c.augment = common.augment(flip=True, zoom=0.1, rotate=10.0)
  c.train.batch_size = 8
  c.train.num_epochs = 3000
  c.train.checkpoint_every = 100
  c.train.eval_every = 10
  c.train.d_bn_in_g_step = "running"  # Keras: a frozen discriminator runs its BN in inference mode.
  c.eval.batch_size = 64
  c.eval.score_every = 100         # Sliced Wasserstein distance of samples to the photos.
  if args.cpu:
    cpu(c)
  if args.smoke:
    smoke(c)
  return c


def cpu(c):
  """The assignment's networks at width 0.25 under the fast recipe's training (cake_fast.py)."""
  common.fast_photo_training(c)
  c.model.g.width = c.model.d.width = 0.25
  c.train.num_epochs = 3000
  c.train.checkpoint_every = 25
  c.train.eval_every = 25
  c.eval.score_every = 25
  return c


def smoke(c, width=0.125):
  """64 photos, 2 epochs; the models' `width` fields x `width` (None: the models unchanged)."""
  c.data.num_train = 64
  c.data.num_test = 64
  if width is not None:
    c.model.g.width = c.model.d.width = width
  c.train.num_epochs = 2
  c.train.checkpoint_every = 1
  c.train.eval_every = 1
  c.eval.score_every = 1
  return c
