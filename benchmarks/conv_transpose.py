r"""Transposed-conv lowerings on this machine, fwd+bwd ms per call, ratios in one process.

  python benchmarks/conv_transpose.py [--layers strided|few|all]

strided: the 4x4 stride-2 layers of the reference documents' generators, native vs one conv to
s*s*C channels vs per-phase. few: the decoders' stride-1 3x3 32 -> 1 output layers
(VAE/AE at batch 32 x 28x28, CVAE at batch 64 x 42x42), XLA's conv vs
`conv_few_outputs`.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gm.backend import runtime  # noqa: E402
from gm.backend.cpu_layers import (_conv, _subpixel_taps, conv_few_outputs,  # noqa: E402
                              subpixel_conv_transpose)


def single_conv_to_phases(x, kernel, strides):
  """The earlier lowering: one stride-1 conv to sh*sw*Cout channels, then depth-to-space."""
  kh, kw, cin, cout = kernel.shape
  sh, sw = strides
  th, vh, dh = _subpixel_taps(kh, sh)
  tw, vw, dw = _subpixel_taps(kw, sw)
  k = kernel[th[:, None, :, None], tw[None, :, None, :]]
  mask = (vh[:, None, :, None] & vw[None, :, None, :])[..., None, None]
  k = jnp.where(mask, k, 0).transpose(0, 1, 4, 2, 3, 5)
  k = k.reshape(k.shape[0], k.shape[1], cin, sh * sw * cout)
  pads = [(max(-dh, 0), max(dh + k.shape[0] - 1, 0)), (max(-dw, 0), max(dw + k.shape[1] - 1, 0))]
  y = jax.lax.conv_general_dilated(x, k, (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))
  b, h, w, _ = y.shape
  return y.reshape(b, h, w, sh, sw, cout).transpose(0, 1, 3, 2, 4, 5).reshape(b, h * sh, w * sw, cout)


def native(x, kernel, strides):
  return jax.lax.conv_transpose(x, kernel, strides, "SAME",
                                dimension_numbers=("NHWC", "HWIO", "NHWC"))


def bench(fn, x, k, repeats=3, rounds=1):
  """Best of `rounds` means over `repeats` calls of fn's jitted fwd+bwd, in ms."""
  f = runtime.jit(jax.grad(lambda x, k: jnp.sin(fn(x, k)).sum(), argnums=(0, 1)))
  jax.block_until_ready(f(x, k))
  best = float("inf")
  for _ in range(rounds):
    t = time.perf_counter()
    for _ in range(repeats):
      out = f(x, k)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - t) / repeats * 1e3)
  return best


def few_output_layers():
  """The decoders' last layer (3x3, stride 1, SAME, 32 -> 1): XLA's conv vs conv_few_outputs."""
  pads = ((1, 1), (1, 1))
  fns = (("XLA conv", lambda x, k: _conv(x, k, (1, 1), pads)),
         ("conv_few_outputs", lambda x, k: conv_few_outputs(x, k, pads)))
  rng = np.random.default_rng(0)
  for name, shape in (("VAE/AE output 32->1 @28px, batch 32", (32, 28, 28, 32)),
                      ("CVAE output 32->1 @42px, batch 64", (64, 42, 42, 32))):
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, 32, 1)) * 0.1, jnp.float32)
    times = {n: bench(f, x, k, repeats=20, rounds=5) for n, f in fns}
    print(f"{name}: " + ", ".join(f"{n} {t:.2f} ms" for n, t in times.items())
          + f"; conv_few_outputs is {times['XLA conv'] / times['conv_few_outputs']:.1f}x XLA")


def strided_layers():
  """4x4 stride-2 generator layers: native vs one conv to s*s*C channels vs per phase."""
  layers = {  # name: (batch, H, Cin, Cout), 4x4 stride 2
      "cake G 256->512 @32px, batch 8": (8, 32, 256, 512),
      "cake G 128->256 @16px, batch 8": (8, 16, 128, 256),
      "MNIST DCGAN G 128->64 @7px, batch 128": (128, 7, 128, 64),
  }
  rng = np.random.default_rng(0)
  for name, (b, h, cin, cout) in layers.items():
    x = jnp.asarray(rng.normal(size=(b, h, h, cin)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(4, 4, cin, cout)) * 0.01, jnp.float32)
    times = {n: bench(lambda x, k: f(x, k, (2, 2)), x, k)
             for n, f in (("native", native), ("one conv", single_conv_to_phases),
                          ("per phase", subpixel_conv_transpose))}
    print(f"{name}: " + ", ".join(f"{n} {t:.1f} ms" for n, t in times.items())
          + f"; per phase is {times['native'] / times['per phase']:.1f}x native, "
          f"{times['one conv'] / times['per phase']:.1f}x one conv")


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--layers", choices=("strided", "few", "all"), default="all")
  args = p.parse_args()
  print(f"backend: {jax.default_backend()}, devices: {jax.devices()}")
  if args.layers in ("few", "all"):
    few_output_layers()
  if args.layers in ("strided", "all"):
    strided_layers()


if __name__ == "__main__":
  main()
