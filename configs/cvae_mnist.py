r"""Conditional VAE on the 3x3 MNIST canvas (label + position condition).

  python train.py --config configs/cvae_mnist.py --workdir runs/cvae_z2        # latent 2, 10 epochs
  python train.py --config configs/cvae_mnist.py:z25 --workdir runs/cvae_z25   # latent 25, 20 epochs
  python train.py --config configs/cvae_mnist.py:z100 --workdir runs/cvae_z100 # latent 100, 50 epochs
  python train.py --config configs/cvae_mnist.py:smoke --workdir /tmp/cvae

Args: z2 (default), z25, z100 (latent sizes with the reports' epochs), smoke.
Any other latent size: --config.model.latent_dim=<n>.
"""

from configs import common
from gm.config_utils import parse_arg

EPOCHS = {2: 10, 25: 20, 50: 30, 100: 50}


def get_config(arg=None):
  args = parse_arg(arg, smoke=False, z2=False, z25=False, z100=False)
  latent = 25 if args.z25 else 100 if args.z100 else 2
  c = common.autoencoder("cvae")
  c.data.name = "mnist_canvas"
  c.data.placements = 2
  c.data.canvas_seed = 0
  c.data.binarize = True
  c.model.latent_dim = latent
  c.model.start = 7
  c.model.encoder_strides = (3, 2)    # 42 -> 14 -> 7
  c.model.encoder_padding = "SAME"
  c.model.decoder_strides = (2, 3)    # 7 -> 14 -> 42
  c.loss.kl = "analytic"
  c.loss.beta = 1.0
  c.optim.lr = 1e-3
  c.train.batch_size = 64
  c.train.num_epochs = EPOCHS[latent]
  if args.smoke:
    common.shrink_for_smoke(c)
  return c
