r"""The cake DCGAN with the assignment's upsampling generator (nearest x2 + conv blocks with batch norm).

  python train.py --config configs/dcgan_cake_upsample.py --workdir runs/cake_up \
      --config.data.dir=<folder of photos>

Args: as configs/dcgan_cake.py.
"""

from configs import dcgan_cake


def get_config(arg=None):
  c = dcgan_cake.get_config(arg)
  c.model.generator = "dcgan_cake_upsample"
  return c
