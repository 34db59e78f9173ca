r"""A fast recipe for small photo folders: a generator that draws carrot cake in under an hour on
a 2-core CPU.

  python train.py --config configs/cake_fast.py --workdir runs/cake_fast \
      --config.data.dir=<folder of photos>
  python eval.py samples --workdir runs/cake_fast          # from the generator's EMA
  python eval.py gan-score --workdir runs/cake_fast --all  # held-out SWD over the history

Built from what the small-data literature measured, and chosen by measurement on
the 2-core CPU (README, "The cake job"): 32x32 photos (a 64x64 model of the same
design draws only colour blobs after the same 25 minutes); Radford et al.'s DCGAN
(transposed-conv generator with PGGAN's pixel norm, so the weights' moving average
is a complete generator; conv discriminator with batch norm, real and fake in two
forward passes as PyTorch's DCGAN); the non-saturating loss; DiffAugment's
colour, translation and cutout on everything the discriminator sees (Zhao et al.
2020); horizontal flips of the photos; Adam 2e-4, betas 0.5 / 0.99; batch 32; an
EMA of the generator (decay 0.999) for samples, scores and inversion. 15% of the
photos are held out: the logged sliced Wasserstein distance compares samples with
them.

Args (comma-separated): smoke (a tiny model, 64 photos, 2 epochs).
"""

from configs import common
from configs import dcgan_cake
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False)
  c = dcgan_cake.get_config()
  c.data.image_size = 32
  c.data.holdout = 0.15
  c.model.generator = "dcgan"
  c.model.discriminator = "dcgan"
  c.model.generator_kwargs = {"size": 32, "width": 32, "norm": "pixel"}
  c.model.discriminator_kwargs = {"size": 32, "width": 32}
  c.model.noise_dim = 128
  c.model.noise = "normal"
  c.loss.name = "ns"
  c.loss.label_noise = 0.0
  for o in (c.optim_g, c.optim_d):
    o.lr, o.b1, o.b2 = 2e-4, 0.5, 0.99
  c.augment = common.augment(flip=True, diff="color,translation,cutout")
  c.train.batch_size = 32
  c.train.num_epochs = 3000
  c.train.checkpoint_every = 100
  c.train.eval_every = 100
  c.train.d_bn_in_g_step = "batch"
  c.train.d_batches = "separate"
  c.train.ema_decay = 0.999
  c.eval.judge_every = 100
  if args.smoke:
    dcgan_cake.smoke(c)
    c.data.holdout = 0.25
    c.model.generator_kwargs = {"size": 32, "width": 4, "norm": "pixel"}
    c.model.discriminator_kwargs = {"size": 32, "width": 4}
  return c
