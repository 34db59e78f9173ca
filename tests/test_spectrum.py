"""The checkerboard test: power at the upsampling grid's frequencies against its neighbours."""

import numpy as np

from gm.metrics import spectrum


def _smooth_images(n=64, size=32, seed=0):
  """Low-pass random images [N, H, W, 3]: a smooth spectrum with no grid peaks."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, size, size, 3))
  k = np.fft.fftfreq(size)
  gain = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / 0.02)
  return np.real(np.fft.ifft2(np.fft.fft2(x, axes=(1, 2)) * gain[None, :, :, None], axes=(1, 2)))


def test_power_spectrum_is_normalised_and_matches_a_direct_dft():
  x = _smooth_images(n=3, size=8)
  s = spectrum.power_spectrum(x)
  assert s.shape == (8, 8) and np.isclose(s.sum(), 1.0)
  # An independent DFT by the definition, sum over pixels of g * exp(-2 pi i (ky y / H + kx x / W)).
  g = x.mean(-1)
  g = (g - g.mean(axis=(1, 2), keepdims=True)) * np.outer(np.hanning(8), np.hanning(8))
  yy, xx = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
  direct = np.zeros((8, 8))
  for ky in range(8):
    for kx in range(8):
      basis = np.exp(-2j * np.pi * (ky * yy + kx * xx) / 8)
      direct[ky, kx] = np.mean([abs((img * basis).sum()) ** 2 for img in g])
  np.testing.assert_allclose(s, direct / direct.sum(), rtol=1e-9, atol=1e-15)


def test_a_checkerboard_shows_at_its_period_and_smooth_images_do_not():
  smooth = _smooth_images()
  clean = spectrum.grid_peaks(spectrum.power_spectrum(smooth))
  assert set(clean) == {"period_2", "period_4", "period_8"}
  assert all(0.1 < v < 3 for v in clean.values()), clean  # falling spectrum: <= ~1
  yy, xx = np.mgrid[:32, :32]
  board = 0.05 * np.where((yy + xx) % 2, 1.0, -1.0)          # period 2 in both directions
  bumps = 0.05 * np.cos(2 * np.pi * xx / 4)                  # period 4 along x
  hit = spectrum.grid_peaks(spectrum.power_spectrum(smooth + (board + bumps)[None, :, :, None]))
  assert hit["period_2"] > 20 * clean["period_2"] and hit["period_4"] > 20 * clean["period_4"]
  assert hit["period_8"] < 3


def test_radial_profile_averages_rings():
  s = np.zeros((8, 8))
  s[0, 2] = s[2, 0] = 1.0  # two of the points at radius 2
  prof = spectrum.radial_profile(s)
  ring2 = np.rint(np.hypot(*np.meshgrid(np.fft.fftfreq(8) * 8, np.fft.fftfreq(8) * 8))) == 2
  assert len(prof) == 5 and np.isclose(prof[2], 2 / ring2.sum()) and prof[1] == 0
