"""Shared layers.

`ConvTranspose` is a drop-in for `flax.linen.ConvTranspose` (same parameter
names and shapes, same outputs) that can compute a strided transposed conv as a
stride-1 conv to s*s*C channels followed by depth-to-space (sub-pixel
convolution). XLA:CPU runs strided transposed convs 10-40x slower than convs
(see the README's performance notes); on GPUs the native lowering is kept.
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

  Args:
    x: [B, H, W, Cin].
    kernel: [kh, kw, Cin, Cout], in `nn.ConvTranspose` layout.
    strides: (sh, sw).

  Returns:
    [B, H*sh, W*sw, Cout].
  """
  kh, kw, cin, cout = kernel.shape
  sh, sw = strides
  th, vh, dh = _subpixel_taps(kh, sh)
  tw, vw, dw = _subpixel_taps(kw, sw)
  # Gather a stride-1 kernel [Dh, Dw, Cin, sh, sw, Cout] from the taps.
  k = kernel[th[:, None, :, None], tw[None, :, None, :]]  # [Dh, Dw, sh, sw, Cin, Cout]
  mask = (vh[:, None, :, None] & vw[None, :, None, :])[..., None, None]
  k = jnp.where(mask, k, 0).transpose(0, 1, 4, 2, 3, 5)
  k = k.reshape(k.shape[0], k.shape[1], cin, sh * sw * cout)
  pads = [(-dh, dh + k.shape[0] - 1), (-dw, dw + k.shape[1] - 1)]
  pads = [(max(a, 0), max(b, 0)) for a, b in pads]
  # Offsets d >= 0 everywhere would need cropping instead of padding; SAME
  # transposed convs always have d_min <= 0 <= d_max, checked here.
  assert dh <= 0 <= dh + k.shape[0] - 1 and dw <= 0 <= dw + k.shape[1] - 1
  y = jax.lax.conv_general_dilated(
      x, k.astype(x.dtype), window_strides=(1, 1), padding=pads,
      dimension_numbers=("NHWC", "HWIO", "NHWC"))  # [B, H, W, sh*sw*Cout]
  b, h, w, _ = y.shape
  y = y.reshape(b, h, w, sh, sw, cout).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, h * sh, w * sw, cout)


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
