"""MNIST sources: idx files, the embedded sample, and a fast offline TFDS failure."""

import gzip
import os
import struct
import time

import numpy as np
import pytest

from gm import data
from gm.data import mnist
from gm.errors import UserError
from tests.conftest import load_config


def _write_idx(path, array):
  header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_dir(tmp_path):
  rng = np.random.default_rng(0)
  arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
            "train-labels-idx1-ubyte": rng.integers(0, 10, 20),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
            "t10k-labels-idx1-ubyte": rng.integers(0, 10, 6)}
  for stem, a in arrays.items():
    _write_idx(str(tmp_path / (stem + ".gz")), a)
  return tmp_path, arrays


def test_idx_files_are_read_exactly(idx_dir):
  directory, arrays = idx_dir
  config = load_config("vae_mnist", "")
  config.data.source, config.data.dir = "idx", str(directory)
  ds = data.load(config.data)
  np.testing.assert_array_equal(ds.train["image"][..., 0], arrays["train-images-idx3-ubyte"])
  np.testing.assert_array_equal(ds.test["label"], arrays["t10k-labels-idx1-ubyte"])
  assert ds.train["image"].dtype == np.uint8 and ds.train["image"].shape == (20, 28, 28, 1)
  assert ds.info["source"] == "idx" and ds.info["num_train"] == 20


def test_idx_missing_file_and_truncated_file(idx_dir, tmp_path_factory):
  directory, _ = idx_dir
  os.remove(directory / "t10k-labels-idx1-ubyte.gz")
  with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz not found"):
    mnist.load_idx(str(directory))
  with pytest.raises(UserError, match="not a directory"):
    mnist.load_idx(str(tmp_path_factory.mktemp("x") / "nope"))
  bad = directory / "bad.gz"
  with gzip.open(bad, "wb") as f:
    f.write(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 10) + b"abc")
  with pytest.raises(UserError, match="truncated"):
    mnist.read_idx(str(bad))


def test_embedded_sample_is_real_mnist_and_recorded():
  ds = mnist.load_embedded()
  assert ds.train["image"].shape == (4000, 28, 28, 1) and ds.test["image"].shape == (1000, 28, 28, 1)
  assert ds.info["source"] == "embedded"
  counts = np.bincount(np.concatenate([ds.train["label"], ds.test["label"]]), minlength=10)
  assert counts.tolist() == [500] * 10
  # Real digits: dark background, bright strokes, ~19% ink like MNIST.
  ink = (ds.train["image"] > 127).mean()
  assert 0.1 < ink < 0.3


def test_tfds_without_prepared_data_fails_fast_with_instructions(tmp_path):
  t0 = time.perf_counter()
  with pytest.raises(UserError) as e:
    mnist.load_tfds(str(tmp_path))
  assert time.perf_counter() - t0 < 30
  assert "source=idx" in str(e.value) and "source=embedded" in str(e.value)


def test_unknown_source_and_dataset_are_errors():
  config = load_config("vae_mnist", "")
  config.data.source = "internet"
  with pytest.raises(UserError, match="valid: embedded, idx, tfds"):
    data.load(config.data)
  config.data.name = "cifar"
  with pytest.raises(ValueError, match="valid names: image_folder, mnist, mnist_canvas"):
    data.load(config.data)


def test_tfds_source_reads_prepared_data():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  with tfds.testing.mock_data(num_examples=7):
    ds = mnist.load_tfds("")
  assert ds.train["image"].shape == (7, 28, 28, 1) and ds.train["image"].dtype == np.uint8
  assert ds.test["label"].dtype == np.int32 and ds.info["source"] == "tfds"
