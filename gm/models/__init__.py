"""Flax Linen modules only: no training logic lives here.

Models take the layers a platform may implement differently (conv, transposed
conv, pooling, batch norm) as fields defaulting to Flax's; `build` passes a
model the ones it declares.

A GAN config holds its architectures' other fields as typed config groups, `model.g` and
`model.d` (`fields_config`): every field at the module's own default, so the command line can
set any of them (`--config.model.d.spectral_norm=true`) and each default is declared once, in
the module.
"""

import dataclasses
from typing import Any, Dict, Mapping

import ml_collections

from gm.errors import ConfigError
from gm.models.conv import ConvDecoder, ConvEncoder, ModuleDef

# The layer fields `gm.backend.runtime.layers` fills in per platform (not config options).
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


def check_fields(cls: type, names, where: str) -> None:
  """A one-line ConfigError for the first of `names` that `cls` has no field for."""
  unknown = sorted(set(names) - set(options(cls)))
  if unknown:
    valid = ", ".join(sorted(options(cls))) or "none"
    raise ConfigError(f"{where + '.' if where else ''}{unknown[0]}: {cls.__name__} has no field "
                      f"{unknown[0]!r}; its fields: {valid}")


def build(cls: type, layers: Mapping[str, Any], where: str = "", **kwargs) -> Any:
  """`cls(**kwargs)` with those of `layers` (field name -> ModuleDef) that `cls` declares.

  A kwarg `cls` has no field for is a one-line ConfigError naming `where` (the config group
  the kwargs came from, e.g. 'model.d') and the valid fields.
  """
  check_fields(cls, kwargs, where)
  names = {f.name for f in dataclasses.fields(cls)}
  kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
  return cls(**{k: v for k, v in layers.items() if k in names}, **kwargs)


def fields_config(cls: type, where: str = "", **overrides) -> ml_collections.ConfigDict:
  """The config group of module `cls`: every field of `options(cls)` at the module's default,
  typed by it (a float field holds a float, a sequence a tuple), then `overrides`.

  An override `cls` has no field for is a one-line ConfigError naming `where` and the fields.
  """
  check_fields(cls, overrides, where)
  types = {f.name: f.type for f in dataclasses.fields(cls)}
  out = {}
  for name, default in options(cls).items():
    value = overrides.get(name, default)
    if types[name] is float and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    out[name] = tuple(value) if isinstance(value, list) else value
  return ml_collections.ConfigDict(out)


def field_groups() -> Dict[str, Any]:
  """{group under `model`: (the key naming its architecture, that key's registry)}."""
  from gm.models import gan  # pylint: disable=g-import-not-at-top
  return {"g": ("generator", gan.GENERATORS), "d": ("discriminator", gan.DISCRIMINATORS)}


def complete(model: Dict[str, Any]) -> Dict[str, Any]:
  """A run's `model` dict (from config.json) with each field group holding every field of its
  architecture: fields added since the run was written read as the module's default, the value
  that reproduces it (in place; returns `model`). Unknown architectures are left to `build`."""
  for group, (key, registry) in field_groups().items():
    name = model.get(key)
    if not isinstance(name, str) or name not in registry:
      continue
    fields = model.setdefault(group, {})
    if isinstance(fields, dict):
      for field, default in options(registry.get(name)).items():
        fields.setdefault(field, list(default) if isinstance(default, tuple) else default)
  return model


def rebase(config: ml_collections.ConfigDict, base: ml_collections.ConfigDict) -> None:
  """Where `config` (the config file `base` with command-line overrides) names another
  architecture than `base`, its field group becomes the new module's defaults plus the fields
  the command line set. The config file's values are the old module's and are dropped: a field
  of the same name may mean another thing (`width`: channels of one module, a factor of
  another). A field the command line set that the new module lacks is a one-line ConfigError
  (in place)."""
  if "model" not in config or "model" not in base:
    return
  for group, (key, registry) in field_groups().items():
    if key not in config.model or group not in config.model or \
        config.model[key] == base.model.get(key):
      continue
    old = base.model[group].to_dict() if group in base.model else {}
    given = {k: v for k, v in config.model[group].to_dict().items()
             if k not in old or old[k] != v}
    config.model[group] = fields_config(registry.get(config.model[key]), f"model.{group}",
                                        **given)


__all__ = ["ConvDecoder", "ConvEncoder", "ModuleDef", "build", "check_fields", "complete",
           "field_groups", "fields_config", "options", "rebase"]
