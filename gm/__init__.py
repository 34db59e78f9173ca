"""gm: generative models (AE, VAE, CVAE, GANs) in JAX/Flax, driven by configs.

From Python (docs/api.md):

  import gm
  run = gm.load_run("runs/quickstart")          # a train.py --workdir, at its latest checkpoint
  images = run.sample(16, seed=0)               # numpy [16, H, W, C] in [0, 1]
  result = run.invert(run.targets(index="0")[0], optimizer="adam", lr=0.1, steps=300)
  config = gm.load_config("configs/vae_mnist.py:smoke")
  run = gm.fit(config, "runs/vae_smoke")        # train.py in-process; returns the Run

The names below load on first use, so `import gm` stays cheap.
"""

__version__ = "0.1.0"

_API = ("Run", "fit", "load_config", "load_run")
__all__ = list(_API)


def __getattr__(name):
  if name in _API:
    from gm import api  # pylint: disable=g-import-not-at-top
    return getattr(api, name)
  raise AttributeError(f"module 'gm' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_API))
