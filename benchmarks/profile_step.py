r"""Where one training step's time goes: XLA ops by thread time, from a `jax.profiler` trace.

  python benchmarks/profile_step.py --case vae [--steps 20] [--top 25]
  python benchmarks/profile_step.py --case dcgan_mnist --by-layer

Runs the case's jitted train step (synthetic data, as `benchmarks/run.py`), traces
`--steps` steps, and prints ms per step of thread time per XLA op kind (fusions,
convolutions, copies...) and per op, summed over the XLA:CPU worker threads.
`--by-layer` also sums it per Flax layer and direction ("fwd D/Conv_1",
"bwd G/Dense_1"), read from the compiled HLO's op_name metadata, and shows each
top op's shape and source op. Convolutions that XLA:CPU runs on Eigen (`gm`'s
setting, `gm.backend.runtime`) show only their launch in the trace; the untimed rest
is in the gap between the step's wall time (printed too) and the traced time.
"""

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cases, gm_bench  # noqa: E402
from gm.train import loop
from gm.backend import runtime  # noqa: E402


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


# Flax's automatic layer names (Conv_1, Dense_0, BatchNorm_2) and named ones ending in a number
# (up_64, to_rgb_32: a growing model's layers per resolution).
_LAYER = re.compile(r"[A-Za-z]\w*_\d+")


def layer_of(op_name: str) -> str:
  """'fwd Module/[submodule/]Layer_i' or 'bwd ...' from an HLO op_name; else a coarse group.

  Backward ops are those under `transpose(...)` (JAX's linear transpose of the forward pass).
  """
  parts = [re.sub(r"^(?:transpose\(|jvp\()+|\)+$", "", p) for p in op_name.split("/")]
  for i, part in enumerate(parts):
    if _LAYER.fullmatch(part):
      owner = max((j for j in range(i) if parts[j][:1].isupper()), default=i)
      path = "/".join([parts[owner].split(".")[0], *parts[owner + 1:i + 1]])
      return ("bwd " if "transpose(" in op_name else "fwd ") + path
  if op_name.startswith("state."):
    return "optimizer update (per-parameter)"
  return "other (loss, RNG, glue)"


def hlo_ops(hlo_text: str):
  """{instruction name: (result shape, op_name metadata)} of a compiled HLO module's text."""
  info = {}
  for line in hlo_text.splitlines():
    m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ", line)
    if m:
      op = re.search(r'op_name="([^"]+)"', line)
      info[m.group(1)] = (m.group(2), op.group(1) if op else "")
  return info


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--case", default="vae", help="a case of benchmarks/cases.py")
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--top", type=int, default=25)
  p.add_argument("--by-layer", action="store_true", help="also group by Flax layer (fwd/bwd) and "
                 "show each top op's shape and source")
  args = p.parse_args()
  case, = cases.select(args.case)
  config = gm_bench.load_config(case)
  per_step = gm_bench._per_step(config)  # pylint: disable=protected-access
  ds = gm_bench.synthetic_dataset(case, per_step)
  family, run, _ = loop.build(config, ds)
  batch = {k: jnp.asarray(v) for k, v in ds.train.items()}
  step = runtime.jit(family.train_step)
  key = jax.random.PRNGKey(0)
  state = run.model
  info = hlo_ops(step.lower(state, batch, key).compile().as_text()) if args.by_layer else {}
  for _ in range(5):
    state, _ = step(state, batch, key)
  jax.block_until_ready(state)
  t0 = time.perf_counter()
  for _ in range(args.steps):
    state, _ = step(state, batch, key)
  jax.block_until_ready(state)
  wall = (time.perf_counter() - t0) / args.steps
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
  print(f"{case.name}: {wall * 1e3:.1f} ms wall per step (untraced); {ms(sum(totals.values())):.1f} ms "
        f"of traced thread time per step ({jax.default_backend()}, {os.cpu_count()} CPUs, "
        f"jax {jax.__version__})")
  print("by kind:")
  for name, ns in kinds.most_common(args.top):
    print(f"  {ms(ns):7.3f} ms  {name}")
  print("by op (names as in the compiled HLO):")
  for name, ns in totals.most_common(args.top):
    shape, op = info.get(name, ("", ""))
    where = f"  {shape[:40]:40s} {op.replace('jit(train_step)/', '')[:100]}" if info else ""
    print(f"  {ms(ns):7.3f} ms  {name:28s}{where}")
  if info:
    layers = collections.Counter()
    for name, ns in totals.items():
      layers[layer_of(info.get(name, ("", ""))[1])] += ns
    print("by layer (fwd: forward pass, also inside the other network's update; bwd: its gradients):")
    for name, ns in layers.most_common():
      print(f"  {ms(ns):7.3f} ms  {name}")


if __name__ == "__main__":
  main()
