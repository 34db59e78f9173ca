"""Flax Linen modules only: no training logic lives here.

Models take the layers a platform may implement differently (conv, transposed
conv, pooling, batch norm) as fields defaulting to Flax's; `build` passes a
model the ones it declares.
"""

import dataclasses
from typing import Any, Mapping

from gm.models.conv import ConvDecoder, ConvEncoder, ModuleDef


def build(cls: type, layers: Mapping[str, Any], **kwargs) -> Any:
  """`cls(**kwargs)` with those of `layers` (field name -> ModuleDef) that `cls` declares."""
  names = {f.name for f in dataclasses.fields(cls)}
  return cls(**{k: v for k, v in layers.items() if k in names}, **kwargs)


__all__ = ["ConvDecoder", "ConvEncoder", "ModuleDef", "build"]
