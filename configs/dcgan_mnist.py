r"""DCGAN of the CS231n GAN notebook on MNIST (InfoGAN generator), non-saturating loss.

  python train.py --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist

Args (comma-separated): smoke, noise=<int>.
"""

from configs import common
from configs import gan_mlp_mnist
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False, noise=96)
  c = gan_mlp_mnist.get_config(arg)
  common.architectures(c, "dcgan_mnist", "dcgan_mnist")
  if not args.smoke:
    c.train.num_epochs = 5         # As the notebook.
  return c
