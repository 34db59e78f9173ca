"""Flax Linen modules only: no training logic lives here.

Models take the layers a platform may implement differently (conv, transposed
conv, pooling, batch norm) as fields defaulting to Flax's; `build` passes a
model the ones it declares.
"""

import dataclasses
from typing import Any, Dict, Mapping

from gm.errors import ConfigError
from gm.models.conv import ConvDecoder, ConvEncoder, ModuleDef

# The layer fields `gm.runtime.layers` fills in per platform (not config options).
LAYER_FIELDS = ("conv", "conv_transpose", "max_pool", "batch_norm", "dense")


def options(cls: type) -> Dict[str, Any]:
  """The fields a config may set on module `cls` (its dataclass fields without Flax's own
  `parent` / `name` and the platform layers), with their defaults."""
  out = {}
  for f in dataclasses.fields(cls):
    if f.name in ("parent", "name") or f.name in LAYER_FIELDS:
      continue
    out[f.name] = f.default if f.default is not dataclasses.MISSING else None
  return out


def build(cls: type, layers: Mapping[str, Any], where: str = "", **kwargs) -> Any:
  """`cls(**kwargs)` with those of `layers` (field name -> ModuleDef) that `cls` declares.

  A kwarg `cls` has no field for is a one-line ConfigError naming `where` (the config group
  the kwargs came from, e.g. 'model.discriminator_kwargs') and the valid fields.
  """
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(kwargs) - set(options(cls)))
  if unknown:
    valid = ", ".join(sorted(options(cls))) or "none"
    raise ConfigError(f"{where + '.' if where else ''}{unknown[0]}: {cls.__name__} has no field "
                      f"{unknown[0]!r}; its fields: {valid}")
  return cls(**{k: v for k, v in layers.items() if k in names}, **kwargs)


__all__ = ["ConvDecoder", "ConvEncoder", "ModuleDef", "build", "options"]
