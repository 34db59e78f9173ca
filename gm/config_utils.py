"""Config helpers: `:arg` parsing, JSON round trip, resume comparison."""

import ast
import copy
import importlib.util
import json
import math
import os
from typing import Any, Dict, List, Sequence, Tuple

import ml_collections

# Keys that may differ when resuming a run without --allow_config_change:
# extending training or changing how often things are written.
RESUMABLE_KEYS = ("train.num_epochs", "train.checkpoint_every", "train.eval_every",
                  "train.progress", "train.epoch_driver", "train.on_nonfinite",
                  "train.max_rollbacks", "train.rollback_lr_factor",
                  "model.compute_dtype")  # Parameters and optimizer states stay float32.
# Groups that only decide what is measured and logged, or how the backend computes the same
# numbers (layer lowerings: float rounding), never the training trajectory.
RESUMABLE_GROUPS = ("eval.", "health.", "runtime.")
# Keys that moved, old name -> new name: a run's config.json written before reads as the new.
RENAMED_KEYS = {
    "model.conv_transpose_impl": "runtime.conv_transpose_impl",
    "eval.judge_every": "eval.score_every",  # It schedules the photo SWD too, not only the judge.
    "model.generator_kwargs": "model.g",     # Typed groups of every field (gm.models).
    "model.discriminator_kwargs": "model.d",
}
# Keys added after runs were written, with the value that reproduces what those runs did: a
# run whose config.json lacks one resumes under a config that has this value.
# `from_dict` fills them into a loaded config.json (in the groups it has), so code reads every
# key directly.
ADDED_KEYS = {
    "train.ema_decay": 0.0,        # GANs: no generator EMA.
    "train.num_devices": 0,        # Every device (only GAN configs had the key).
    "optim.weight_decay": 1e-4,    # The values the optimizers read when the keys were absent.
    "optim.momentum": 0.0,
    "optim_g.weight_decay": 1e-4,
    "optim_g.momentum": 0.0,
    "optim_d.weight_decay": 1e-4,
    "optim_d.momentum": 0.0,
    "train.d_batches": "joint",    # GANs: real and fake through D as one batch.
    "train.grow_epochs": 0,        # GANs: no growing.
    "train.fade_epochs": 0,
    "loss.fm_weight": 0.0,         # GANs: no feature matching.
    "loss.r1_every": 1,            # GANs: R1 (when on) at every D step.
    "health.degrade_evals": 0,     # GANs: no degrading-run warning.
    "health.degrade_margin": 0.1,
    "data.holdout": 0,             # Image folders: no held-out photos (test = train).
    "data.holdout_seed": 0,
    "data.resize": "crop",         # MNIST runs: --image files center-cropped to the run's size.
    "model.compute_dtype": "float32",
    "model.out_channels": 1,       # Autoencoders: the tutorial's MNIST layout.
    "model.start": 7,
    "model.encoder_strides": [2, 2],
    "model.encoder_padding": "VALID",
    "model.decoder_strides": [2, 2],
}
# ADDED_KEYS that belong to some families only (the rest apply to every family that has the group).
_AUTOENCODERS = ("ae", "vae", "cvae")
ADDED_FOR = {
    **{k: ("gan",) for k in ("train.ema_decay", "train.d_batches", "train.grow_epochs",
                             "train.fade_epochs", "loss.fm_weight", "loss.r1_every",
                             "health.degrade_evals", "health.degrade_margin")},
    **{k: _AUTOENCODERS for k in ("model.out_channels", "model.start", "model.encoder_strides",
                                  "model.encoder_padding", "model.decoder_strides")},
}
# Fields of the GAN's architectures (`model.g` / `model.d`) are not listed here: those a run's
# config.json lacks read as the module's own defaults (`gm.models.complete`).


_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def parse_arg(arg: str, **defaults) -> ml_collections.ConfigDict:
  """Parses 'smoke,z=25' style config args against typed defaults (big_vision style).

  A bare name sets a boolean flag to True; `key=value` converts to the default's type.
  """
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"unknown config arg {key!r}; valid: {', '.join(sorted(defaults))}")
    kind = type(defaults[key])
    if not value:
      if kind is not bool:
        raise ValueError(f"config arg {key!r} takes a value: {key}=<{kind.__name__}>")
      out[key] = True
    elif kind is bool:
      if value.lower() not in _TRUE + _FALSE:
        raise ValueError(f"config arg {key}={value}: write {key}=true or {key}=false "
                         f"(or {key} alone for true)")
      out[key] = value.lower() in _TRUE
    else:
      try:
        out[key] = kind(value)
      except ValueError:
        article = "an" if kind is int else "a"
        raise ValueError(f"config arg {key}={value}: {key} takes {article} {kind.__name__}, e.g. "
                         f"{key}={defaults[key]}") from None
      if kind is float and not math.isfinite(out[key]):
        raise ValueError(f"config arg {key}={value}: {key} takes a finite number, e.g. "
                         f"{key}={defaults[key]}")
  return out


def to_dict(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """A plain JSON-able dict of the config."""
  return json.loads(config.to_json_best_effort())


def upgrade(d: Dict[str, Any]) -> Dict[str, Any]:
  """A config dict with the keys of `RENAMED_KEYS` under their new names and every field of its
  GAN architectures (`gm.models.complete`) (a new dict)."""
  d = json.loads(json.dumps(d))
  for old, new in RENAMED_KEYS.items():
    *old_parents, old_leaf = old.split(".")
    node = d
    for p in old_parents:
      node = node.get(p) if isinstance(node, dict) else None
    if not isinstance(node, dict) or old_leaf not in node:
      continue
    value = node.pop(old_leaf)
    *new_parents, new_leaf = new.split(".")
    node = d
    for p in new_parents:
      node = node.setdefault(p, {})
    node.setdefault(new_leaf, value)
  if isinstance(d.get("model"), dict) and "generator" in d["model"]:
    from gm import models  # pylint: disable=g-import-not-at-top
    models.complete(d["model"])
  return d


def fill_added(d: Dict[str, Any]) -> Dict[str, Any]:
  """`d` with the `ADDED_KEYS` of its family it lacks, in the groups it has (in place; returns
  `d`)."""
  family = d.get("family")
  for key, value in ADDED_KEYS.items():
    if key in ADDED_FOR and family not in ADDED_FOR[key]:
      continue
    *parents, leaf = key.split(".")
    node = d
    for p in parents:
      node = node.get(p) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf not in node:
      node[leaf] = value
  return d


def from_dict(d: Dict[str, Any]) -> ml_collections.ConfigDict:
  """The config of a run's config.json: renamed keys under their new names, keys added since
  it was written at the values that reproduce it (`ADDED_KEYS`)."""
  return ml_collections.ConfigDict(fill_added(upgrade(d)))


def flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
  """Dotted keys whose values differ between two config dicts (resumable keys ignored)."""
  a, b = flatten(upgrade(old)), flatten(upgrade(new))
  keys = sorted(set(a) | set(b))
  return [k for k in keys if a.get(k) != b.get(k) and k not in RESUMABLE_KEYS
          and not k.startswith(RESUMABLE_GROUPS)
          and not (k not in a and k in ADDED_KEYS and b[k] == ADDED_KEYS[k])]


def load_file(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """'configs/x.py:arg' plus 'key.sub=value' overrides -> config (as train.py would build it).

  Values are read as Python literals where they parse (1e-3, True, (2, 3)), else as strings.
  """
  from gm.errors import UserError  # pylint: disable=g-import-not-at-top
  path, _, arg = spec.partition(":")
  if not os.path.exists(path):
    raise UserError(f"config file {path} does not exist")
  module_spec = importlib.util.spec_from_file_location("gm_config_file", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg or None) if arg else module.get_config()
  base = copy.deepcopy(config)
  items = []
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep:
      raise UserError(f"--set {item!r}: use key=value, e.g. --set data.dir=photos")
    items.append((key, text))
  deferred = switched_fields(base, items)
  for key, text in items:
    if (key, text) not in deferred:
      set_value(config, key, text, "--set ")
  rebase_models(config, base)
  for key, text in deferred:
    set_value(config, key, text, "--set ")
  check_values(config, how="--set <key>=<value>")
  return config


def switched_fields(base: ml_collections.ConfigDict, items: Sequence[Tuple[str, str]]
                    ) -> List[Tuple[str, str]]:
  """The (key, text) overrides of `items` that set a field of an architecture the same overrides
  switch (`model.generator=<another>` with `model.g.<field>=...`): they are set after
  `rebase_models`, against the new module's fields and types (the file's module may lack the
  field, or type it otherwise: `width` is channels of one module, a factor of another)."""
  if "model" not in base or "generator" not in base.model:
    return []
  from gm import models  # pylint: disable=g-import-not-at-top
  switched = {group for group, (arch, _) in models.field_groups().items()
              if any(k == f"model.{arch}" and t != str(base.model.get(arch)) for k, t in items)}
  return [(k, t) for k, t in items if any(k.startswith(f"model.{g}.") for g in switched)]


def set_value(config: ml_collections.ConfigDict, key: str, text: str, flag: str) -> None:
  """config[key] = `text` read as the key's current type (a Python literal where it parses;
  true / false for booleans); a one-line UserError naming `flag` (`--set ` or `--config.`)."""
  from gm.errors import UserError  # pylint: disable=g-import-not-at-top
  given = f"{flag}{key}={text}"
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  node = config
  *parents, leaf = key.split(".")
  try:
    for p in parents:
      node = node[p]
    old = node[leaf]
  except (KeyError, AttributeError):
    _check_model_field(config, parents, leaf)  # An architecture's field: name its fields.
    raise UserError(f"{flag}{key}: no such config key") from None
  if isinstance(old, bool) and text.strip().lower() in _TRUE + _FALSE:
    value = text.strip().lower() in _TRUE
  try:
    if isinstance(old, (tuple, list)) and not isinstance(value, (tuple, list)):
      raise TypeError(key)
    if isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float) and \
        not value.is_integer():
      raise TypeError(key)  # int(0.25) would be 0.
    if isinstance(old, bool) and not isinstance(value, bool):
      raise TypeError(key)
    node[leaf] = type(old)(value) if isinstance(old, (int, float, str)) and not isinstance(
        old, bool) else value
  except (TypeError, ValueError):
    kind = {int: "an integer", float: "a number", bool: "true or false"}.get(
        type(old), f"a {type(old).__name__}")
    example = str(old).lower() if isinstance(old, bool) else old
    raise UserError(f"{given}: {key} takes {kind}, e.g. {flag}{key}={example}") from None


def _check_model_field(config: ml_collections.ConfigDict, parents: Sequence[str], leaf: str
                       ) -> None:
  """For a key under `model.g` / `model.d`: `gm.models`' one-line ConfigError naming the fields
  of the architecture the config names, if it has no field `leaf`."""
  if len(parents) != 2 or parents[0] != "model" or "model" not in config:
    return
  from gm import models  # pylint: disable=g-import-not-at-top
  arch, registry = models.field_groups().get(parents[1], (None, None))
  name = config.model.get(arch) if arch else None
  if isinstance(name, str) and name in registry:
    models.check_fields(registry.get(name), [leaf], ".".join(parents))


def rebase_models(config: ml_collections.ConfigDict, base: ml_collections.ConfigDict) -> None:
  """`gm.models.rebase` for GAN configs: overrides that switch `model.generator` /
  `model.discriminator` get the new module's fields (in place)."""
  if "model" in config and "generator" in config.model:
    from gm import models  # pylint: disable=g-import-not-at-top
    models.rebase(config, base)


# Sizes and counts, by full key path: these must be >= 1, those >= 0, and
# the `width` factors of model kwargs > 0. Checked by train.py before anything is imported or
# written (`check_values`). A key a config lacks is not checked.
_OPTIMIZERS = ("optim", "optim_g", "optim_d")
_AT_LEAST_ONE = ("train.batch_size", "eval.batch_size", "train.checkpoint_every",
                 "train.eval_every", "train.d_steps", "model.latent_dim", "model.noise_dim",
                 "model.features", "model.start", "data.image_size", "data.placements",
                 "loss.r1_every")
_NOT_NEGATIVE = ("train.num_epochs", "train.keep_checkpoints", "train.num_devices",
                 "train.max_rollbacks", "data.num_train", "data.num_test", "eval.score_every",
                 "model.num_classes", "model.dropout", "train.grow_epochs", "train.fade_epochs", "loss.beta", "loss.gp_weight",
                 "loss.r1_weight", "loss.fm_weight", "loss.label_noise", "loss.label_smoothing", "augment.zoom",
                 "augment.rotate",
                 *(f"{o}.{k}" for o in _OPTIMIZERS for k in ("lr", "warmup_steps", "grad_clip")))
_POSITIVE = ("model.g.width", "model.d.width")
_MODEL_FIELDS = ("model.g.", "model.d.")  # The architectures' fields: finite, whatever they are.
_NOT_NEGATIVE += ("seed", "data.holdout_seed", "data.canvas_seed")  # NumPy's generators take seeds >= 0.
_AT_MOST = {"data.image_size": 4096,  # A decoded dataset of larger images does not fit in memory.
            "data.placements": 9}  # Canvases per digit: one per cell of the 3x3 grid at most.


def check_kinds(config: ml_collections.ConfigDict, base: ml_collections.ConfigDict) -> None:
  """A ConfigError for an override that replaced a value of the config file (`base`) with None,
  or a tuple / list with a scalar: the command line lets None through for any key."""
  from gm.errors import ConfigError  # pylint: disable=g-import-not-at-top
  new = flatten(to_dict(config))
  switched = ()
  if "model" in base and "generator" in base.model:  # GAN configs: switched architectures.
    from gm import models  # pylint: disable=g-import-not-at-top
    switched = tuple(f"model.{g}." for g, (a, _) in models.field_groups().items()
                     if config.model.get(a) != base.model.get(a))
  for key, old in flatten(to_dict(base)).items():
    if key not in new or old is None or (switched and key.startswith(switched)):
      continue  # A switched architecture's fields are the new module's own.
    value, sequence = new[key], isinstance(old, (tuple, list))
    kinds = {type(v) for v in old} if sequence else set()
    if value is None or (sequence and (not isinstance(value, (tuple, list)) or (
        len(kinds) == 1 and any(type(v) not in kinds | ({float} if int in kinds else set())
                                for v in value)))):
      kind, example = ("a tuple", f'"{tuple(old)}"') if sequence else (
          f"a {type(old).__name__}", old)
      raise ConfigError(f"{key}={value!r}: {key} takes {kind}, e.g. --config.{key}={example}")


def check_values(config: ml_collections.ConfigDict, how: str = "--config.<key>=<value>") -> None:
  """A ConfigError naming every size or count of the config that cannot work (0 or negative)."""
  from gm.errors import ConfigError  # pylint: disable=g-import-not-at-top
  bad = []
  for key, value in flatten(to_dict(config)).items():
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      continue
    if key in _AT_LEAST_ONE + _NOT_NEGATIVE + _POSITIVE and value != value:  # NaN
      bad.append(f"{key}={value} (must be a number)")
    elif key.startswith(_MODEL_FIELDS) and value - value != 0:  # NaN or inf in a module field.
      bad.append(f"{key}={value} (must be finite)")
    elif key in _AT_LEAST_ONE and value < 1:
      bad.append(f"{key}={value} (must be >= 1)")
    elif key in _POSITIVE and value <= 0:
      bad.append(f"{key}={value} (must be > 0)")
    elif key in _NOT_NEGATIVE and value < 0:
      bad.append(f"{key}={value} (must be >= 0)")
    elif key in _AT_MOST and value > _AT_MOST[key]:
      bad.append(f"{key}={value} (must be <= {_AT_MOST[key]})")
  if "model" in config:
    from gm.backend import precision  # pylint: disable=g-import-not-at-top
    precision.compute_dtype(config.model)
  if bad:
    raise ConfigError(f"config value{'s' if len(bad) > 1 else ''} out of range: "
                      f"{', '.join(bad)}; set {'them' if len(bad) > 1 else 'it'} with {how}")
