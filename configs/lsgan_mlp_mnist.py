r"""LSGAN: the MLP GAN with the least-squares loss of the CS231n notebook.

  python train.py --config configs/lsgan_mlp_mnist.py --workdir runs/lsgan_mlp

Args: as configs/gan_mlp_mnist.py.
"""

from configs import gan_mlp_mnist


def get_config(arg=None):
  c = gan_mlp_mnist.get_config(arg)
  c.loss.name = "lsgan"
  return c
