"""gm: generative models (AE, VAE, CVAE, GANs) in JAX/Flax, driven by configs."""

__version__ = "0.1.0"
