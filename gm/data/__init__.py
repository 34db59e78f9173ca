"""Dataset registry: names -> loaders returning plain numpy arrays plus metadata."""

from gm.data.core import DATASETS, Dataset, load, to_float
from gm.data import canvas, folder, mnist  # noqa: F401  (register the loaders)

__all__ = ["DATASETS", "Dataset", "load", "to_float"]
