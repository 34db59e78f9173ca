r"""Conditional DCGAN on MNIST: generator and discriminator both see the one-hot label.

The generator concatenates the label with the noise; the discriminator with its
flattened conv features. The fixed monitoring grid has one row per digit.

  python train.py --config configs/cgan_mnist.py --workdir runs/cgan_mnist
  python eval.py digits --workdir runs/cgan_mnist

Args (comma-separated): smoke, noise=<int>.
"""

from configs import dcgan_mnist


def get_config(arg=None):
  c = dcgan_mnist.get_config(arg)
  c.model.num_classes = 10
  return c
