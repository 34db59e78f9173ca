r"""64x64 carrot cake on a CPU by growing: 32x32 first, then the 64x64 blocks faded in (PGGAN).

  python train.py --config configs/cake_grow.py --workdir runs/cake_grow \
      --config.data.dir=<folder of photos>
  python eval.py gan-score --workdir runs/cake_grow --all   # held-out SWD over the history

Karras et al. (2018) grow the generator and the discriminator together: train at a low
resolution, then add the next resolution's blocks with a linear fade-in of their output
(alpha 0 -> 1), so that most of the training runs at the cheap resolution and the new
blocks start from a generator that already draws the layout. Here one growth step, 32 -> 64
px (`dcgan_grow` in gm/models/gan.py): `train.grow_epochs` at 32 px (the 64x64 photos
average-pooled; only the 32 px blocks are computed), `train.fade_epochs` fading the 64 px
blocks in, then 64 px to the end. Everything else is configs/cake_fast.py's recipe: pixel-norm
generator, batch-norm discriminator, the non-saturating loss, Adam 2e-4 (0.5, 0.99), batch 32,
DiffAugment (colour, translation, cutout), flips, a generator EMA (0.999), 15% held out.
The stage is a function of the step, so a run resumes (bit-exact) with the same command in any
stage; `train/grow_res` and `train/grow_alpha` in metrics.jsonl log it per epoch.

Args (comma-separated): smoke (tiny widths, 64 photos, 2 + 1 + 1 epochs).
"""

from configs import common
from configs import dcgan_cake
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False)
  c = dcgan_cake.get_config()
  c.data.image_size = 64
  common.fast_photo_training(c)
  common.architectures(c, "dcgan_grow", "dcgan_grow", g={"size": 64, "start": 32},
                       d={"size": 64, "start": 32})
  c.model.noise_dim = 128
  c.train.grow_epochs = 600
  c.train.fade_epochs = 200
  c.train.num_epochs = 4000
  c.train.checkpoint_every = 50
  c.train.eval_every = 50
  c.eval.score_every = 50
  if args.smoke:
    dcgan_cake.smoke(c, width=None)
    c.data.holdout = 0.25
    c.model.g.widths, c.model.d.widths = (8, 8, 4, 4, 4), (4, 4, 4, 8, 8)
    c.train.grow_epochs = 2
    c.train.fade_epochs = 1
    c.train.num_epochs = 4
  return c
