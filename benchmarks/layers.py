r"""Per-layer fwd+bwd ms of the conv lowerings on this machine, all in one process.

  python benchmarks/layers.py [--select "dc "] [--rounds 10]

For each conv and transposed conv of `gm`'s models (at the benchmark batch
sizes) it times one forward and backward pass (input and kernel gradients,
a random output gradient) of:
- XLA's own layer compiled with XLA's defaults (on CPU: YNNPACK convolutions),
- the same compiled with `gm.backend.runtime`'s options (on CPU: Eigen convolutions),
- the lowering `gm` picks (`conv2d` / `ConvTranspose` with impl 'auto'), with
  `gm.backend.runtime`'s options, which is what training runs.
For transposed convs "XLA" is the sub-pixel phases with XLA's gradients (the
native strided lowering is 10-40x slower on CPUs; `benchmarks/conv_transpose.py`).
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gm.backend import runtime  # noqa: E402
from gm.backend import cpu_layers as layers  # noqa: E402

# name: (x shape, kernel shape, stride, padding); padding None = a 'SAME' transposed conv.
LAYERS = [
    ("AE enc 3x3/2 1->32 @28, b32", (32, 28, 28, 1), (3, 3, 1, 32), 2, "VALID"),
    ("AE enc 3x3/2 32->64 @13, b32", (32, 13, 13, 32), (3, 3, 32, 64), 2, "VALID"),
    ("AE dec T3x3/2 32->64 @7, b32", (32, 7, 7, 32), (3, 3, 32, 64), 2, None),
    ("AE dec T3x3/2 64->32 @14, b32", (32, 14, 14, 64), (3, 3, 64, 32), 2, None),
    ("AE dec T3x3/1 32->1 @28, b32", (32, 28, 28, 32), (3, 3, 32, 1), 1, None),
    ("CVAE enc 3x3/3 1->32 @42, b64", (64, 42, 42, 1), (3, 3, 1, 32), 3, "SAME"),
    ("CVAE enc 3x3/2 32->64 @14, b64", (64, 14, 14, 32), (3, 3, 32, 64), 2, "SAME"),
    ("CVAE dec T3x3/3 64->32 @14, b64", (64, 14, 14, 64), (3, 3, 64, 32), 3, None),
    ("dc D 5x5 1->32 @28, b256", (256, 28, 28, 1), (5, 5, 1, 32), 1, "VALID"),
    ("dc D 5x5 32->64 @12, b256", (256, 12, 12, 32), (5, 5, 32, 64), 1, "VALID"),
    ("dc G T4x4/2 128->64 @7, b128", (128, 7, 7, 128), (4, 4, 128, 64), 2, None),
    ("dc G T4x4/2 64->1 @14, b128", (128, 14, 14, 64), (4, 4, 64, 1), 2, None),
    ("cake D 4x4/2 3->64 @64, b16", (16, 64, 64, 3), (4, 4, 3, 64), 2, "SAME"),
    ("cake D 4x4/2 64->128 @32, b16", (16, 32, 32, 64), (4, 4, 64, 128), 2, "SAME"),
    ("cake D 4x4/2 128->128 @16, b16", (16, 16, 16, 128), (4, 4, 128, 128), 2, "SAME"),
    ("cake G T4x4/2 128->256 @16, b8", (8, 16, 16, 128), (4, 4, 128, 256), 2, None),
    ("cake G T4x4/2 256->512 @32, b8", (8, 32, 32, 256), (4, 4, 256, 512), 2, None),
    ("cake G 5x5 512->3 @64, b8", (8, 64, 64, 512), (5, 5, 512, 3), 1, "SAME"),
    ("cake Gup 3x3 64->128 @32, b8", (8, 32, 32, 64), (3, 3, 64, 128), 1, "SAME"),
    ("cake Gup 3x3 256->256 @64, b8", (8, 64, 64, 256), (3, 3, 256, 256), 1, "SAME"),
]


def timed(fn, x, k, options, rounds):
  """Best of `rounds` calls of fn's jitted fwd+bwd (ms), compiled with `options`."""
  dy = jax.random.normal(jax.random.PRNGKey(2), jax.eval_shape(fn, x, k).shape) * 0.01
  f = jax.jit(lambda x, k, dy: jax.vjp(fn, x, k)[1](dy), compiler_options=options)
  jax.block_until_ready(f(x, k, dy))
  best = float("inf")
  for _ in range(rounds):
    t = time.perf_counter()
    jax.block_until_ready(f(x, k, dy))
    best = min(best, time.perf_counter() - t)
  return best * 1e3


def lowerings(k_shape, stride, padding):
  """(XLA's layer, gm's 'auto' layer) as functions of (x, kernel)."""
  s = (stride, stride)
  if padding is not None:
    return (lambda x, k: layers.conv2d(x, k, s, padding, "native"),
            lambda x, k: layers.conv2d(x, k, s, padding))
  module = layers.ConvTranspose(k_shape[3], k_shape[:2], s, use_bias=False)
  ours = lambda x, k: module.apply({"params": {"kernel": k}}, x)
  if stride == 1:
    return (lambda x, k: jax.lax.conv_transpose(x, k, s, "SAME",
                                                dimension_numbers=("NHWC", "HWIO", "NHWC")), ours)
  return lambda x, k: layers._subpixel_phases(x, k, s), ours  # pylint: disable=protected-access


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--select", default="", help="only layers whose name contains this")
  p.add_argument("--rounds", type=int, default=10)
  args = p.parse_args()
  options = runtime.compiler_options()
  print(f"{jax.default_backend()}, {os.cpu_count()} CPUs, jax {jax.__version__}; gm's compiler "
        f"options: {options}")
  print("| layer (fwd+bwd ms) | XLA, XLA defaults | XLA, gm options | gm 'auto' | gm vs XLA defaults |")
  print("|---|---|---|---|---|")
  for name, x_shape, k_shape, stride, padding in LAYERS:
    if args.select not in name:
      continue
    x = jax.random.normal(jax.random.PRNGKey(0), x_shape)
    k = jax.random.normal(jax.random.PRNGKey(1), k_shape) * 0.05
    xla, ours = lowerings(k_shape, stride, padding)
    t = [timed(xla, x, k, None, args.rounds), timed(xla, x, k, options, args.rounds),
         timed(ours, x, k, options, args.rounds)]
    print(f"| {name} | {t[0]:.2f} | {t[1]:.2f} | {t[2]:.2f} | {t[0] / t[2]:.1f}x |", flush=True)


if __name__ == "__main__":
  main()
