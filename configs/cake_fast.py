r"""A fast recipe for small photo folders: a generator that draws carrot cake in under an hour on
a 2-core CPU.

  python train.py --config configs/cake_fast.py --workdir runs/cake_fast \
      --config.data.dir=<folder of photos>
  python eval.py samples --workdir runs/cake_fast          # from the generator's EMA
  python eval.py gan-score --workdir runs/cake_fast --all  # held-out SWD over the history

Built from what the small-data literature measured, and chosen by measurement on
the 2-core CPU (docs/cake.md): 32x32 photos (a 64x64 model of the same
design draws only colour blobs after the same 25 minutes); Radford et al.'s DCGAN
(transposed-conv generator with PGGAN's pixel norm, so the weights' moving average
is a complete generator; conv discriminator with batch norm, real and fake in two
forward passes as PyTorch's DCGAN); the non-saturating loss; DiffAugment's
colour, translation and cutout on everything the discriminator sees (Zhao et al.
2020); horizontal flips of the photos; Adam 2e-4, betas 0.5 / 0.99; batch 32; an
EMA of the generator (decay 0.999) for samples, scores and inversion. 15% of the
photos are held out: the logged sliced Wasserstein distance compares samples with
them.

Args (comma-separated): smoke (a tiny model, 64 photos, 2 epochs); size=<px> (default 32;
`:size=64` is the 64x64 model of the same design that the hour did not suffice for); r1 (adds
a lazy R1 penalty on D, gamma 0.1 every 16th D step: on the split-half measure it reaches the
floor where the plain recipe stays at 1.15x, docs/cake.md#against-halves-of-the-training-photos).
"""

from configs import common
from configs import dcgan_cake
from gm.config_utils import parse_arg
from gm.errors import ConfigError


def get_config(arg=None):
  args = parse_arg(arg, smoke=False, size=32, r1=False)
  if args.size not in (32, 64):
    raise ConfigError(f"configs/cake_fast.py:size={args.size}: the recipe is built for 32 or 64 "
                      "px; pass size=32 or size=64")
  c = dcgan_cake.get_config()
  c.data.image_size = args.size
  common.fast_photo_training(c)
  common.architectures(c, "dcgan", "dcgan", g={"size": args.size, "width": 32, "norm": "pixel"},
                       d={"size": args.size, "width": 32})
  c.model.noise_dim = 128
  c.train.num_epochs = 3000
  c.train.checkpoint_every = 100
  c.train.eval_every = 100
  c.eval.score_every = 100
  if args.r1:
    c.loss.r1_weight = 0.1
    c.loss.r1_every = 16
  if args.smoke:
    dcgan_cake.smoke(c, width=None)
    c.data.holdout = 0.25
    c.model.g.width = c.model.d.width = 4
  return c
