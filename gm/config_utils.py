"""Config helpers: `:arg` parsing, JSON round trip, resume comparison."""

import ast
import importlib.util
import json
import os
from typing import Any, Dict, List, Sequence

import ml_collections

# Keys that may differ when resuming a run without --allow_config_change:
# extending training or changing how often things are written.
RESUMABLE_KEYS = ("train.num_epochs", "train.checkpoint_every", "train.eval_every",
                  "train.progress", "train.epoch_driver")


def parse_arg(arg: str, **defaults) -> ml_collections.ConfigDict:
  """Parses 'smoke,z=25' style config args against typed defaults (big_vision style).

  A bare name sets a boolean flag to True; `key=value` converts to the default's type.
  """
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"unknown config arg {key!r}; valid: {', '.join(sorted(defaults))}")
    if not value:
      out[key] = True
    else:
      kind = type(defaults[key])
      out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
  return out


def to_dict(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """A plain JSON-able dict of the config."""
  return json.loads(config.to_json_best_effort())


def from_dict(d: Dict[str, Any]) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(d)


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
  a, b = flatten(old), flatten(new)
  keys = sorted(set(a) | set(b))
  return [k for k in keys if a.get(k) != b.get(k) and k not in RESUMABLE_KEYS]


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
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep:
      raise UserError(f"--set {item!r}: use key=value, e.g. --set data.dir=photos")
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
      raise UserError(f"--set {key}: no such config key") from None
    node[leaf] = type(old)(value) if isinstance(old, (int, float, str)) and not isinstance(
        old, bool) else value
  return config
