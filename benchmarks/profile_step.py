r"""Where one training step's time goes: XLA ops by thread time, from a `jax.profiler` trace.

  python benchmarks/profile_step.py --case vae [--steps 20] [--top 25]

Runs the case's jitted train step (synthetic data, as `benchmarks/run.py`), traces
`--steps` steps, and prints ms per step of thread time per XLA op kind (fusions,
convolutions, copies...) and per op, summed over the XLA:CPU worker threads.
"""

import argparse
import collections
import glob
import os
import re
import sys
import tempfile

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cases, gm_bench  # noqa: E402
from gm import loop  # noqa: E402


def op_times(trace_dir: str):
  """{op name: total ns} over the XLA worker threads of the trace in `trace_dir`."""
  from jax._src.lib import _profile_data  # pylint: disable=g-import-not-at-top
  path = sorted(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True))[-1]
  totals = collections.Counter()
  for plane in _profile_data.ProfileData.from_file(path).planes:
    for line in plane.lines:
      if "XLAEigen" not in line.name:  # XLA:CPU's intra-op threads
        continue
      for ev in line.events:
        if not ev.name.startswith("ThunkExecutor"):
          totals[ev.name] += ev.duration_ns
  return totals


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--case", default="vae", help="a case of benchmarks/cases.py")
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--top", type=int, default=25)
  args = p.parse_args()
  case, = cases.select(args.case)
  config = gm_bench.load_config(case)
  per_step = gm_bench._per_step(config)  # pylint: disable=protected-access
  ds = gm_bench.synthetic_dataset(case, per_step)
  family, run, _ = loop.build(config, ds)
  batch = {k: jnp.asarray(v) for k, v in ds.train.items()}
  step = jax.jit(family.train_step)
  key = jax.random.PRNGKey(0)
  state = run.model
  for _ in range(5):
    state, _ = step(state, batch, key)
  jax.block_until_ready(state)
  with tempfile.TemporaryDirectory() as d:
    with jax.profiler.trace(d):
      for _ in range(args.steps):
        state, _ = step(state, batch, key)
      jax.block_until_ready(state)
    totals = op_times(d)
  if not totals:
    raise SystemExit("error: the trace has no XLA:CPU op events (this script reads CPU traces)")
  ms = lambda ns: ns / args.steps / 1e6
  kinds = collections.Counter()
  for name, ns in totals.items():
    kinds[re.sub(r"[.\d]+$", "", name)] += ns
  print(f"{case.name}: {ms(sum(totals.values())):.1f} ms of thread time per step "
        f"({jax.default_backend()}, {os.cpu_count()} CPUs, jax {jax.__version__})")
  print("by kind:")
  for name, ns in kinds.most_common(args.top):
    print(f"  {ms(ns):7.3f} ms  {name}")
  print("by op (names as in the compiled HLO):")
  for name, ns in totals.most_common(args.top):
    print(f"  {ms(ns):7.3f} ms  {name}")


if __name__ == "__main__":
  main()
