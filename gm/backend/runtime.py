"""The runtime policy: what this backend compiles with, how epochs are driven, which layers run.

The one reader of `jax.default_backend()` in `gm`. Research code never asks
which backend it runs on: models declare their swappable layers as `ModuleDef`
fields defaulting to Flax's (`conv: ModuleDef = nn.Conv`), and the families
pass them `layers(config)`; the loop asks `epoch_driver`; everything compiles
through `jit`. The config group `runtime` overrides the choices (configs/common.py).

Measured choices (docs/benchmarks.md; jax 0.10.2, AVX2 and AVX-512 CPUs):
- Compiler options. On XLA:CPU, XLA hands convolutions to YNNPACK by default;
  its Eigen convolutions are 2-5x faster on `gm`'s models (forward, input and
  kernel gradients). `compiler_options()` turns YNNPACK off for convolutions
  only (dots and reductions keep it, as in XLA's default). The option is applied
  per compilation (`jax.jit(..., compiler_options=...)`), so it changes nothing
  outside `gm`. It is skipped when XLA_FLAGS already sets
  `xla_cpu_experimental_ynn_fusion_type` (the user's choice wins), when
  GM_XLA_DEFAULTS=1, and when this jaxlib rejects it (a warning is logged once).
- Epoch driver. 'scan' compiles a whole epoch as one `lax.scan` (fastest on
  GPU/TPU); 'loop' dispatches one jitted step per batch (fastest on XLA:CPU,
  where a scanned body runs ~3x slower).
- Layers. On CPU the lowerings of `gm.backend.cpu_layers` (sub-pixel transposed convs,
  tap-scatter gradients, a reshape max-pool); elsewhere Flax's own.
"""

import functools
import logging
import os
from typing import Any, Callable, Dict, Optional

import flax.linen as nn
import jax
import ml_collections

from gm.errors import ConfigError, UserError
from gm.models import conv as conv_models

_YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"
# XLA's default YNN fusion types minus LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION (the default of
# jaxlib 0.10.2, found by removing one type at a time via XLA_FLAGS and comparing compiled HLO;
# re-check after upgrading jaxlib).
CPU_OPTIONS = {_YNN_OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}

EPOCH_DRIVERS = ("auto", "loop", "scan")
LAYER_SETS = ("auto", "flax", "cpu")
CONV_TRANSPOSE_IMPLS = ("auto", "native", "subpixel")


def backend() -> str:
  """The default backend's platform name: 'cpu', 'gpu' or 'tpu'."""
  return jax.default_backend()


def on_cpu() -> bool:
  return backend() == "cpu"


@functools.lru_cache(maxsize=None)
def _options(platform: str) -> Optional[Dict[str, Any]]:
  if platform != "cpu":
    return None
  if _YNN_OPTION in os.environ.get("XLA_FLAGS", "") or os.environ.get("GM_XLA_DEFAULTS") == "1":
    return None
  try:
    jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS).lower(1.0).compile()
  except Exception as e:  # pylint: disable=broad-except  # Any rejection: run with XLA's defaults.
    logging.warning("XLA:CPU rejected %s (%s); convolutions use XLA's default (slower) lowering",
                    CPU_OPTIONS, str(e).splitlines()[0][:200])
    return None
  return dict(CPU_OPTIONS)


def compiler_options() -> Optional[Dict[str, Any]]:
  """The options `gm` compiles with on the default backend (None: XLA's defaults)."""
  return _options(backend())


def jit(fun: Callable, **kwargs) -> Callable:
  """`jax.jit(fun, **kwargs)` with `compiler_options()`."""
  options = compiler_options()
  if options is not None:
    kwargs.setdefault("compiler_options", options)
  return jax.jit(fun, **kwargs)


def epoch_driver(driver: str = "auto") -> str:
  """'loop' or 'scan' for `train.epoch_driver` ('auto': loop on CPU, scan elsewhere)."""
  if driver not in EPOCH_DRIVERS:
    raise UserError(f"train.epoch_driver={driver!r}; valid: {', '.join(EPOCH_DRIVERS)}")
  if driver == "auto":
    return "loop" if on_cpu() else "scan"
  return driver


def layers(config: Optional[ml_collections.ConfigDict] = None) -> Dict[str, Any]:
  """The layer modules models take as fields, by field name, for this backend and config.

  Args:
    config: the run config (its `runtime` group: `layers`, `conv_transpose_impl`);
      None or a config without the group: the backend's defaults.

  Returns:
    {'conv': ModuleDef, 'conv_transpose': ModuleDef, 'max_pool': [B, H, W, C] ->
    [B, H/2, W/2, C]}: Flax's own, or on CPU the lowerings of `gm.backend.cpu_layers`.
  """
  rc = config.runtime if config is not None and "runtime" in config else {}
  layer_set, impl = rc.get("layers", "auto"), rc.get("conv_transpose_impl", "auto")
  if layer_set not in LAYER_SETS:
    raise ConfigError(f"runtime.layers={layer_set!r}; valid: {', '.join(LAYER_SETS)}")
  if impl not in CONV_TRANSPOSE_IMPLS:
    raise ConfigError(f"unknown conv_transpose impl {impl!r}; valid: "
                      f"{', '.join(CONV_TRANSPOSE_IMPLS)}")
  cpu = layer_set == "cpu" or (layer_set == "auto" and on_cpu())
  if impl == "auto":
    impl = "subpixel" if cpu else "native"
  return dict(_layers(cpu, impl))


@functools.lru_cache(maxsize=None)
def _layers(cpu: bool, conv_transpose_impl: str) -> Dict[str, Any]:
  """The modules, built once per choice (the same objects each time: jit caches hit)."""
  out = {"conv": nn.Conv, "conv_transpose": nn.ConvTranspose,
         "max_pool": conv_models.max_pool_2x2}
  if cpu or conv_transpose_impl == "subpixel":
    from gm.backend import cpu_layers  # pylint: disable=g-import-not-at-top
    if cpu:
      out.update(conv=cpu_layers.Conv, max_pool=cpu_layers.max_pool_2x2)
    out["conv_transpose"] = functools.partial(cpu_layers.ConvTranspose, impl=conv_transpose_impl)
  return out
