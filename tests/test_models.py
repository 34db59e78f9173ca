"""Layer equivalences, shapes and exact parameter counts."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm import families

from gm.backend.cpu_layers import Conv, ConvTranspose, conv2d
from tests.conftest import load_config


@pytest.mark.parametrize("kernel,stride,size", [(3, 2, 7), (4, 2, 8), (5, 2, 7), (4, 3, 5),
                                                (2, 2, 3), (5, 1, 6), (3, 3, 5)])
def test_subpixel_conv_transpose_equals_flax(kernel, stride, size):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size + 1, 3))
  ref = nn.ConvTranspose(4, (kernel, kernel), (stride, stride), padding="SAME")
  params = ref.init(jax.random.PRNGKey(1), x)
  ours = ConvTranspose(4, (kernel, kernel), (stride, stride), impl="subpixel")
  # Same parameter tree, so checkpoints and counts do not depend on the lowering.
  assert jax.tree.structure(ours.init(jax.random.PRNGKey(1), x)) == jax.tree.structure(params)
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-5)
  native = ConvTranspose(4, (kernel, kernel), (stride, stride), impl="native")
  np.testing.assert_allclose(native.apply(params, x), ref.apply(params, x), atol=1e-5)


@functools.lru_cache(maxsize=None)
def _printed_words_checked() -> bool:
  """The words the lowering tests look for are still how JAX prints a jaxpr.

  Those tests read printed jaxprs (JAX's text, not an API): a plain convolution
  prints as `conv_general_dilated`, a matmul as `dot_general`, and a `jax.custom_vjp`
  function as `custom_vjp_call` with its name. If JAX prints them otherwise, a check
  that a word is absent would pass without checking anything: fail here instead.
  """
  conv = str(jax.make_jaxpr(lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "VALID"))(
      jnp.zeros((1, 1, 4, 4)), jnp.zeros((1, 1, 2, 2))))
  matmul = str(jax.make_jaxpr(jnp.dot)(jnp.zeros((2, 3)), jnp.zeros((3, 2))))

  @jax.custom_vjp
  def probe_rule(x):
    return 2 * x

  probe_rule.defvjp(lambda x: (2 * x, None), lambda _, g: (2 * g,))
  custom = str(jax.make_jaxpr(probe_rule)(1.0))
  assert "conv_general_dilated" in conv and "dot_general" in matmul, (conv, matmul)
  assert "custom_vjp" in custom and "probe_rule" in custom, (
      f"JAX prints custom_vjp functions differently now; update these tests:\n{custom}")
  return True


def _jaxpr(fn, *args) -> str:
  """`fn`'s printed jaxpr, once the words the tests look for are known to be printed."""
  assert _printed_words_checked()
  return str(jax.make_jaxpr(fn)(*args))


@pytest.mark.parametrize("x_shape,k_shape,strides,padding", [
    ((3, 28, 28, 1), (5, 5, 1, 32), (1, 1), "VALID"),           # DCGAN-MNIST D, first conv
    ((2, 42, 42, 1), (3, 3, 1, 8), (3, 3), "SAME"),             # CVAE encoder, stride 3
    ((2, 16, 15, 8), (4, 4, 8, 16), (2, 2), "SAME"),            # odd width: XLA's input grad
    ((2, 9, 9, 3), (3, 3, 3, 5), (1, 1), ((2, 0), (1, 3))),     # asymmetric (sub-pixel phases)
    ((2, 16, 16, 3), (4, 4, 3, 64), (2, 2), "SAME"),            # cake D's 1st conv: tap_scatter dx
])
def test_conv_tap_input_gradient_equals_xla(x_shape, k_shape, strides, padding):
  """The first-conv CPU lowering (tap_scatter input gradient) gives XLA's gradients."""
  x = jax.random.normal(jax.random.PRNGKey(0), x_shape)
  k = jax.random.normal(jax.random.PRNGKey(1), k_shape)
  grads = {impl: jax.grad(lambda x, k: jax.numpy.sum(jax.numpy.sin(conv2d(x, k, strides, padding,
                                                                         impl))), (0, 1))(x, k)
           for impl in ("native", "tap_input_grad")}
  for ours, ref in zip(grads["tap_input_grad"], grads["native"]):
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * float(abs(ref).max()))


@pytest.mark.parametrize("shape,cout,kernel,stride,lowering", [
    ((2, 5, 6, 8), 4, 3, 3, "dot_general"),     # kernel == stride (CVAE decoder): one matmul
    ((2, 4, 4, 8), 4, 2, 2, "dot_general"),
    ((4, 9, 10, 16), 1, 3, 1, "tap_scatter"),   # few outputs (an image's last layer)
    ((2, 6, 7, 32), 3, 3, 1, "tap_scatter"),
    ((2, 7, 6, 16), 1, 4, 2, "tap_scatter"),    # few outputs, strided (DCGAN-MNIST G's last layer)
    ((2, 5, 4, 12), 8, 4, 2, "conv_general_dilated"),  # one XLA conv per sub-pixel phase
    ((2, 5, 4, 12), 7, 3, 2, "conv_general_dilated"),
    ((2, 4, 5, 6), 9, 4, 3, "conv_general_dilated"),
])
def test_fast_conv_transpose_paths_equal_flax_with_gradients(shape, cout, kernel, stride, lowering):
  """The CPU fast paths of ConvTranspose are taken and give flax's outputs and gradients."""
  x = jax.random.normal(jax.random.PRNGKey(0), shape)
  ref = nn.ConvTranspose(cout, (kernel, kernel), (stride, stride), padding="SAME")
  params = ref.init(jax.random.PRNGKey(1), x)
  ours = ConvTranspose(cout, (kernel, kernel), (stride, stride), impl="subpixel")
  jaxpr = _jaxpr(ours.apply, params, x)
  assert lowering in jaxpr
  if lowering in ("dot_general", "tap_scatter"):
    assert "conv_general_dilated" not in jaxpr
  else:  # Sub-pixel phases, differentiated by XLA.
    assert "custom_vjp" not in jaxpr and jaxpr.count("conv_general_dilated") == stride ** 2
  loss = lambda m: lambda p, x: jax.numpy.sum(jax.numpy.sin(m.apply(p, x)))
  got, want = (jax.grad(loss(m), (0, 1))(params, x) for m in (ours, ref))
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-5)
  assert len(jax.tree.leaves(got)) == len(jax.tree.leaves(want))
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * float(abs(w).max()))


@pytest.mark.parametrize("padding", [((1, 1), (1, 1)), ((2, 0), (0, 1)), "VALID"])
def test_conv_few_outputs_equals_xla_with_gradients(padding):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 10, 12, 24))
  k = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 24, 2))
  f = lambda impl: lambda x, k: jax.numpy.sum(jax.numpy.cos(conv2d(x, k, (1, 1), padding, impl)))
  np.testing.assert_allclose(conv2d(x, k, (1, 1), padding, "few_outputs"),
                             conv2d(x, k, (1, 1), padding, "native"), rtol=1e-5, atol=1e-4)
  for ours, ref in zip(jax.grad(f("few_outputs"), (0, 1))(x, k), jax.grad(f("native"), (0, 1))(x, k)):
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * float(abs(ref).max()))


@pytest.mark.parametrize("x_shape,k_shape,strides,lowering", [
    ((2, 28, 28, 1), (5, 5, 1, 32), (1, 1), "conv_tap_input_grad"),  # an image's first conv
    ((2, 16, 16, 3), (4, 4, 3, 64), (2, 2), "conv_tap_input_grad"),
    ((2, 12, 12, 32), (5, 5, 32, 64), (1, 1), None),              # XLA's conv and gradient
    ((2, 8, 8, 80), (5, 5, 80, 3), (1, 1), "tap_scatter"),        # few outputs
])
def test_conv2d_auto_picks_the_cpu_lowering(x_shape, k_shape, strides, lowering):
  x, k = jax.numpy.zeros(x_shape), jax.numpy.zeros(k_shape)
  jaxpr = _jaxpr(lambda x, k: conv2d(x, k, strides, "SAME"), x, k)
  if jax.default_backend() != "cpu" or lowering is None:
    assert "custom_vjp" not in jaxpr and "conv_general_dilated" in jaxpr  # XLA's own conv.
  else:
    assert lowering in jaxpr


def test_conv_to_few_outputs_uses_tap_scatter_on_cpu():
  """A stride-1 conv to RGB (the cake generators' last layer) takes the few-outputs path."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 80))
  params = Conv(3, (5, 5)).init(jax.random.PRNGKey(1), x)
  assert "tap_scatter" in _jaxpr(Conv(3, (5, 5)).apply, params, x)
  ref = nn.Conv(3, (5, 5)).apply(params, x)
  np.testing.assert_allclose(Conv(3, (5, 5)).apply(params, x), ref, rtol=1e-5, atol=1e-4)


def test_conv_is_a_drop_in_for_flax_conv():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 3))
  ref = nn.Conv(6, (4, 4), (2, 2), padding="SAME")
  params = ref.init(jax.random.PRNGKey(1), x)
  ours = Conv(6, (4, 4), (2, 2), padding="SAME")
  assert jax.tree.structure(ours.init(jax.random.PRNGKey(1), x)) == jax.tree.structure(params)
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-5)


def _count(tree):
  return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(tree))


@pytest.mark.parametrize("name,expected", [
    # Encoder: conv 1->32 (320) + conv 32->64 (18,496) + dense 2304->4 (9,220) = 28,036.
    # Decoder: dense 2->1568 (4,704) + convT 32->64 (18,496) + convT 64->32 (18,464)
    #          + convT 32->1 (289) = 41,953.
    ("vae_mnist", {"encoder": 28_036, "decoder": 41_953}),
    # The AE's encoder emits 2 numbers instead of 4: dense 2304->2 = 4,610.
    ("ae_mnist", {"encoder": 23_426, "decoder": 41_953}),
    # CVAE (42x42 canvas, condition of 12): the encoder's dense sees 7*7*64 + 12 = 3,148
    # inputs (-> 4: 12,596); the decoder's dense sees 2 + 12 inputs (-> 1568: 23,520).
    ("cvae_mnist", {"encoder": 31_412, "decoder": 60_769}),
])
def test_autoencoder_parameter_counts_and_shapes(name, expected):
  config = load_config(name, "")
  family = families.get(config)
  size = 42 if name == "cvae_mnist" else 28
  batch = {"image": np.zeros((3, size, size, 1), np.uint8), "label": np.zeros(3, np.int32),
           "cond": np.zeros((3, 12), np.float32)}
  state = family.init(jax.random.PRNGKey(0), batch)
  assert {k: _count(v) for k, v in state.params.items()} == expected
  z = np.zeros((3, config.model.latent_dim), np.float32)
  cond = family.cond(batch)
  assert family.decode(state.params, z, cond).shape == (3, size, size, 1)
  codes, _ = family.embed(state.params, family.inputs(batch), cond)
  assert codes.shape == (3, 2)


def test_unknown_family_lists_valid_names():
  config = load_config("vae_mnist")
  config.family = "diffusion"
  with pytest.raises(ValueError, match="valid names: .*vae"):
    families.get(config)
