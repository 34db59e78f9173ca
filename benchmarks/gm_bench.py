"""Throughput of `gm` itself: the training loop's own epoch driver on synthetic data.

Steps are driven by `gm.train.loop.EpochRunner` (a Python loop of one jitted step on
XLA:CPU, one `lax.scan` per epoch elsewhere), the same code path `train.py`
runs; batches are gathered on device from a device-resident uint8 dataset.
"""

import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from gm import config_utils, data as gm_data, invert as gm_invert
from gm.train import loop
from gm.backend import runtime, sharding
from gm.models.gan import count_params


def load_config(case, dtype: str = "float32", extra: Optional[Dict[str, Any]] = None):
  """The case's config with its overrides, the compute dtype and `extra` applied."""
  overrides = {**case.override_dict(), "model.compute_dtype": dtype, "train.progress": False,
               **(extra or {})}
  return config_utils.load_file(case.config, [f"{k}={v}" for k, v in overrides.items()])


def synthetic_dataset(case, n: int, seed: int = 0) -> gm_data.Dataset:
  """n random uint8 images of the case's shape, labels 0-9 (and a condition for the CVAE)."""
  rng = np.random.default_rng(seed)
  train = {"image": rng.integers(0, 256, (n, *case.image_shape), dtype=np.uint8),
           "label": rng.integers(0, 10, n).astype(np.int32)}
  if case.cond_dim:
    train["cond"] = rng.random((n, case.cond_dim)).astype(np.float32)
  return gm_data.Dataset(train=train, test=train, info={"num_train": n})


def _block(tree):
  jax.tree.map(lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree)


def _memory_bytes(compiled, exclude: int = 0) -> Optional[int]:
  """Device memory of a compiled program (XLA's buffer assignment: arguments, outputs, temps),
  less `exclude` bytes of arguments (the dataset, which the program only reads from)."""
  try:
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
               - m.alias_size_in_bytes) - exclude
  except Exception:  # pylint: disable=broad-except  (not every backend reports it)
    return None


def _flops(compiled) -> Optional[float]:
  try:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])
  except Exception:  # pylint: disable=broad-except
    return None


def useful_flops(case, dtype: str) -> Optional[float]:
  """FLOPs of one training step as XLA counts them, with transposed convs lowered sub-pixel.

  The sub-pixel lowering computes no zero-inserted pixels, so this counts the
  useful work whichever lowering the timed program uses.
  """
  config = load_config(case, dtype, {"runtime.conv_transpose_impl": "subpixel"})
  per_step = _per_step(config)
  ds = synthetic_dataset(case, per_step)
  family, run, _ = loop.build(config, ds)
  batch = {k: jnp.asarray(v) for k, v in ds.train.items()}
  if case.kind == "invert":
    return _invert_flops(case, family, run.model, ds)
  compiled = runtime.jit(family.train_step).lower(run.model, batch, jax.random.PRNGKey(0)).compile()
  return _flops(compiled)


def _per_step(config) -> int:
  from gm import families  # pylint: disable=g-import-not-at-top
  return families.get(config).examples_per_step(config.train.batch_size)


def measure_train(case, steps: int, dtype: str = "float32", repeats: int = 3,
                  num_devices: int = 1) -> Dict[str, Any]:
  """Steady-state time per training step of `gm` (best of `repeats` epochs of `steps` steps).

  Returns a dict: step_s, images_per_s, compile_s (first epoch minus a steady
  one), params (trainable scalars), memory_bytes (XLA's buffer assignment of the
  program that runs the steps, dataset excluded: one step with the loop driver, an
  epoch with scan), flops (per step as compiled; loop driver only), driver, devices.
  """
  config = load_config(case, dtype)
  config.train.num_devices = num_devices
  per_step = _per_step(config)
  n = per_step * steps
  ds = synthetic_dataset(case, n)
  mesh = sharding.data_mesh(num_devices)
  sharding.check_batch(mesh, config.train.batch_size)
  family, run, _ = loop.build(config, ds)
  params = count_params(_trainable(run.model))
  run = sharding.replicate(run, mesh)
  data = sharding.replicate({k: jnp.asarray(v) for k, v in ds.train.items()}, mesh)
  runner = loop.EpochRunner(family, per_step, n, config.train.epoch_driver, mesh)
  t0 = time.perf_counter()
  run, sums = runner(run, data, 0)
  _block((run, sums))
  first = time.perf_counter() - t0
  times = []
  for epoch in range(1, repeats + 1):
    t0 = time.perf_counter()
    run, sums = runner(run, data, epoch)
    _block((run, sums))
    times.append(time.perf_counter() - t0)
  epoch_s = min(times)
  # The runner's own program, from jit's cache: no second compile. With the scan driver it
  # runs a whole epoch, so XLA's FLOP count (which counts a loop body once) is left out.
  compiled = runner.compiled(run, data)
  data_bytes = sum(v.nbytes for v in ds.train.values())
  return {"step_s": epoch_s / steps, "images_per_s": per_step * steps / epoch_s,
          "compile_s": max(first - epoch_s, 0.0), "params": params,
          "memory_bytes": _memory_bytes(compiled, exclude=data_bytes),
          "flops": _flops(compiled) if runner.driver == "loop" else None,
          "driver": runner.driver, "devices": 1 if mesh is None else mesh.size,
          "finite": bool(all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(sums)))}


def _trainable(model) -> Any:
  """Parameters only (no batch statistics or optimizer states): what PyTorch calls parameters()."""
  if hasattr(model, "g"):
    return (model.g.params, model.d.params)
  return model.params


def _generator(case, dtype):
  config = load_config(case, dtype)
  ds = synthetic_dataset(case, _per_step(config))
  family, run, _ = loop.build(config, ds)
  return family, run.model, ds


def _invert_flops(case, family, state, ds) -> Optional[float]:
  gen = gm_invert.generator_of(family, state)
  targets = jnp.asarray(ds.train["image"][:1].repeat(case.invert_targets, 0), jnp.float32) / 255.0
  z = gen.noise(jax.random.PRNGKey(0), case.invert_targets)
  grad = runtime.jit(jax.grad(lambda z: gm_invert.per_code_loss(gen, z, targets, "mse", 0.0).sum()))
  return _flops(grad.lower(z).compile())


def measure_invert(case, steps: int, dtype: str = "float32", repeats: int = 2) -> Dict[str, Any]:
  """Time per step of batched inversion (`gm.invert.invert`, Adam, MSE) of `invert_targets` images.

  `invert` compiles once per generator and settings (and, with the scan driver, per step
  count), so both call lengths are run once to compile them; then the per-step time is the
  difference of the warm long and short calls over the difference of their steps (fixed costs,
  such as drawing z and the final images, cancel). When the long call is not the slower one,
  it raises instead of reporting a figure.
  """
  family, state, ds = _generator(case, dtype)
  gen = gm_invert.generator_of(family, state)
  targets = np.repeat(ds.train["image"][:1], case.invert_targets, 0).astype(np.float32) / 255.0
  key = jax.random.PRNGKey(0)

  def timed(s):
    t0 = time.perf_counter()
    gm_invert.invert(gen, targets, key, steps=s, optimizer="adam", lr=0.01, snapshots=2)
    return time.perf_counter() - t0

  first = timed(2 + steps)  # Compiles.
  timed(2)  # The scan driver compiles each length.
  pairs = [(timed(2), timed(2 + steps)) for _ in range(repeats)]  # Alternating: drifts hit both.
  short, long_ = min(p[0] for p in pairs), min(p[1] for p in pairs)
  if long_ <= short:
    raise RuntimeError(f"inversion: {steps} more steps took no longer than 2 ({long_:.2f} s vs "
                       f"{short:.2f} s, timing noise); rerun with more --steps")
  step_s = (long_ - short) / steps
  return {"step_s": step_s, "images_per_s": case.invert_targets / step_s,
          "compile_s": max(first - long_, 0.0), "params": int(gen.latent_size * case.invert_targets),
          "memory_bytes": None, "flops": None, "driver": runtime.epoch_driver("auto"), "devices": 1,
          "finite": True}
