"""Shared layers.

`ConvTranspose` is a drop-in for `flax.linen.ConvTranspose` (same parameter
names and shapes, same outputs) that can compute a strided transposed conv by
sub-pixel decomposition: one stride-1 conv per output phase, interleaved.
XLA:CPU runs strided transposed convs 10-40x slower than convs (see the
README's performance notes); on GPUs the native lowering is kept.
"""

from typing import Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gm.errors import ConfigError


def _same_pad_before(kernel: int, stride: int) -> int:
  """Left padding that `lax.conv_transpose(..., padding='SAME')` applies."""
  pad_len = kernel + stride - 2
  return kernel - 1 if stride > kernel - 1 else int(np.ceil(pad_len / 2))


def _subpixel_taps(kernel: int, stride: int) -> Tuple[np.ndarray, np.ndarray, int]:
  """Tap table of a 1-D SAME transposed conv, split by output phase.

  Output o = stride*m + p reads input m + d through kernel tap
  k = stride*d + pad - p. Returns (taps [D, stride], valid [D, stride], d_min)
  for the offsets d = d_min .. d_min + D - 1.
  """
  pad = _same_pad_before(kernel, stride)
  offsets = {}
  for p in range(stride):
    for k in range(kernel):
      if (p + k - pad) % stride == 0:
        offsets[(p + k - pad) // stride, p] = k
  d_min = min(d for d, _ in offsets)
  d_max = max(d for d, _ in offsets)
  taps = np.zeros((d_max - d_min + 1, stride), np.int32)
  valid = np.zeros_like(taps, dtype=bool)
  for (d, p), k in offsets.items():
    taps[d - d_min, p] = k
    valid[d - d_min, p] = True
  return taps, valid, d_min


def subpixel_conv_transpose(x: jnp.ndarray, kernel: jnp.ndarray,
                            strides: Sequence[int]) -> jnp.ndarray:
  """Equals `lax.conv_transpose(x, kernel, strides, 'SAME')` (NHWC, HWIO).

  Sub-pixel decomposition: output pixel (s*m + p) only sees the kernel taps of
  phase p, so each of the sh*sw output phases is a stride-1 conv of x with its
  own small kernel (e.g. 2x2 of a 4x4 stride-2 kernel), and the phases are
  interleaved. Same FLOPs as the transposed conv, no zero-dilated input; on
  XLA:CPU 2-8x faster than the native lowering and than a single conv to
  sh*sw*C channels (which wastes the taps one phase does not use).

  Args:
    x: [B, H, W, Cin].
    kernel: [kh, kw, Cin, Cout], in `nn.ConvTranspose` layout.
    strides: (sh, sw).

  Returns:
    [B, H*sh, W*sw, Cout].
  """
  kh, kw, _, _ = kernel.shape
  sh, sw = strides
  th, vh, dh = _subpixel_taps(kh, sh)
  tw, vw, dw = _subpixel_taps(kw, sw)
  b, h, w, _ = x.shape
  rows = []
  for p in range(sh):
    ip = np.nonzero(vh[:, p])[0]  # offsets of this row phase with a tap
    cols = []
    for q in range(sw):
      iq = np.nonzero(vw[:, q])[0]
      k = kernel[th[ip, p][:, None], tw[iq, q][None, :]]  # [nh, nw, Cin, Cout]
      # Output m of this phase reads inputs m + d for d in [lo, hi]: pad (or crop) x so that
      # a VALID stride-1 conv does exactly that.
      (lo_h, hi_h), (lo_w, hi_w) = (ip[0] + dh, ip[-1] + dh), (iq[0] + dw, iq[-1] + dw)
      xs = x[:, max(lo_h, 0):, max(lo_w, 0):]
      y = jax.lax.conv_general_dilated(
          xs, k.astype(x.dtype), window_strides=(1, 1),
          padding=[(max(-lo_h, 0), max(hi_h, 0)), (max(-lo_w, 0), max(hi_w, 0))],
          dimension_numbers=("NHWC", "HWIO", "NHWC"))
      cols.append(y[:, :h, :w])
    rows.append(jnp.stack(cols, 3))  # [B, H, W, sw, Cout]
  y = jnp.stack(rows, 2)  # [B, H, sh, W, sw, Cout]
  return y.reshape(b, h * sh, w * sw, y.shape[-1])


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
  """2x2 max pooling, stride 2, VALID: [B, H, W, C] -> [B, H//2, W//2, C].

  Written as a reshape and a max so that its gradient is a cheap select; XLA:CPU
  runs the `select_and_scatter` of `nn.max_pool`'s gradient ~4x slower.
  """
  b, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def resolve_impl(impl: str) -> str:
  """'auto' -> 'subpixel' on CPU, 'native' elsewhere."""
  if impl == "auto":
    return "subpixel" if jax.default_backend() == "cpu" else "native"
  if impl not in ("native", "subpixel"):
    raise ConfigError(f"unknown conv_transpose impl {impl!r}; valid: auto, native, subpixel")
  return impl


class ConvTranspose(nn.Module):
  """`nn.ConvTranspose` with padding 'SAME' and a selectable lowering.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: (sh, sw).
    impl: 'auto', 'native' or 'subpixel' (see `resolve_impl`).
  """
  features: int
  kernel_size: Tuple[int, int]
  strides: Tuple[int, int] = (1, 1)
  use_bias: bool = True
  impl: str = "auto"
  dtype: jnp.dtype = None
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features))
    dtype = self.dtype or x.dtype
    if resolve_impl(self.impl) == "subpixel" and tuple(self.strides) != (1, 1):
      y = subpixel_conv_transpose(x.astype(dtype), kernel.astype(dtype), self.strides)
    else:
      y = jax.lax.conv_transpose(x.astype(dtype), kernel.astype(dtype), self.strides,
                                 "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(dtype)
    return y
