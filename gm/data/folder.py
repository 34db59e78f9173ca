"""Small folders of photos (the assignment's carrot cake), and Food-101's carrot_cake from TFDS.

`data.name = 'image_folder'` with `data.source`:
  - 'folder' (default): every jpg / jpeg / png / webp under `data.dir`, searched
    recursively, decoded to RGB, resized to `data.image_size` (center 'crop' by
    default, or 'pad'). Unreadable files are skipped with one warning naming
    them; grayscale, palette and transparent images are converted to RGB
    (transparency onto white). Nothing in the folder is written.
  - 'tfds': Food-101's train split filtered to `data.tfds_label` (carrot_cake).

Decoded arrays are cached in `data.cache_dir` (default ~/.cache/gm/image_folder)
under a key made of every file's path, size and modification time and the
resize settings, so a second run does not decode again and any change to the
folder makes a new cache entry.

Held-out photos: `data.holdout` sets photos aside (a fraction below 1, e.g. 0.15,
or a count, e.g. 128), chosen by a permutation
seeded with `data.holdout_seed` (reproducible; recorded in the config and in the
dataset info with their file names); `test` holds them and `train` the rest. With
`data.holdout = 0`, `test` is the training set itself (the reference set for
sample quality when every photo is used for training).
"""

import hashlib
import json
import logging
import math
import os
from typing import Dict, List, Tuple

import ml_collections
import numpy as np

from gm import fileio
from gm.data.core import DATASETS, Dataset, tfds_data_source
from gm.errors import UserError

log = logging.getLogger("gm")

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
FOOD101_CARROT_CAKE = 14  # Label of carrot_cake in TFDS food101 2.0.0.


def list_images(directory: str) -> List[str]:
  """Image files under `directory`, recursively, sorted (relative order is reproducible)."""
  if not directory:
    raise UserError("data.dir is empty; pass --config.data.dir=<folder of jpg/png/webp photos>")
  if not os.path.isdir(directory):
    raise UserError(f"image folder {directory} does not exist; pass "
                    "--config.data.dir=<folder of jpg/png/webp photos>")
  paths = []
  for root, dirs, files in os.walk(directory):
    dirs.sort()
    paths += [os.path.join(root, f) for f in sorted(files)
              if f.lower().endswith(EXTENSIONS) and not f.startswith(".")]
  if not paths:
    raise UserError(f"no images ({', '.join(EXTENSIONS)}) under {directory}; point "
                    "--config.data.dir at a folder of photos")
  return paths


def _to_rgb(img):
  """Any PIL image -> RGB, upright: EXIF orientation applied (a phone photo stored sideways
  is turned as its viewer shows it), 16-bit and 32-bit integer greyscale scaled to 8 bits
  (not clipped), transparent pixels white."""
  from PIL import Image, ImageOps  # pylint: disable=g-import-not-at-top
  img = ImageOps.exif_transpose(img)
  if img.mode.startswith("I;16") or img.mode == "I":
    wide = np.asarray(img, np.float64)
    top = 65535.0 if img.mode.startswith("I;16") or wide.max() <= 65535 else float(wide.max())
    img = Image.fromarray(np.clip(wide / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
  if img.mode == "P":
    img = img.convert("RGBA")
  if img.mode in ("RGBA", "LA") or (img.mode == "RGB" and "transparency" in img.info):
    img = img.convert("RGBA")
    background = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, img).convert("RGB")
  return img.convert("RGB")


def resize(img, size: int, mode: str):
  """PIL image -> size x size RGB: 'crop' (center square, then scale) or 'pad' (fit, then pad)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  img = _to_rgb(img)
  w, h = img.size
  if mode == "crop":
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return img.resize((size, size), Image.BICUBIC)
  if mode == "pad":
    scale = size / max(w, h)
    img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
    canvas = Image.new("RGB", (size, size), (0, 0, 0))
    canvas.paste(img, ((size - img.size[0]) // 2, (size - img.size[1]) // 2))
    return canvas
  raise UserError(f"data.resize={mode!r}; valid: crop, pad")


def decode(paths: List[str], size: int, mode: str) -> Tuple[np.ndarray, List[str]]:
  """(uint8 [N, size, size, 3] of the readable files, paths that could not be read)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if mode not in ("crop", "pad"):  # A config error, not an unreadable file.
    raise UserError(f"data.resize={mode!r}; valid: crop, pad")
  images, bad = [], []
  for p in paths:
    try:
      with Image.open(p) as img:
        img.load()
        images.append(np.asarray(resize(img, size, mode), np.uint8))
    except Exception:  # pylint: disable=broad-except  (any unreadable file is skipped)
      bad.append(p)
  empty = np.zeros((0, size, size, 3), np.uint8)
  return (np.stack(images) if images else empty), bad


def _cache_key(directory: str, paths: List[str], size: int, mode: str) -> str:
  # version 2: EXIF orientation and 16-bit greyscale handled (version 1 caches decoded neither).
  h = hashlib.sha256(json.dumps({"size": size, "mode": mode, "version": 2}).encode())
  for p in paths:
    try:
      st = os.stat(p)
      stamp = f"{st.st_size}\0{st.st_mtime_ns}"
    except OSError:  # A dangling symlink or a symlink loop: decode() lists it as unreadable.
      stamp = "unreadable"
    h.update(f"{os.path.relpath(p, directory)}\0{stamp}\n".encode())
  return h.hexdigest()[:24]


def default_cache_dir() -> str:
  return os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                      "gm", "image_folder")


def load_folder(directory: str, size: int, mode: str, cache_dir: str = "") -> Dict:
  """{'image': uint8 [N, size, size, 3], 'files': [N] relative paths, 'skipped': [...], 'cached': bool}."""
  paths = list_images(directory)
  directory = os.path.abspath(directory)
  paths = [os.path.abspath(p) for p in paths]
  cache_dir = cache_dir or default_cache_dir()
  cache = os.path.join(cache_dir, _cache_key(directory, paths, size, mode) + ".npz")
  if os.path.exists(cache):
    try:
      with np.load(cache) as f:
        return {"image": f["image"], "files": list(f["files"]), "skipped": list(f["skipped"]),
                "cached": True}
    except Exception:  # pylint: disable=broad-except  (a damaged cache is rebuilt)
      log.warning("cache %s is unreadable; decoding again", cache)
  images, bad = decode(paths, size, mode)
  good = [os.path.relpath(p, directory) for p in paths if p not in set(bad)]
  skipped = [os.path.relpath(p, directory) for p in bad]
  if bad:
    shown = ", ".join(skipped[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    log.warning("skipped %d unreadable image file(s) of %d in %s: %s", len(bad), len(paths),
                directory, shown)
  if not len(images):
    raise UserError(f"none of the {len(paths)} image files under {directory} could be read; "
                    "check that they are jpg/png/webp photos")
  try:
    os.makedirs(cache_dir, exist_ok=True)
    # Atomic: a concurrent or interrupted run never sees half a file.
    fileio.write_atomic(cache, lambda tmp: np.savez(tmp, image=images, files=np.asarray(good),
                                                    skipped=np.asarray(skipped, dtype=str)),
                        suffix=".npz")
  except OSError as e:
    log.warning("could not write the decode cache %s (%s); continuing without it", cache, e)
  return {"image": images, "files": good, "skipped": skipped, "cached": False}


def load_food101(size: int, mode: str, data_dir: str, label: int) -> np.ndarray:
  """Images of one Food-101 class (train split) via tensorflow-datasets."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  src = tfds_data_source("food101", "train", data_dir,
                         "use --config.data.source=folder with --config.data.dir=<photos>")
  out = []
  for i in range(len(src)):
    record = src[i]
    if int(record["label"]) == label:
      out.append(np.asarray(resize(Image.fromarray(np.asarray(record["image"])), size, mode)))
  if not out:
    raise UserError(f"Food-101 has no training images with label {label}")
  return np.stack(out).astype(np.uint8)


@DATASETS.register("image_folder")
def load_image_folder(cfg: ml_collections.ConfigDict) -> Dataset:
  """A folder of photos (or Food-101 carrot_cake) as uint8 [N, S, S, 3]; test = the same images."""
  size, mode = cfg.image_size, cfg.resize
  if size < 8:
    raise UserError(f"data.image_size={size}; use at least 8")
  source = cfg.source
  if source == "folder":
    loaded = load_folder(cfg.dir, size, mode, cfg.cache_dir)
    images = loaded["image"]
    info = {"name": "image_folder", "source": "folder", "path": os.path.abspath(cfg.dir),
            "skipped": loaded["skipped"], "decode_cache_hit": loaded["cached"]}
  elif source == "tfds":
    label = cfg.tfds_label
    images = load_food101(size, mode, cfg.tfds_data_dir, label)
    info = {"name": "image_folder", "source": "tfds", "path": f"food101 train, label {label}"}
  else:
    raise UserError(f"unknown image_folder source {source!r}; valid: folder, tfds")
  arrays = {"image": images, "label": np.zeros(len(images), np.int32)}
  holdout = cfg.holdout
  if not holdout:
    return Dataset(arrays, dict(arrays), info)
  files = loaded["files"] if source == "folder" else [str(i) for i in range(len(images))]
  train_idx, test_idx = holdout_split(len(images), holdout, cfg.holdout_seed)
  info["holdout"] = {"count": len(test_idx), "seed": cfg.holdout_seed,
                     "files": [files[i] for i in test_idx]}
  return Dataset({k: v[train_idx] for k, v in arrays.items()},
                 {k: v[test_idx] for k, v in arrays.items()}, info)


def holdout_split(n: int, holdout: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """(train indices, held-out indices), each in the folder's sorted file order.

  `holdout`: a fraction of the n photos (0 < holdout < 1, rounded) or a count.
  The held-out set is the first entries of a permutation seeded with `seed`: the
  same folder and settings always hold out the same photos.
  """
  count = int(round(holdout * n)) if 0 <= holdout < 1 else (
      int(holdout) if math.isfinite(holdout) else -1)  # NaN compares false: refused below.
  if count < 0 or (holdout >= 1 and holdout != count) or not count < n:
    raise UserError(f"data.holdout={holdout:g}: the folder has {n} photos; hold out a fraction "
                    f"below 1 or a count between 0 and {n - 1} (--config.data.holdout=0.15)")
  held = np.sort(np.random.default_rng(seed).permutation(n)[:count])
  return np.setdiff1d(np.arange(n), held), held
