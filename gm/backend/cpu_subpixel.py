"""XLA:CPU lowering of strided transposed convolutions by sub-pixel decomposition.

Part of the CPU layers module (which re-exports these); imported only through it.
"""

from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np


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


def transpose_offsets(kernel: int, stride: int) -> Tuple[int, ...]:
  """Output offset of each tap of a 1-D 'SAME' transposed conv: input i reaches s*i + pad - k."""
  pad = _same_pad_before(kernel, stride)
  return tuple(pad - k for k in range(kernel))


def subpixel_conv_transpose(x: jnp.ndarray, kernel: jnp.ndarray,
                            strides: Sequence[int]) -> jnp.ndarray:
  """Equals `lax.conv_transpose(x, kernel, strides, 'SAME')` (NHWC, HWIO).

  Sub-pixel decomposition: output pixel (s*m + p) only sees the kernel taps of
  phase p, so each of the sh*sw output phases is a stride-1 conv of x with its
  own small kernel (e.g. 2x2 of a 4x4 stride-2 kernel), and the phases are
  interleaved. Same FLOPs as the transposed conv, no zero-dilated input; on
  XLA:CPU 2-8x faster than the native lowering and than a single conv to
  sh*sw*C channels (which wastes the taps one phase does not use).

  Gradients are XLA's, phase by phase. A kernel equal to the stride is one
  matmul and a depth-to-space, differentiated by XLA.

  Args:
    x: [B, H, W, Cin].
    kernel: [kh, kw, Cin, Cout], in `nn.ConvTranspose` layout.
    strides: (sh, sw).

  Returns:
    [B, H*sh, W*sw, Cout].
  """
  kh, kw, cin, cout = kernel.shape
  strides = tuple(strides)
  if (kh, kw) == strides:
    # Every output pixel sees one tap of one input pixel: the layer is one matmul
    # [B*H*W, Cin] x [Cin, sh*sw*Cout] and a depth-to-space.
    b, h, w, _ = x.shape
    th, tw = (_subpixel_taps(k, s)[0][0] for k, s in zip((kh, kw), strides))
    k = kernel[th[:, None], tw[None, :]]  # [sh, sw, Cin, Cout]
    y = jnp.einsum("bhwc,pqco->bhpwqo", x, k.astype(x.dtype))
    return y.reshape(b, h * strides[0], w * strides[1], cout)
  return _subpixel_phases(x, kernel, strides)


def _subpixel_phases(x: jnp.ndarray, kernel: jnp.ndarray,
                     strides: Tuple[int, int]) -> jnp.ndarray:
  """The phases of `subpixel_conv_transpose`: one stride-1 XLA conv each."""
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
      y = _conv(xs, k.astype(x.dtype), (1, 1),
                ((max(-lo_h, 0), max(hi_h, 0)), (max(-lo_w, 0), max(hi_w, 0))))
      cols.append(y[:, :h, :w])
    rows.append(jnp.stack(cols, 3))  # [B, H, W, sw, Cout]
  y = jnp.stack(rows, 2)  # [B, H, sh, W, sw, Cout]
  return y.reshape(b, h * sh, w * sw, y.shape[-1])


Padding = Tuple[Tuple[int, int], Tuple[int, int]]
_DN = ("NHWC", "HWIO", "NHWC")


def _conv(x, kernel, strides, padding: Padding):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DN)
