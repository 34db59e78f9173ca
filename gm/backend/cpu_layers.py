"""XLA:CPU lowerings of convolution, transposed convolution and pooling layers.

Imported only by the runtime policy (`gm.backend.runtime`), its tests and the
benchmarks: models declare their layers as `ModuleDef` fields defaulting to
Flax's, and on CPUs `gm.backend.runtime` passes these instead. `gm` compiles
convolutions to Eigen there (`gm.backend.runtime.compiler_options`); the lowerings here
are tuned for that (docs/benchmarks.md).

`ConvTranspose` is a drop-in for `flax.linen.ConvTranspose` (same parameter
names and shapes, same outputs) that can compute a strided transposed conv by
sub-pixel decomposition: one stride-1 conv per output phase, interleaved.
XLA:CPU runs strided transposed convs 10-40x slower than convs.

`Conv` is a drop-in for `flax.linen.Conv` whose gradients can take the CPU
paths below. Every lowering gives the same numbers up to float rounding.

`tap_scatter` computes a layer with few outputs (an image's last conv or
transposed conv, and the input gradient of an image's first conv) as one
matmul to every kernel tap's map and a shifted sum; its backward pass stacks
the output gradient tap-major (`tap_planes`). A transposed conv whose kernel
equals its stride (the CVAE's 3x3 stride 3) is one matmul and a depth-to-space.
"""

import functools
from typing import Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm.backend.cpu_subpixel import (  # noqa: F401  (benchmarks use the private ones)
    _DN, Padding, _conv, _same_pad_before, _subpixel_phases, _subpixel_taps,
    subpixel_conv_transpose, transpose_offsets)
from gm.errors import ConfigError


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_tap_input_grad(x: jnp.ndarray, kernel: jnp.ndarray, strides: Tuple[int, int],
                        padding: Padding) -> jnp.ndarray:
  """`lax.conv_general_dilated` (NHWC, HWIO) whose input gradient is `tap_scatter`.

  For an image's first conv (few input channels), the input gradient is a conv to
  few outputs, which `tap_scatter` computes faster than XLA:CPU (docs/benchmarks.md,
  notes); the kernel gradient stays XLA's own. Inputs whose size the stride does
  not divide fall back to XLA's input gradient.
  """
  return _conv(x, kernel, strides, padding)


def _conv_fwd(x, kernel, strides, padding):
  return _conv(x, kernel, strides, padding), (x, kernel)


def _conv_bwd(strides, padding, res, dy):
  x, kernel = res
  kh, kw, _, _ = kernel.shape
  (h, w), (sh, sw) = x.shape[1:3], strides
  if h % sh or w % sw:
    return jax.vjp(lambda x, k: _conv(x, k, strides, padding), x, kernel)[1](dy)
  offsets = (tuple(k - padding[0][0] for k in range(kh)),
             tuple(k - padding[1][0] for k in range(kw)))
  dx = tap_scatter(dy, kernel.transpose(0, 1, 3, 2), strides, offsets, (h, w))
  dk = jax.vjp(lambda k: _conv(x, k, strides, padding), kernel)[1](dy)[0]
  return dx.astype(x.dtype), dk


conv_tap_input_grad.defvjp(_conv_fwd, _conv_bwd)


def _tap_matrix(kernel: jnp.ndarray) -> jnp.ndarray:
  """[kh, kw, Cin, Cout] -> [kh*kw*Cout, Cin]: every tap's weights, one row per (tap, output)."""
  kh, kw, cin, cout = kernel.shape
  return kernel.reshape(kh * kw, cin, cout).transpose(0, 2, 1).reshape(kh * kw * cout, cin)


def _shifted(t: jnp.ndarray, dh: int, dw: int, mh: int, mw: int) -> jnp.ndarray:
  """[..., H, W] -> [..., mh, mw] with out[r, c] = t[r - dh, c - dw], zero outside t."""
  h, w = t.shape[-2:]
  cfg = [(0, 0, 0)] * (t.ndim - 2) + [(dh, mh - h - dh, 0), (dw, mw - w - dw, 0)]
  return jax.lax.pad(t, jnp.zeros((), t.dtype), cfg)


Offsets = Tuple[Tuple[int, ...], Tuple[int, ...]]


def tap_planes(dy: jnp.ndarray, strides: Tuple[int, int], offsets: Offsets,
               in_hw: Tuple[int, int]) -> jnp.ndarray:
  """The output gradient each kernel tap's map sees, tap-major: [kh*kw*Cout, B*H*W].

  For a layer whose tap k sends input pixel i to output pixel s*i + c_k (see
  `tap_scatter`), row block k holds dy[s*i + c_k] for every input pixel i, zero
  where that falls outside dy. Its product with the input [B*H*W, Cin] is the
  kernel gradient, a plain matmul with no transposed copy of a patch matrix.

  Args:
    dy: [B, Ho, Wo, Cout], Ho and Wo divisible by the strides.
    strides: (sh, sw).
    offsets: (c_h [kh], c_w [kw]).
    in_hw: (H, W) of the layer's input.
  """
  cout = dy.shape[3]
  (sh, sw), (ch, cw), (h, w) = strides, offsets, in_hw
  dyt = dy.transpose(3, 0, 1, 2)  # [Cout, B, Ho, Wo]
  phase = lambda p, q: dyt[:, :, p::sh, q::sw]  # output pixels s*m + p: [Cout, B, Ho/sh, Wo/sw]
  dz = jnp.stack([_shifted(phase(ci % sh, cj % sw), -(ci // sh), -(cj // sw), h, w)
                  for ci in ch for cj in cw])  # [kh*kw, Cout, B, H, W]
  return dz.reshape(len(ch) * len(cw) * cout, -1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def tap_scatter(x: jnp.ndarray, kernel: jnp.ndarray, strides: Tuple[int, int], offsets: Offsets,
                out_hw: Tuple[int, int]) -> jnp.ndarray:
  """y[s*i + c_k] += x[i] @ kernel[k] over the kernel taps k: a conv layer with few outputs.

  Contracts the channels first: one matmul gives every tap's output map of the
  unpadded input, tap-major [kh*kw, Cout, B, H, W], and each output phase is
  the sum of its taps' maps, shifted. The backward pass stacks the shifted
  output gradients once (`tap_planes`); one matmul gives the input gradient and
  one the kernel gradient. Only the few-channel maps are padded, sliced and
  stacked; the wide input is read by two matmuls and its gradient written by
  one. On XLA:CPU that is ~1.5-3x faster than its convolutions when
  kh*kw*Cout <= Cin (e.g. 3x3, 32 -> 1). With the right offsets it is
  - a stride-1 conv padded (top, left): s = 1, c_k = top - k (`conv_few_outputs`);
  - a 'SAME' transposed conv (`ConvTranspose`): c_k = pad - k;
  - the input gradient of a conv with few inputs: the kernel transposed, c_k = k - top.

  Args:
    x: [B, H, W, Cin].
    kernel: [kh, kw, Cin, Cout].
    strides: (sh, sw).
    offsets: (c_h [kh], c_w [kw]), tap k's output offset per dimension.
    out_hw: (Ho, Wo), divisible by the strides.

  Returns:
    [B, Ho, Wo, Cout].
  """
  return _tap_scatter_fwd(x, kernel, strides, offsets, out_hw)[0]


def _tap_scatter_fwd(x, kernel, strides, offsets, out_hw):
  kh, kw, cin, cout = kernel.shape
  b, h, w, _ = x.shape
  (sh, sw), (ch, cw), (ho, wo) = strides, offsets, out_hw
  mh, mw = ho // sh, wo // sw
  z = jnp.einsum("tc,nc->tn", _tap_matrix(kernel), x.reshape(-1, cin))  # [kh*kw*Cout, B*H*W]
  z = z.reshape(kh, kw, cout, b, h, w)
  phases = []
  for p in range(sh):
    for q in range(sw):
      terms = [_shifted(z[i, j], (ch[i] - p) // sh, (cw[j] - q) // sw, mh, mw)
               for i in range(kh) if (ch[i] - p) % sh == 0
               for j in range(kw) if (cw[j] - q) % sw == 0]
      phases.append(sum(terms) if terms else jnp.zeros((cout, b, mh, mw), z.dtype))
  y = jnp.stack(phases).reshape(sh, sw, cout, b, mh, mw)
  return y.transpose(3, 4, 0, 5, 1, 2).reshape(b, ho, wo, cout), (x, kernel)


def _tap_scatter_bwd(strides, offsets, out_hw, res, dy):
  del out_hw
  x, kernel = res
  kh, kw, cin, cout = kernel.shape
  dz = tap_planes(dy, strides, offsets, x.shape[1:3])  # [kh*kw*Cout, B*H*W]
  dx = jnp.einsum("tn,tc->nc", dz, _tap_matrix(kernel).astype(dz.dtype)).reshape(x.shape)
  dt = jnp.einsum("tn,nc->tc", dz, x.reshape(-1, cin), preferred_element_type=jnp.float32)
  dk = dt.reshape(kh * kw, cout, cin).transpose(0, 2, 1).reshape(kernel.shape)
  return dx, dk.astype(kernel.dtype)


tap_scatter.defvjp(_tap_scatter_fwd, _tap_scatter_bwd)


def conv_few_outputs(x: jnp.ndarray, kernel: jnp.ndarray, padding: Padding) -> jnp.ndarray:
  """Stride-1 conv (NHWC, HWIO) for layers with few outputs, such as an image's last conv.

  `tap_scatter` with offsets c_k = top - k: output o reads input o + k - top.
  """
  kh, kw = kernel.shape[:2]
  (pt, pb), (pl, pr) = padding
  out_hw = (x.shape[1] + pt + pb - kh + 1, x.shape[2] + pl + pr - kw + 1)
  offsets = (tuple(pt - k for k in range(kh)), tuple(pl - k for k in range(kw)))
  return tap_scatter(x, kernel, (1, 1), offsets, out_hw)


def few_outputs(kh: int, kw: int, cin: int, cout: int) -> bool:
  """Whether `tap_scatter` beats XLA:CPU's conv: few outputs, and no more tap maps than inputs."""
  return cout < 8 and kh * kw * cout <= cin


def conv2d(x: jnp.ndarray, kernel: jnp.ndarray, strides: Sequence[int],
           padding: Union[str, Padding], impl: str = "auto") -> jnp.ndarray:
  """2-D conv, NHWC x HWIO, 'SAME' / 'VALID' / explicit padding, with a selectable gradient.

  impl: 'native' (XLA's gradient), 'tap_input_grad' (`conv_tap_input_grad`),
  'few_outputs' (`conv_few_outputs`, stride 1 only) or 'auto', which picks
  'few_outputs' for stride-1 layers with few outputs (`few_outputs`, e.g. the
  cake generators' 5x5 conv to RGB), 'tap_input_grad' for an image's first conv
  (its input gradient has few outputs), and 'native' elsewhere (measured on
  XLA:CPU; this module is only used there unless `runtime.layers` says so).
  """
  strides = tuple(strides)
  if isinstance(padding, str):
    padding = tuple(jax.lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides, padding))
  padding = tuple(tuple(int(v) for v in p) for p in padding)
  kh, kw, cin, cout = kernel.shape
  nonneg_pad = min(map(min, padding)) >= 0  # The tap_scatter paths need it.
  if impl == "auto":  # Measured on XLA:CPU (see docs/benchmarks.md).
    tap_ok = nonneg_pad
    if tap_ok and strides == (1, 1) and few_outputs(kh, kw, cin, cout):
      impl = "few_outputs"
    elif tap_ok and few_outputs(kh, kw, cout, cin):
      impl = "tap_input_grad"
    else:
      impl = "native"
  if impl == "tap_input_grad":
    if not nonneg_pad:
      raise ConfigError("conv impl 'tap_input_grad' needs non-negative padding")
    return conv_tap_input_grad(x, kernel, strides, padding)
  if impl == "few_outputs":
    if strides != (1, 1) or not nonneg_pad:
      raise ConfigError("conv impl 'few_outputs' needs stride 1 and non-negative padding")
    return conv_few_outputs(x, kernel, padding)
  if impl != "native":
    raise ConfigError(f"unknown conv impl {impl!r}; valid: auto, native, tap_input_grad, "
                      "few_outputs")
  return _conv(x, kernel, strides, padding)


class Conv(nn.Module):
  """`nn.Conv` (same parameter names and shapes) computed by `conv2d`.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: (sh, sw).
    padding: 'SAME', 'VALID' or ((top, bottom), (left, right)).
    impl: gradient lowering (see `conv2d`).
  """
  features: int
  kernel_size: Tuple[int, int]
  strides: Tuple[int, int] = (1, 1)
  padding: Union[str, Padding] = "SAME"
  use_bias: bool = True
  impl: str = "auto"
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features))
    y = conv2d(x, kernel.astype(x.dtype), self.strides, self.padding, self.impl)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(y.dtype)
    return y


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
  """2x2 max pooling, stride 2, VALID: [B, H, W, C] -> [B, H//2, W//2, C].

  Written as a reshape and a max so that its gradient is a cheap select; XLA:CPU
  runs the `select_and_scatter` of `nn.max_pool`'s gradient ~4x slower.
  """
  b, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


CONV_TRANSPOSE_IMPLS = ("native", "subpixel")


def check_impl(impl: str) -> str:
  """`impl` if it names a transposed-conv lowering, else a ConfigError listing them."""
  if impl not in CONV_TRANSPOSE_IMPLS:
    raise ConfigError(f"unknown conv_transpose impl {impl!r}; valid: auto, "
                      f"{', '.join(CONV_TRANSPOSE_IMPLS)}")
  return impl


class ConvTranspose(nn.Module):
  """`nn.ConvTranspose` with padding 'SAME' and a selectable lowering.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: (sh, sw).
    impl: 'subpixel' (sub-pixel phases, or `tap_scatter` for few outputs) or
      'native' (`lax.conv_transpose`, as `nn.ConvTranspose`).
  """
  features: int
  kernel_size: Tuple[int, int]
  strides: Tuple[int, int] = (1, 1)
  use_bias: bool = True
  impl: str = "subpixel"
  dtype: jnp.dtype = None
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features))
    dtype = self.dtype or x.dtype
    kh, kw, cin, cout = kernel.shape
    subpixel = check_impl(self.impl) == "subpixel"
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    (sh, sw), (h, w) = self.strides, x.shape[1:3]
    if subpixel and few_outputs(kh, kw, cin, cout):
      # Few outputs (an image's last layer): one matmul to every tap's map, then a shifted sum.
      offsets = (transpose_offsets(kh, sh), transpose_offsets(kw, sw))
      y = tap_scatter(x, kernel, (sh, sw), offsets, (h * sh, w * sw))
    elif subpixel and (sh, sw) != (1, 1):
      y = subpixel_conv_transpose(x, kernel, (sh, sw))
    else:
      # Stride 1 with many outputs: the native transposed conv is as fast as any lowering tried.
      y = jax.lax.conv_transpose(x, kernel, self.strides, "SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(dtype)
    return y
