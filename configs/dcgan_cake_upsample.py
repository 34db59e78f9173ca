r"""The cake DCGAN with the assignment's upsampling generator (nearest x2 + conv blocks with batch norm).

  python train.py --config configs/dcgan_cake_upsample.py --workdir runs/cake_up \
      --config.data.dir=<folder of photos>

Args: as configs/dcgan_cake.py.
"""

from configs import common
from configs import dcgan_cake


def get_config(arg=None):
  c = dcgan_cake.get_config(arg)
  common.architectures(c, "dcgan_cake_upsample", "dcgan_cake", g={"width": c.model.g.width},
                       d=c.model.d.to_dict())
  return c
