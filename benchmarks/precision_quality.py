r"""Does bfloat16 compute change GAN training quality? Several seeds per dtype, judge scores, a test.

  python benchmarks/precision_quality.py --data_dir <mnist idx dir>
  python benchmarks/precision_quality.py --config configs/dcgan_mnist.py --seeds 0,1,2 \
      --data_dir <mnist idx dir> --out runs/precision_dcgan

For every (compute dtype, seed) it trains `python train.py --config <config>
--config.model.compute_dtype=<dtype> --config.seed=<seed>` into `<out>/<dtype>_s<seed>` and
scores every checkpoint with `python eval.py gan-score --all` (judge Fréchet distance of
2000 samples to the MNIST test set). It then prints, per dtype, the mean and standard
deviation over seeds of the last checkpoint's score and of the mean of the last three, the
bf16 - f32 difference of the means and a two-sided exact permutation p-value for it (all
ways of splitting the runs into two groups of the same sizes).

A run that already has its scores is read, not retrained; a run directory with a partial
run is resumed by train.py. Nothing is deleted.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="configs/gan_mlp_mnist.py", help="a GAN config on MNIST")
  p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
  p.add_argument("--dtypes", default="float32,bfloat16", help="first one is the reference")
  p.add_argument("--out", default="runs/precision_quality", help="parent of the run directories")
  p.add_argument("--data_dir", default="", help="directory of the four MNIST idx .gz files "
                 "(sets data.source=idx); default: the config's data source")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="extra config override for every run, e.g. train.num_epochs=5")
  p.add_argument("--num", type=int, default=2000, help="samples per checkpoint for gan-score")
  p.add_argument("--json", default="", help="also write the summary here")
  return p.parse_args(argv)


def permutation_p(a, b) -> float:
  """Two-sided exact permutation p-value of mean(b) - mean(a).

  Args:
    a, b: 1-D sequences of scores of the two groups.

  Returns:
    The fraction of all splits of a + b into groups of len(a) and len(b) whose difference of
    means is at least as large in magnitude as the observed one (the observed split included).
  """
  pooled = np.concatenate([np.asarray(a, np.float64), np.asarray(b, np.float64)])
  n, total = len(a), pooled.sum()
  observed = abs(np.mean(b) - np.mean(a))
  hits = count = 0
  for idx in itertools.combinations(range(len(pooled)), n):
    sa = pooled[list(idx)].sum()
    diff = abs((total - sa) / len(b) - sa / n)
    hits += diff >= observed - 1e-12 * max(1.0, observed)
    count += 1
  return hits / count


def summarize(scores: dict) -> dict:
  """Per-dtype mean/sd over seeds and the difference to the first dtype, for each statistic.

  Args:
    scores: {dtype: {seed: {"last": float, "last3": float}}}, the first dtype the reference.

  Returns:
    {statistic: {dtype: {"mean", "sd", "values"}, "diff": {dtype: {"mean_diff", "p"}}}}.
  """
  dtypes = list(scores)
  out = {}
  for stat in ("last", "last3"):
    vals = {d: [scores[d][s][stat] for s in sorted(scores[d])] for d in dtypes}
    entry = {d: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                 "values": v} for d, v in vals.items()}
    ref = vals[dtypes[0]]
    entry["diff"] = {d: {"mean_diff": float(np.mean(vals[d]) - np.mean(ref)),
                         "p": permutation_p(ref, vals[d])} for d in dtypes[1:]}
    out[stat] = entry
  return out


def _run(cmd):
  print("+", " ".join(cmd), flush=True)
  subprocess.run(cmd, cwd=ROOT, check=True)


def run_one(args, dtype, seed) -> dict:
  """Trains (or resumes) and scores one run; returns its judge Fréchet distances."""
  workdir = os.path.abspath(os.path.join(args.out, f"{dtype}_s{seed}"))
  history = os.path.join(workdir, "eval", "gan_score_history.json")
  if not os.path.exists(history):
    overrides = [f"--config.model.compute_dtype={dtype}", f"--config.seed={seed}"]
    if args.data_dir:
      overrides += ["--config.data.source=idx", f"--config.data.dir={os.path.abspath(args.data_dir)}"]
    overrides += [f"--config.{kv}" for kv in args.set]
    _run([sys.executable, "train.py", f"--config={args.config}", f"--workdir={workdir}", *overrides])
    _run([sys.executable, "eval.py", "gan-score", "--workdir", workdir, "--all", "--num", str(args.num)])
  with open(history) as f:
    records = json.load(f)["scores"]
  fd = [r["frechet"] for r in records]
  return {"last": fd[-1], "last3": float(np.mean(fd[-3:])), "steps": [r["step"] for r in records],
          "frechet": fd}


def main(argv=None):
  args = parse_args(argv)
  dtypes = [d for d in args.dtypes.split(",") if d]
  seeds = [int(s) for s in args.seeds.split(",") if s]
  if len(dtypes) < 2 or not seeds:
    sys.exit("error: give at least two --dtypes and one seed")
  scores = {d: {} for d in dtypes}
  for s in seeds:  # Seed-major, so a run stopped part-way leaves matched pairs to resume from.
    for d in dtypes:
      scores[d][s] = run_one(args, d, s)
  summary = summarize(scores)
  print(f"\njudge Fréchet distance, {args.config}, seeds {seeds} (lower is better)")
  print("| compute dtype | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd (last) "
        "| mean ± sd (mean of last 3) |")
  print("|---" * (len(seeds) + 3) + "|")
  for d in dtypes:
    cells = [f"{scores[d][s]['last']:.1f} ({scores[d][s]['last3']:.1f})" for s in seeds]
    lst, l3 = summary["last"][d], summary["last3"][d]
    print(f"| {d} | " + " | ".join(cells) + f" | {lst['mean']:.1f} ± {lst['sd']:.1f} "
          f"| {l3['mean']:.1f} ± {l3['sd']:.1f} |")
  for d in dtypes[1:]:
    for stat in ("last", "last3"):
      diff = summary[stat]["diff"][d]
      print(f"{d} - {dtypes[0]} ({stat}): {diff['mean_diff']:+.1f}, exact permutation p = {diff['p']:.3f}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"config": args.config, "seeds": seeds, "scores": scores, "summary": summary}, f, indent=1)


if __name__ == "__main__":
  main()
