"""Power spectra of image sets, and the checkerboard test for upsampling generators.

A generator that upsamples by a factor 2 with stride-2 transposed convolutions (kernel
4x4, or any kernel not divisible by the stride, Odena et al. 2016, "Deconvolution and
Checkerboard Artifacts") paints a pattern of period 2 (and, over three such layers,
periods 4 and 8) into its images. In the Fourier domain that is energy at the
frequencies k = (i * H / p, j * W / p) of the upsampling grid, which natural photos do
not concentrate there (Durall et al. 2020; Frank et al. 2020). `grid_peaks` measures it:
the mean power at those frequencies over the mean power of the ring 2 bins around them, for
samples and for photos; photos give about 1, a visible checkerboard several times that.
"""

from typing import Dict, Sequence

import numpy as np


def power_spectrum(images: np.ndarray) -> np.ndarray:
  """Mean 2-D power spectrum [H, W] of images [N, H, W, C] (channels averaged to luminance).

  Each image's mean is removed and a 2-D Hann window applied (so that the border's jump does
  not put a cross through the spectrum); frequencies unshifted (DC at [0, 0]); normalised
  to total power 1 so that sets of different contrast compare.
  """
  x = np.asarray(images, np.float64)
  if x.ndim != 4:
    raise ValueError(f"images must be [N, H, W, C]; got shape {x.shape}")
  gray = x.mean(axis=-1)                                   # [N, H, W]
  gray = gray - gray.mean(axis=(1, 2), keepdims=True)
  h, w = gray.shape[1:]
  window = np.outer(np.hanning(h), np.hanning(w))          # [H, W]
  power = np.abs(np.fft.fft2(gray * window)) ** 2          # [N, H, W]
  mean = power.mean(axis=0)
  return mean / max(mean.sum(), 1e-30)


def grid_frequencies(h: int, w: int, period: int):
  """The non-zero frequencies (ky, kx) of a pattern of `period` px: multiples of (H/p, W/p)."""
  if h % period or w % period:
    return []
  return [(i * h // period, j * w // period) for i in range(period) for j in range(period)
          if (i, j) != (0, 0)]


def grid_peaks(spectrum: np.ndarray, periods: Sequence[int] = (2, 4, 8)) -> Dict[str, float]:
  """{'period_<p>': mean power at the grid frequencies of period p (those not on a finer
  period's grid) / mean power of the 16 frequencies 2 bins away (periodic; the Hann window
  spreads a pure tone over the 1-bin neighbours, not further)}; about 1 or below (a spectrum
  falling with frequency) without a pattern of that period."""
  h, w = spectrum.shape
  out, seen = {}, set()
  for p in sorted(periods):
    points = [f for f in grid_frequencies(h, w, p) if f not in seen]
    seen.update(points)
    if not points:
      continue
    peak = np.mean([spectrum[ky, kx] for ky, kx in points])
    ring = np.mean([spectrum[(ky + dy) % h, (kx + dx) % w] for ky, kx in points
                    for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2])
    out[f"period_{p}"] = float(peak / max(ring, 1e-30))
  return out


def radial_profile(spectrum: np.ndarray, bins: int = 0) -> np.ndarray:
  """Azimuthal mean of the spectrum over rings of integer radius |k| (0 .. min(H, W) // 2)."""
  h, w = spectrum.shape
  ky = np.fft.fftfreq(h) * h
  kx = np.fft.fftfreq(w) * w
  r = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(int)
  n = bins or min(h, w) // 2 + 1
  keep = r < n
  sums = np.bincount(r[keep], weights=spectrum[keep], minlength=n)
  counts = np.bincount(r[keep], minlength=n)
  return sums / np.maximum(counts, 1)
