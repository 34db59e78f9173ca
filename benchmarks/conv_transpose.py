r"""Transposed-conv lowerings on this machine: native, one conv to s*s*C channels, per-phase.

  python benchmarks/conv_transpose.py

Prints fwd+bwd ms per call for the layers of the seeds' generators and the ratios
against the native lowering, all measured in this process.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gm.models.layers import _subpixel_taps, subpixel_conv_transpose  # noqa: E402


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


def bench(fn, x, k, repeats=3):
  f = jax.jit(jax.grad(lambda x, k: fn(x, k, (2, 2)).sum(), argnums=(0, 1)))
  jax.block_until_ready(f(x, k))
  t = time.perf_counter()
  for _ in range(repeats):
    out = f(x, k)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / repeats * 1e3


def main():
  print(f"backend: {jax.default_backend()}, devices: {jax.devices()}")
  layers = {  # name: (batch, H, Cin, Cout), 4x4 stride 2
      "cake G 256->512 @32px, batch 8": (8, 32, 256, 512),
      "cake G 128->256 @16px, batch 8": (8, 16, 128, 256),
      "MNIST DCGAN G 128->64 @7px, batch 128": (128, 7, 128, 64),
  }
  rng = np.random.default_rng(0)
  for name, (b, h, cin, cout) in layers.items():
    x = jnp.asarray(rng.normal(size=(b, h, h, cin)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(4, 4, cin, cout)) * 0.01, jnp.float32)
    times = {n: bench(f, x, k) for n, f in (("native", native), ("one conv", single_conv_to_phases),
                                           ("per phase", subpixel_conv_transpose))}
    print(f"{name}: " + ", ".join(f"{n} {t:.1f} ms" for n, t in times.items())
          + f"; per phase is {times['native'] / times['per phase']:.1f}x native, "
          f"{times['one conv'] / times['per phase']:.1f}x one conv")


if __name__ == "__main__":
  main()
