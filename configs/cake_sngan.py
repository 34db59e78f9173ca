r"""The fast photo recipe (configs/cake_fast.py) with an SNGAN discriminator: the hinge loss,
spectral normalization of every discriminator layer and no batch norm in it (Miyato et al. 2018).

  python train.py --config configs/cake_sngan.py --workdir runs/cake_sngan \
      --config.data.dir=<folder of photos>

Everything else is the fast recipe's: its generator, Adam 2e-4 (0.5, 0.99) with one
discriminator step per generator step (the paper's setting C), DiffAugment, the generator
EMA and the 15% held-out photos its SWD is measured on (docs/cake.md compares the two).

Args: as configs/cake_fast.py (smoke, size=<px>).
"""

from configs import cake_fast


def get_config(arg=None):
  c = cake_fast.get_config(arg)
  c.loss.name = "hinge"
  c.model.d.spectral_norm = True
  c.model.d.norm = "none"
  return c
