"""The benchmarked configurations: each is a `configs/` file plus overrides, as a user runs it."""

import dataclasses
from typing import Dict, Tuple


@dataclasses.dataclass(frozen=True)
class Case:
  """One benchmark row.

  Attributes:
    name: row name (family, generator, batch).
    config: config file and arg, as passed to `train.py --config`.
    overrides: dotted config keys -> values (e.g. the batch size).
    image_shape: [H, W, C] of the synthetic uint8 training images.
    cond_dim: size of the float condition `cond` per example (CVAE), 0 if none.
    kind: 'train' (one optimizer step of the family) or 'invert' (one step of batched
      GAN inversion: `gm.invert.invert` on `invert_targets` images).
    invert_targets: images inverted at once (kind 'invert').
  """
  name: str
  config: str
  overrides: Tuple[Tuple[str, object], ...] = ()
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  cond_dim: int = 0
  kind: str = "train"
  invert_targets: int = 0

  @property
  def batch_size(self) -> int:
    return int(dict(self.overrides).get("train.batch_size", 0))

  def override_dict(self) -> Dict[str, object]:
    return dict(self.overrides)


def _b(batch):
  return (("train.batch_size", batch),)


_CAKE = (64, 64, 3)
ALL = (
    Case("ae", "configs/ae_mnist.py", _b(32)),
    Case("vae", "configs/vae_mnist.py", _b(32)),
    Case("cvae", "configs/cvae_mnist.py", _b(64), image_shape=(42, 42, 1), cond_dim=12),
    Case("gan_mlp", "configs/gan_mlp_mnist.py", _b(128)),
    Case("dcgan_mnist", "configs/dcgan_mnist.py", _b(128)),
    Case("cgan", "configs/cgan_mnist.py", _b(128)),
    Case("dcgan_mnist_b32", "configs/dcgan_mnist.py", _b(32)),
    Case("cgan_b32", "configs/cgan_mnist.py", _b(32)),
    *(Case(f"cake_{g}_b{b}", f"configs/{cfg}.py", _b(b), image_shape=_CAKE)
      for g, cfg in (("transposed", "dcgan_cake"), ("upsample", "dcgan_cake_upsample"))
      for b in (8, 64, 256)),
    # The 64x64 CPU recipes at their batch (32): the assignment's networks at width 0.25, and
    # the growing model at 64 px (grow and fade off: the full network every step).
    Case("cake_transposed_cpu_b32", "configs/dcgan_cake.py:cpu", _b(32), image_shape=_CAKE),
    Case("cake_upsample_cpu_b32", "configs/dcgan_cake_upsample.py:cpu", _b(32),
         image_shape=_CAKE),
    Case("cake_grow64_b32", "configs/cake_grow.py",
         (*_b(32), ("train.grow_epochs", 0), ("train.fade_epochs", 0)), image_shape=_CAKE),
    Case("invert_dcgan_mnist_64", "configs/dcgan_mnist.py", _b(128), kind="invert",
         invert_targets=64),
    Case("invert_cake_16", "configs/dcgan_cake.py", _b(8), image_shape=_CAKE, kind="invert",
         invert_targets=16),
)

# A CPU-sized subset (`--quick`): every MNIST family (the GANs at batch 32), and batched inversion.
QUICK = ("ae", "vae", "cvae", "gan_mlp", "dcgan_mnist_b32", "cgan_b32", "invert_dcgan_mnist_64")


def select(names=None, quick: bool = False):
  """Cases by name (comma-separated string or list); all, or the quick subset."""
  if isinstance(names, str):
    names = [n for n in names.split(",") if n]
  wanted = names or (QUICK if quick else [c.name for c in ALL])
  by_name = {c.name: c for c in ALL}
  unknown = [n for n in wanted if n not in by_name]
  if unknown:
    raise SystemExit(f"error: unknown benchmark case {unknown[0]!r}; valid: {', '.join(by_name)}")
  return [by_name[n] for n in wanted]
