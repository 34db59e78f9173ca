r"""MLP GAN of the CS231n GAN notebook on MNIST (non-saturating loss).

  python train.py --config configs/gan_mlp_mnist.py --workdir runs/gan_mlp
  python train.py --config configs/gan_mlp_mnist.py:smoke --workdir /tmp/gan_smoke
  python train.py --config configs/gan_mlp_mnist.py --workdir runs/gan_hinge \
      --config.loss.name=hinge

Args (comma-separated): smoke (tiny, seconds on CPU), noise=<int> (noise_dim).
"""

from configs import common
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False, noise=96)
  c = common.gan()
  common.architectures(c, "mlp", "mlp")
  c.model.noise_dim = args.noise
  c.train.num_epochs = 10
  if args.smoke:
    smoke(c)
  return c


def smoke(c):
  common.shrink_for_smoke(c)
  c.train.batch_size = 64
  return c
