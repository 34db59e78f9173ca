r"""Autoencoder with a 2-D latent on MNIST (conv encoder/decoder, sigmoid output).

  python train.py --config configs/ae_mnist.py --workdir runs/ae
  python train.py --config configs/ae_mnist.py:smoke --workdir /tmp/ae_smoke

Args: smoke, latent=<int>. Loss: --config.loss.recon=mse|bce.
"""

from configs import common
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False, latent=2)
  c = common.autoencoder("ae")
  c.model.latent_dim = args.latent
  c.loss.recon = "bce"            # bce | mse
  c.optim.lr = 1e-3
  c.train.batch_size = 32
  c.train.num_epochs = 10
  if args.smoke:
    common.shrink_for_smoke(c)
  return c
