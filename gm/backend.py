"""`jit` with the compiler options `gm` measured to be fastest per backend.

On XLA:CPU, XLA hands convolutions to YNNPACK by default; its Eigen
convolutions are 2-5x faster on the convolutions of `gm`'s models (forward,
input and kernel gradients; measured with jax 0.10.2 on AVX2 and AVX-512 CPUs,
see the README's performance notes). `compiler_options()` turns YNNPACK off for
convolutions only (dots and reductions keep it, as in XLA's default), and
`gm.models.layers` picks its CPU lowerings for that setting.

The option is applied per compilation (`jax.jit(..., compiler_options=...)`), so
it changes nothing outside `gm`. It is skipped when XLA_FLAGS already sets
`xla_cpu_experimental_ynn_fusion_type` (the user's choice wins), when
GM_XLA_DEFAULTS=1, and when this jaxlib rejects it (a warning is logged once).
"""

import functools
import logging
import os
from typing import Any, Callable, Dict, Optional

import jax

_YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"
# XLA's default YNN fusion types minus LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION (the default of
# jaxlib 0.10.2, found by removing one type at a time via XLA_FLAGS and comparing compiled HLO;
# re-check after upgrading jaxlib).
CPU_OPTIONS = {_YNN_OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


@functools.lru_cache(maxsize=None)
def _options(backend: str) -> Optional[Dict[str, Any]]:
  if backend != "cpu":
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
  return _options(jax.default_backend())


def jit(fun: Callable, **kwargs) -> Callable:
  """`jax.jit(fun, **kwargs)` with `compiler_options()`."""
  options = compiler_options()
  if options is not None:
    kwargs.setdefault("compiler_options", options)
  return jax.jit(fun, **kwargs)
