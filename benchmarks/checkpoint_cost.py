r"""What checkpoint digests cost: save and restore time with and without them.

  nice -n 19 python benchmarks/checkpoint_cost.py               # cake DCGAN and MLP GAN, 7 repeats
  python benchmarks/checkpoint_cost.py --repeats 3 --cases gan_mlp

For each model (full-size configs; the state of `loop.build`: parameters, batch
statistics, both Adam states, step and keys) it times, into a fresh temporary
directory each time:
- save: Orbax's save alone (as `gm.checkpoint` did before digests), and
  `Checkpointer.save` (the per-array sha256 digests sealed into the meta item);
- restore: Orbax's restore alone, and `Checkpointer.restore` (the file probe and
  the digests recomputed from the restored arrays and compared).
Times are medians over `--repeats`; the digest work itself (hashing every array)
is also timed alone. Prints a Markdown table (docs/checkpoints.md has one).
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402

from benchmarks import cases, gm_bench  # noqa: E402
from gm import checkpoint, integrity  # noqa: E402
from gm.train import loop

CASES = {"cake": ("cake DCGAN (configs/dcgan_cake.py, 64x64)", "cake_transposed_b8"),
         "gan_mlp": ("MLP GAN (configs/gan_mlp_mnist.py)", "gan_mlp")}


def state_of(case):
  """The initial RunState of a case's full config (synthetic data of its image shape)."""
  config = gm_bench.load_config(case)
  _, run, _ = loop.build(config, gm_bench.synthetic_dataset(case, 2 * case.batch_size))
  return jax.block_until_ready(run)


def _plain_save(ckpt, step, state, meta):
  ckpt.manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
  ckpt.manager.wait_until_finished()


def _plain_restore(ckpt, step, target):
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  out = ckpt.manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  return jax.block_until_ready(out["state"])


def measure(case, repeats: int):
  state = state_of(case)
  leaves = jax.tree.leaves(state)
  nbytes = sum(np.asarray(x).nbytes for x in leaves)
  params = sum(np.asarray(x).size for x in jax.tree.leaves(state.model.g.params)) + sum(
      np.asarray(x).size for x in jax.tree.leaves(state.model.d.params))
  meta = {"epoch": 1, "step": 1, "data": {"name": "synthetic"}}
  times = {k: [] for k in ("save", "save_digest", "restore", "restore_verify", "hash")}
  for r in range(repeats + 1):  # The first round warms Orbax and the allocator; not counted.
    root = tempfile.mkdtemp(prefix="gm_ckpt_cost_")
    try:
      ckpt = checkpoint.Checkpointer(root)
      t = time.perf_counter()
      _plain_save(ckpt, 1, state, meta)
      t_save = time.perf_counter() - t
      t = time.perf_counter()
      ckpt.save(2, state, meta)
      t_save_digest = time.perf_counter() - t
      t = time.perf_counter()
      _plain_restore(ckpt, 2, state)
      t_restore = time.perf_counter() - t
      t = time.perf_counter()
      jax.block_until_ready(ckpt.restore(2, state)[0])
      t_restore_verify = time.perf_counter() - t
      t = time.perf_counter()
      integrity.tree_digests(state)
      t_hash = time.perf_counter() - t
      ckpt.close()
    finally:
      shutil.rmtree(root, ignore_errors=True)
    if r:
      for k, v in zip(times, (t_save, t_save_digest, t_restore, t_restore_verify, t_hash)):
        times[k].append(v)
  return {"params": params, "arrays": len(leaves), "mb": nbytes / 1e6,
          **{k: statistics.median(v) for k, v in times.items()}}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--cases", default="cake,gan_mlp", help=f"of: {', '.join(CASES)}")
  p.add_argument("--repeats", type=int, default=7)
  args = p.parse_args(argv)
  names = [n for n in args.cases.split(",") if n]
  unknown = [n for n in names if n not in CASES]
  if unknown:
    sys.exit(f"unknown case {unknown[0]!r}; valid: {', '.join(CASES)}")
  print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"JAX {jax.__version__}, orbax-checkpoint {getattr(ocp, '__version__', '?')}, "
        f"median of {args.repeats}")
  print("| model | parameters (with Adam states: arrays, MB) | save | save + digests | restore "
        "| restore + verify | sha256 of every array alone |")
  print("|---|---|---|---|---|---|---|")
  for name in names:
    title, case_name = CASES[name]
    (case,) = cases.select([case_name])
    m = measure(case, args.repeats)
    ms = lambda s: f"{s * 1e3:.0f} ms"  # noqa: E731
    pct = lambda a, b: f"{(a - b) / b * 100:+.0f} %"  # noqa: E731
    print(f"| {title} | {m['params'] / 1e6:.2f} M ({m['arrays']} arrays, {m['mb']:.1f} MB) "
          f"| {ms(m['save'])} | {ms(m['save_digest'])} ({pct(m['save_digest'], m['save'])}) "
          f"| {ms(m['restore'])} | {ms(m['restore_verify'])} "
          f"({pct(m['restore_verify'], m['restore'])}) | {ms(m['hash'])} |", flush=True)


if __name__ == "__main__":
  main()
