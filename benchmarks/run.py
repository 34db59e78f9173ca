r"""Training throughput of `gm` against PyTorch peers of the same models, in one process.

  python benchmarks/run.py                  # every case, f32 and bf16, all PyTorch modes
  python benchmarks/run.py --quick          # CPU-sized subset, about a minute
  python benchmarks/run.py --cases cake_transposed_b8,cake_transposed_b64 --dtypes float32,bfloat16
  python benchmarks/run.py --quick --devices 8   # 8 simulated CPU devices (the sharded path)

For each case (a `configs/` file at a batch size) it measures the steady-state
time per training step of `gm` (the training loop's own epoch driver) and of
the PyTorch peers (`benchmarks/torch_peers.py`: eager float32, bfloat16
autocast + channels_last, torch.compile), and prints the ratio PyTorch time /
gm time (> 1: gm is faster). Compile time is reported separately; achieved
FLOP/s counts the useful FLOPs of a step (XLA's count with transposed convs
lowered sub-pixel, i.e. no zero-inserted pixels) against the device's peak
(datasheet on GPUs; on CPUs a measured matmul rate). PyTorch is optional
(`pip install -r benchmarks/requirements.txt`); without it only gm is timed.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Dense peaks in FLOP/s by device kind: (float32 as XLA runs it (TF32 tensor cores), bfloat16).
PEAKS = {"H100": (494.7e12, 989.4e12), "H200": (494.7e12, 989.4e12), "A100": (156e12, 312e12)}


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--quick", action="store_true", help="CPU-sized subset, fewer steps, eager peer "
                 "only, no FLOP count (about a minute on 2 CPU cores)")
  p.add_argument("--cases", default="", help="comma-separated case names (default: all, or the quick set)")
  p.add_argument("--steps", type=int, default=0, help="steps per timed epoch (default 50; with "
                 "--quick 5, and 20 for inversion)")
  p.add_argument("--repeats", type=int, default=0, help="timed epochs; the fastest counts "
                 "(default 2 quick, 3)")
  p.add_argument("--dtypes", default="", help="gm compute dtypes: float32,bfloat16 "
                 "(default float32 with --quick, both otherwise)")
  p.add_argument("--peers", default="", help="PyTorch modes: eager,autocast,compile or none "
                 "(default eager with --quick, all otherwise)")
  p.add_argument("--devices", type=int, default=1, help="data-parallel devices for gm; on a CPU "
                 "this many are simulated (XLA_FLAGS), e.g. 8")
  p.add_argument("--no-flops", action="store_true", help="skip the useful-FLOP count (one more compile per case)")
  p.add_argument("--json", default="", help="also write the results to this JSON file")
  return p.parse_args(argv)


def setup_env(args):
  """Environment that must be set before jax is imported."""
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # Leave GPU memory to PyTorch too.
  if args.devices > 1:
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
      os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={args.devices}"


def peak_flops(jax):
  """(f32 peak, bf16 peak, source) for the first device."""
  dev = jax.devices()[0]
  for key, peaks in PEAKS.items():
    if key in dev.device_kind:
      return (*peaks, f"{dev.device_kind} datasheet, dense")
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  out = []
  for dtype in (jnp.float32, jnp.bfloat16):
    n = 1024
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(5):
      r = f(a)
    r.block_until_ready()
    out.append(2 * n ** 3 * 5 / (time.perf_counter() - t0))
  return (*out, f"{dev.device_kind}: measured 1024^2 matmul rate (not a datasheet peak)")


def fmt_ms(s):
  return "-" if s is None else f"{s * 1e3:.2f}"


def main(argv=None):
  args = parse_args(argv)
  setup_env(args)
  import jax  # pylint: disable=g-import-not-at-top
  from benchmarks import cases as cases_lib, gm_bench  # pylint: disable=g-import-not-at-top
  from gm import cli  # pylint: disable=g-import-not-at-top

  selected = cases_lib.select(args.cases, args.quick)
  steps = args.steps or (5 if args.quick else 50)
  # Inversion times the difference of a long and a short call: 5 steps of the quick set's
  # ~25 ms are within the noise of the calls' fixed costs.
  invert_steps = args.steps or (20 if args.quick else 50)
  repeats = args.repeats or (2 if args.quick else 3)
  count_flops = not (args.no_flops or args.quick)  # --quick: no second compile per case
  dtypes = [d for d in (args.dtypes or ("float32" if args.quick else "float32,bfloat16")).split(",") if d]
  modes = [] if args.peers == "none" else [
      m for m in (args.peers or ("eager" if args.quick else "eager,autocast,compile")).split(",") if m]
  try:
    import torch  # pylint: disable=g-import-not-at-top
    from benchmarks import torch_peers  # pylint: disable=g-import-not-at-top
    torch_version = torch.__version__
    torch_device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
  except ImportError:
    torch_peers, torch_version, torch_device = None, None, None
    if modes:
      print("PyTorch is not installed: timing gm only "
            "(pip install -r benchmarks/requirements.txt for the peers)")
    modes = []

  f32_peak, bf16_peak, peak_src = peak_flops(jax)
  dev = jax.devices()[0]
  header = {
      "date": datetime.date.today().isoformat(), "device": dev.device_kind,
      "backend": jax.default_backend(), "devices": args.devices, "host": platform.processor() or
      platform.machine(), "cpus": os.cpu_count(), "jax": jax.__version__, "torch": torch_version,
      "steps": steps, "invert_steps": invert_steps, "peak_f32": f32_peak, "peak_bf16": bf16_peak,
      "peak_source": peak_src}
  print(json.dumps(header))
  rows = []
  for case in selected:
    config = gm_bench.load_config(case)
    case_steps = invert_steps if case.kind == "invert" else steps
    row = {"case": case.name, "batch": case.invert_targets if case.kind == "invert" else
           config.train.batch_size, "gm": {}, "torch": {}}
    for dtype in dtypes:
      try:
        if case.kind == "invert":
          r = gm_bench.measure_invert(case, case_steps, dtype, repeats=min(repeats, 2))
        else:
          r = gm_bench.measure_train(case, case_steps, dtype, repeats, args.devices)
        if count_flops and case.kind != "invert":
          r["useful_flops"] = gm_bench.useful_flops(case, dtype)
          peak = bf16_peak if dtype == "bfloat16" else f32_peak
          r["flops_per_s"] = r["useful_flops"] / r["step_s"] if r["useful_flops"] else None
          r["peak_fraction"] = r["flops_per_s"] / peak if r["flops_per_s"] else None
      except Exception as e:  # pylint: disable=broad-except
        r = {"error": cli.describe(e)[0][:300]}
      row["gm"][dtype] = r
    for mode in modes:
      try:
        row["torch"][mode] = torch_peers.measure(case, config, mode, torch_device, case_steps,
                                                 repeats)
      except Exception as e:  # pylint: disable=broad-except
        row["torch"][mode] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    rows.append(row)
    print_row(row, dtypes, modes)
    sys.stdout.flush()
    if args.json:  # After every row, so a run stopped part-way keeps what it measured.
      with open(args.json, "w") as f:
        json.dump({"header": header, "rows": rows}, f, indent=1)
  print_summary(rows, dtypes, modes, header)
  return rows


def _best_torch(row):
  ok = {m: r for m, r in row["torch"].items() if "step_s" in r}
  if not ok:
    return None, None
  mode = min(ok, key=lambda m: ok[m]["step_s"])
  return mode, ok[mode]


def print_row(row, dtypes, modes):
  parts = [f"{row['case']:<24} b={row['batch']:<4}"]
  for d in dtypes:
    r = row["gm"][d]
    if "error" in r:
      parts.append(f"gm {d}: {r['error']}")
      continue
    extra = f" {r['flops_per_s'] / 1e12:.2f} TFLOP/s" if r.get("flops_per_s") else ""
    parts.append(f"gm {d} {fmt_ms(r['step_s'])} ms (compile {r['compile_s']:.1f} s){extra}")
  for m in modes:
    r = row["torch"][m]
    parts.append(f"torch {m} " + (r["error"] if "error" in r else f"{fmt_ms(r['step_s'])} ms"))
  print(" | ".join(parts))


def print_summary(rows, dtypes, modes, header):
  """A markdown table: ms/step, images/s, ratios best PyTorch / gm, FLOP/s, memory, params."""
  print()
  cols = ["case", "batch"] + [f"gm {d} ms" for d in dtypes] + ["gm img/s"]
  cols += [f"torch {m} ms" for m in modes]
  if modes:
    cols += ["best torch", "speed-up vs eager", "speed-up vs best"]
  cols += ["% peak", "step MiB (gm)", "compile s", "params gm / torch"]
  print("| " + " | ".join(cols) + " |")
  print("|" + "---|" * len(cols))
  for row in rows:
    gm_ok = {d: r for d, r in row["gm"].items() if "step_s" in r}
    fastest = min(gm_ok.values(), key=lambda r: r["step_s"]) if gm_ok else None
    cells = [row["case"], str(row["batch"])]
    cells += [fmt_ms(row["gm"][d].get("step_s")) for d in dtypes]
    cells.append(f"{fastest['images_per_s']:,.0f}" if fastest else "-")
    cells += [fmt_ms(row["torch"][m].get("step_s")) for m in modes]
    if modes:
      mode, best = _best_torch(row)
      eager = row["torch"].get("eager", {}).get("step_s")
      cells.append(f"{fmt_ms(best['step_s'])} ({mode})" if best else "-")
      cells.append(f"{eager / fastest['step_s']:.2f}x" if eager and fastest else "-")
      cells.append(f"{best['step_s'] / fastest['step_s']:.2f}x" if best and fastest else "-")
    pf = [f"{'bf16' if d == 'bfloat16' else 'f32'} {r['peak_fraction'] * 100:.0f}%" for d, r in gm_ok.items()
          if r.get("peak_fraction")]
    cells.append(", ".join(pf) or "-")
    mem = fastest.get("memory_bytes") if fastest else None
    cells.append(f"{mem / 2 ** 20:,.0f}" if mem else "-")
    cells.append(f"{fastest['compile_s']:.1f}" if fastest else "-")
    tp = {r.get("params") for r in row["torch"].values() if r.get("params")}
    gp = fastest.get("params") if fastest else None
    mark = "" if not tp or tp == {gp} else " MISMATCH"
    cells.append(f"{gp:,} / {', '.join(f'{p:,}' for p in tp) or '-'}{mark}" if gp else "-")
    print("| " + " | ".join(cells) + " |")
  print(f"\n{header['date']}, {header['device']} ({header['backend']}, {header['devices']} device(s)), "
        f"{header['cpus']} CPUs, jax {header['jax']}, torch {header['torch']}; "
        f"{header['steps']} steps per timed epoch ({header['invert_steps']} for inversion), best of "
        f"the repeats. Peak: {header['peak_source']}.")


if __name__ == "__main__":
  main()
