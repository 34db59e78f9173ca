"""One function per figure. Each writes a PNG (or GIF) and returns its path."""

import os
from typing import Dict, List, Optional, Sequence

import sys

import matplotlib

if "ipykernel" not in sys.modules:  # Files only; a notebook keeps its inline backend.
  matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def _ensure_dir(path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  return path


def _save(fig, path: str, dpi: int = 120) -> str:
  fig.tight_layout()
  fig.savefig(_ensure_dir(path), dpi=dpi)
  plt.close(fig)
  return path


def tile(images: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
  """[N, H, W, C] in [0, 1] -> one uint8 image [rows*(H+pad)+pad, cols*(W+pad)+pad, C]."""
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  n, h, w, c = images.shape
  cols = max(1, min(cols, n))
  rows = -(-n // cols)
  out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
  for i, img in enumerate(images):
    r, q = divmod(i, cols)
    out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = img
  return (out * 255).round().astype(np.uint8)


def save_grid(images: np.ndarray, path: str, cols: int = 8, title: Optional[str] = None,
              scale: int = 3) -> str:
  """Writes images [N, H, W, C] in [0, 1] as a grid PNG, upscaled by `scale`."""
  grid = tile(images, cols)
  img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
  if title:
    fig_h = img.height + 24
    canvas = Image.new(img.mode, (img.width, fig_h), 255 if img.mode == "L" else (255, 255, 255))
    canvas.paste(img, (0, 24))
    from PIL import ImageDraw  # pylint: disable=g-import-not-at-top
    ImageDraw.Draw(canvas).text((4, 4), title, fill=0 if img.mode == "L" else (0, 0, 0))
    img = canvas
  img.save(_ensure_dir(path))
  return path


def grid_image(images: np.ndarray, cols: int, scale: int = 3) -> Image.Image:
  """Images [N, H, W, C] in [0, 1] -> an RGB PIL grid, upscaled by `scale`."""
  grid = tile(images, cols)
  img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).convert("RGB")
  return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def save_gif(frames: Sequence, path: str, duration_ms: int = 400) -> str:
  """Assembles PNG files (or PIL images) into an animated GIF (last frame held longer)."""
  images = [f.convert("RGB") if isinstance(f, Image.Image) else Image.open(f).convert("RGB")
            for f in frames]
  durations = [duration_ms] * (len(images) - 1) + [duration_ms * 4]
  images[0].save(_ensure_dir(path), save_all=True, append_images=images[1:],
                 duration=durations, loop=0)
  return path


def latent_scatter(z: np.ndarray, labels: np.ndarray, path: str, std: Optional[np.ndarray] = None,
                   title: str = "") -> str:
  """2-D codes coloured by digit with a legend; optional ±1 std error bars."""
  fig, ax = plt.subplots(figsize=(7, 6))
  cmap = plt.get_cmap("tab10")
  for d in range(10):
    sel = labels == d
    if std is not None:
      ax.errorbar(z[sel, 0], z[sel, 1], xerr=std[sel, 0], yerr=std[sel, 1], fmt="none",
                  ecolor=cmap(d), alpha=0.15, linewidth=0.5)
    ax.scatter(z[sel, 0], z[sel, 1], s=3, color=cmap(d), label=str(d))
  ax.legend(markerscale=4, title="digit", loc="best", fontsize=8)
  ax.set(xlabel="z[0]", ylabel="z[1]", title=title)
  return _save(fig, path)


def image_grid_axes(images: np.ndarray, path: str, extent, title: str = "") -> str:
  """An n x n grid of decoded images [n, n, H, W, C] drawn over its latent box with axes."""
  n = images.shape[0]
  big = tile(images[::-1].reshape(-1, *images.shape[2:]), n, pad=0)  # Top row = largest z[1].
  fig, ax = plt.subplots(figsize=(7, 7))
  ax.imshow(big.squeeze(), cmap="gray", extent=extent, aspect="auto")
  ax.set(xlabel="z[0]", ylabel="z[1]", title=title)
  return _save(fig, path)


def curves(records: List[Dict], keys: Sequence[str], path: str, x: str = "epoch",
           title: str = "", hlines: Optional[Dict[str, float]] = None) -> str:
  """Line plot of metric `keys` against `x` from metrics.jsonl records.

  `hlines`: per key, a reference value drawn as a dashed line (e.g. real vs real).
  """
  cols = min(4, len(keys))
  rows = -(-len(keys) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
  for ax in axes.flat[len(keys):]:
    ax.axis("off")
  for ax, key in zip(axes.flat, keys):
    pts = [(r[x], r[key]) for r in records if key in r and x in r]
    if pts:
      ax.plot(*zip(*pts), marker=".")
    if hlines and key in hlines:
      ax.axhline(hlines[key], color="0.5", ls="--", lw=1)
    ax.set_title(key)
    ax.set_xlabel(x)
    ax.grid(alpha=0.3)
  fig.suptitle(title)
  return _save(fig, path, dpi=110)


def trajectory(points: np.ndarray, path: str, title: str = "") -> str:
  """A 2-D path [T, 2] with numbered points and arrows between them."""
  fig, ax = plt.subplots(figsize=(4.5, 4.5))
  ax.plot(points[:, 0], points[:, 1], "-", color="0.7", zorder=1)
  for i in range(len(points) - 1):
    ax.annotate("", points[i + 1], points[i], arrowprops=dict(arrowstyle="->", color="C0"))
  ax.scatter(points[:, 0], points[:, 1], c=np.arange(len(points)), cmap="viridis", zorder=2)
  labels: Dict[tuple, List[str]] = {}
  for i, (x, y) in enumerate(points):  # Points visited twice get one label "i, j".
    labels.setdefault((round(float(x), 6), round(float(y), 6)), []).append(str(i))
  for (x, y), names in labels.items():
    ax.annotate(", ".join(names), (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
  ax.scatter([0], [0], marker="*", s=120, color="C3", label="equilibrium (0, 0)", zorder=3)
  ax.set_xlabel("x (minimises)")
  ax.set_ylabel("y (maximises)")
  ax.set_aspect("equal")
  ax.grid(alpha=0.3)
  ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=8)
  ax.set_title(title)
  return _save(fig, path)


def metric_over_steps(steps: Sequence[int], values: Dict[str, Sequence[float]], path: str,
                      title: str = "") -> str:
  """One panel per named series over checkpoint steps."""
  fig, axes = plt.subplots(1, len(values), figsize=(4 * len(values), 3.2), squeeze=False)
  for ax, (name, ys) in zip(axes[0], values.items()):
    ax.plot(steps, ys, "o-")
    ax.set_xlabel("step")
    ax.set_title(name)
    ax.grid(alpha=0.3)
  fig.suptitle(title)
  return _save(fig, path)


def lines(series: Dict[str, np.ndarray], path: str, xlabel: str = "step", ylabel: str = "",
          title: str = "", log: bool = False, faint: Optional[Dict[str, np.ndarray]] = None) -> str:
  """Named curves on one axis (plus optional faint ones, e.g. discarded restarts)."""
  fig, ax = plt.subplots(figsize=(5.5, 3.5))
  for ys in (faint or {}).values():
    ax.plot(ys, color="0.8", lw=0.8)
  for name, ys in series.items():
    ax.plot(ys, label=name)
  if log:
    ax.set_yscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  if len(series) <= 12:
    ax.legend(fontsize=7)
  ax.set_title(title)
  return _save(fig, path)


def spectra(panels: Dict[str, np.ndarray], profiles: Dict[str, np.ndarray], path: str,
            title: str = "") -> str:
  """log10 mean power spectra (DC centred), one panel each, and their radial profiles."""
  fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.2 * (len(panels) + 1), 3.3))
  logs = {k: np.log10(np.fft.fftshift(v) + 1e-12) for k, v in panels.items()}
  lo = min(np.percentile(v, 1) for v in logs.values())
  hi = max(v.max() for v in logs.values())
  for ax, (name, img) in zip(axes, logs.items()):
    ax.imshow(img, cmap="magma", vmin=lo, vmax=hi)
    ax.set_title(name, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
  ax = axes[-1]
  for name, ys in profiles.items():
    ax.semilogy(ys, label=name)
  ax.set_xlabel("|k| (cycles per image)")
  ax.set_title("radial mean power", fontsize=8)
  ax.legend(fontsize=6)
  ax.grid(alpha=0.3)
  fig.suptitle(title, fontsize=9)
  return _save(fig, path)
