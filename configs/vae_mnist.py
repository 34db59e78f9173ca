r"""VAE of the TensorFlow "Convolutional VAE" tutorial on MNIST.

  python train.py --config configs/vae_mnist.py --workdir runs/vae
  python train.py --config configs/vae_mnist.py:smoke --workdir /tmp/vae_smoke
  python train.py --config configs/vae_mnist.py:quick --workdir runs/quickstart

Args (comma-separated): smoke (tiny, seconds on CPU), quick (embedded
5,000-digit sample, ~1 minute on CPU), latent=<int>.
"""

from configs import common
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False, quick=False, latent=2)
  c = common.autoencoder("vae")
  c.data.binarize = True          # As the tutorial: pixels > 0.5 -> 1.
  c.model.latent_dim = args.latent
  c.loss.kl = "mc"                # mc (tutorial) | analytic
  c.loss.beta = 1.0
  c.optim.lr = 1e-4               # Tutorial: Adam 1e-4, batch 32, 10 epochs.
  c.train.batch_size = 32
  c.train.num_epochs = 10
  if args.quick:
    c.data.source = "embedded"
    c.optim.lr = 1e-3
    c.train.num_epochs = 15
  if args.smoke:
    common.shrink_for_smoke(c)
  return c
