"""Model families: what makes an AE, a VAE, ... a trainable thing.

A family is a class built from the run config. It owns its state layout and
its pure step functions; it never writes files (the loop and eval commands do).
"""

from gm.families.base import FAMILIES, Family, GeneratorView, TrainState
from gm.families import autoencoders, classifier, gan  # noqa: F401  (register families)


def get(config, **kwargs) -> Family:
  """Builds the family named `config.family` for this config (kwargs: e.g. `axis_name`)."""
  return FAMILIES.get(config.family)(config, **kwargs)


__all__ = ["FAMILIES", "Family", "GeneratorView", "TrainState", "get"]
