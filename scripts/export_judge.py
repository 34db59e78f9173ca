"""Writes a trained MNIST judge (a classifier run) to the .npz file eval commands read.

  python scripts/export_judge.py --workdir runs/classifier_mnist [--out gm/metrics/judge_mnist.npz]

gm ships gm/metrics/judge_mnist.npz (`eval.judge=builtin`), written by this script from a run of
command (3) of the README; the file records where it came from (run directory, step, test accuracy,
date, the machine and code that exported it) and the sha256 of its parameters. It refuses to overwrite a file
unless --force is given.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

from gm import integrity  # pylint: disable=g-import-not-at-top
from gm import judge as judge_lib  # pylint: disable=g-import-not-at-top


def params_digest(judge: judge_lib.Judge) -> str:
  """gm.integrity's content digest of the judge's parameter arrays, named by their paths."""
  import flax  # pylint: disable=g-import-not-at-top
  flat = flax.traverse_util.flatten_dict(judge.params)
  return integrity.npz_digest({"/".join(k): np.asarray(v) for k, v in flat.items()})


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", required=True, help="a trained classifier run (command (3))")
  ap.add_argument("--out", default=judge_lib.BUILTIN)
  ap.add_argument("--force", action="store_true", help="overwrite --out")
  args = ap.parse_args()
  if os.path.exists(args.out) and not args.force:
    raise SystemExit(f"{args.out} exists; pass --force to replace it")
  judge = judge_lib.Judge(args.workdir)
  with open(os.path.join(args.workdir, "metrics.jsonl")) as f:
    last = [json.loads(l) for l in f if l.strip()][-1]
  import jax  # pylint: disable=g-import-not-at-top
  version = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                           text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout
  provenance = {"workdir": os.path.relpath(args.workdir), "step": int(judge.step),
                "test_accuracy": last["test/accuracy"], "date": datetime.date.today().isoformat(),
                "exported_on": f"{os.cpu_count()}-core {platform.processor() or 'CPU'}, JAX "
                               f"{jax.__version__}, {jax.devices()[0].device_kind}",
                "exported_with_code": version.strip() or "unknown",
                "params_sha256": params_digest(judge)}
  judge_lib.export(judge, args.out, provenance)
  print(json.dumps(provenance, indent=1))


if __name__ == "__main__":
  main()
