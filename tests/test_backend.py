"""`gm.backend.jit`: the CPU compiler option reaches XLA, and the user's XLA_FLAGS win."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm import backend


def _conv(x, k):
  return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.fixture
def fresh_options():
  backend._options.cache_clear()  # pylint: disable=protected-access
  yield
  backend._options.cache_clear()  # pylint: disable=protected-access


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU compiler option")
def test_cpu_convolutions_are_not_handed_to_ynnpack(fresh_options, monkeypatch):
  monkeypatch.delenv("GM_XLA_DEFAULTS", raising=False)
  monkeypatch.setenv("XLA_FLAGS", "")
  x, k = jnp.ones((2, 12, 12, 32)), jnp.ones((5, 5, 32, 64))
  assert backend.compiler_options() == backend.CPU_OPTIONS
  ours = backend.jit(_conv).lower(x, k).compile().as_text()
  assert "convolution(" in ours and "__ynn_fusion" not in ours
  np.testing.assert_allclose(backend.jit(_conv)(x, k), jax.jit(_conv)(x, k), rtol=1e-5)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="off CPU there is no option to turn off")
def test_users_xla_flags_and_gm_xla_defaults_turn_it_off(fresh_options, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=+eltwise")
  assert backend.compiler_options() is None
  backend._options.cache_clear()  # pylint: disable=protected-access
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("GM_XLA_DEFAULTS", "1")
  assert backend.compiler_options() is None
  f = backend.jit(lambda x: x * 2)
  assert float(f(jnp.float32(3))) == 6.0
