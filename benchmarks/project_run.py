r"""How long would a whole training run take? A short real run of `train.py`, projected.

  python benchmarks/project_run.py --config configs/dcgan_cake.py --epochs 200 \
      --target_epochs 3000 --workdir /tmp/cake_projection -- --config.data.dir=<photos>
  python benchmarks/project_run.py --config configs/dcgan_mnist.py --epochs 3 \
      --workdir /tmp/mnist_epoch -- --config.data.source=idx --config.data.dir=<mnist idx dir>

Runs `python train.py --config <config> --workdir <workdir> --config.train.num_epochs=<epochs>`
plus the overrides after `--`, exactly as a user would (the config's evaluation, judge and
checkpoint schedule included), timing the whole process. From the per-epoch records of
`metrics.jsonl` it then prints:

- the steady step time (median of `time/epoch_s` over epochs after the first, which holds the
  compile) and the epoch time it gives;
- the steady cost of a whole epoch, evaluation, judge scores and checkpoints included: the
  growth of `time/session_s` over the last `--cycle` epochs (default: the least common multiple
  of the config's checkpoint, eval and score periods, if at most half of `--epochs`), divided by
  `--cycle`;
- the projection to `--target_epochs`: the measured process time plus the remaining epochs at
  that steady whole-epoch cost, and, separately, the training steps alone.

The summary also says what the steady window holds (evaluations, judge scores, checkpoints),
so a window too short for the schedule shows. With `--time_limit` a run stopped early still
gives a projection from the epochs it finished. The workdir must not exist (nothing is
overwritten); the run stays there for inspection.
"""

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", required=True, help="config file[:arg], as for train.py")
  p.add_argument("--workdir", required=True, help="a new run directory")
  p.add_argument("--epochs", type=int, required=True, help="epochs to really run")
  p.add_argument("--target_epochs", type=int, default=0,
                 help="epochs to project to (default: the config's train.num_epochs)")
  p.add_argument("--cycle", type=int, default=0, help="epochs of the steady window (default: "
                 "the config's checkpoint/eval/score period, see above)")
  p.add_argument("--time_limit", type=float, default=0, help="seconds; then train.py gets "
                 "SIGTERM (it finishes the epoch, checkpoints and exits) and the projection uses "
                 "the epochs done")
  p.add_argument("--grace_s", type=float, default=30, help="after the time limit, seconds to wait "
                 "for the epoch in progress before train.py is killed")
  p.add_argument("--json", default="", help="also write the summary here")
  p.add_argument("overrides", nargs="*", help="train.py flags after `--`")
  return p.parse_args(argv)


def schedule_period(train_cfg: dict, eval_cfg: dict) -> int:
  """Least common multiple of the checkpoint, evaluation and score periods (in epochs)."""
  periods = [train_cfg.get("checkpoint_every", 1), train_cfg.get("eval_every", 1),
             eval_cfg.get("score_every", 0)]
  out = 1
  for p in periods:
    if p:
      out = out * int(p) // math.gcd(out, int(p))
  return out


def project(records, wall_s: float, target_epochs: int, cycle: int, steps_per_epoch: int,
            checkpoint_every: int = 1) -> dict:
  """Steady costs and the projected run time from one run's per-epoch records.

  Args:
    records: metrics.jsonl rows of one uninterrupted run from epoch 1, in order, each with
      "epoch", "time/epoch_s" and "time/session_s".
    wall_s: the whole train.py process time (start-up, compile and final checkpoint included).
    target_epochs: epochs to project to.
    cycle: epochs of the steady whole-epoch window at the end (>= 1, < len(records)).
    steps_per_epoch: optimizer steps per epoch.
    checkpoint_every: the run's checkpoint period in epochs (epoch e's checkpoint is written
      after its record, so it falls in the window when N - cycle <= e < N).

  Returns:
    A dict of seconds (and the step time), see the module docstring.
  """
  epochs = [r["epoch"] for r in records]
  if epochs != list(range(1, len(records) + 1)):
    raise ValueError(f"need one uninterrupted run from epoch 1; got epochs {epochs[:5]}...")
  if not 1 <= cycle < len(records):
    raise ValueError(f"the steady window ({cycle} epochs) must be shorter than the run "
                     f"({len(records)} epochs): run more --epochs or give a smaller --cycle")
  window = records[len(records) - cycle:]
  steady = [r["time/epoch_s"] for r in records[1:]]
  epoch_s = statistics.median(steady)
  session = [r["time/session_s"] for r in records]
  whole_epoch_s = (session[-1] - session[-1 - cycle]) / cycle
  done = len(records)
  return {
      "epochs_run": done, "wall_s": wall_s, "cycle": cycle,
      "step_ms": 1e3 * epoch_s / steps_per_epoch, "epoch_s": epoch_s,
      "whole_epoch_s": whole_epoch_s,
      "window_evals": sum(any(k.startswith("test/") for k in r) for r in window),
      "window_scores": sum(any(not k.startswith(("train/", "test/", "time/")) and
                               k not in ("step", "epoch") for k in r) for r in window),
      "window_checkpoints": sum(e % checkpoint_every == 0 for e in range(done - cycle, done)),
      "target_epochs": target_epochs,
      "projected_s": wall_s + (target_epochs - done) * whole_epoch_s,
      "projected_steps_only_s": target_epochs * epoch_s,
  }


def main(argv=None):
  args = parse_args(argv)
  workdir = os.path.abspath(args.workdir)
  if os.path.exists(workdir):
    sys.exit(f"error: {workdir} exists; give a new --workdir (nothing is overwritten)")
  cmd = [sys.executable, "train.py", f"--config={args.config}", f"--workdir={workdir}",
         f"--config.train.num_epochs={args.epochs}", "--config.train.progress=False",
         *args.overrides]
  print("+", " ".join(cmd), flush=True)
  t0 = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=ROOT)
  try:
    rc = proc.wait(timeout=args.time_limit or None)
  except subprocess.TimeoutExpired:
    print(f"time limit {args.time_limit:.0f} s: stopping train.py after its current epoch",
          flush=True)
    proc.send_signal(signal.SIGTERM)
    try:
      rc = proc.wait(timeout=args.grace_s)
    except subprocess.TimeoutExpired:
      print(f"train.py still in its epoch after {args.grace_s:.0f} s more: killed", flush=True)
      proc.kill()
      rc = proc.wait()
    rc = 0 if rc in (0, 130, -signal.SIGTERM, -signal.SIGKILL) else rc  # Stopped by us.
  wall_s = time.perf_counter() - t0
  if rc:
    sys.exit(f"error: train.py exited with {rc}")
  if not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    sys.exit(f"error: train.py finished no epoch in {wall_s:.0f} s; raise --time_limit")
  with open(os.path.join(workdir, "config.json")) as f:
    cfg = json.load(f)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f if line.strip()]
  target = args.target_epochs or int(cfg["train"]["num_epochs"])
  cycle = args.cycle or schedule_period(cfg["train"], cfg.get("eval", {}))
  if not args.cycle and cycle > args.epochs // 2:
    cycle = max(1, args.epochs // 2)
    print(f"note: the config's checkpoint/eval/score period is longer than half the run; "
          f"steady window {cycle} epochs (run more --epochs for the whole schedule)")
  if len(records) < args.epochs and cycle >= len(records):
    cycle = max(1, len(records) // 2)
    print(f"note: stopped after {len(records)} epochs; steady window {cycle} epochs")
  steps = records[0]["step"] // records[0]["epoch"]
  try:
    out = project(records, wall_s, target, cycle, steps,
                  int(cfg["train"].get("checkpoint_every", 1)))
  except ValueError as e:
    sys.exit(f"error: {e}")
  out.update(config=args.config, overrides=args.overrides, steps_per_epoch=steps,
             batch_size=cfg["train"]["batch_size"])
  print(f"{args.config}: {out['epochs_run']} epochs of {steps} steps (batch "
        f"{out['batch_size']}) in {wall_s:.1f} s, start-up and compile included")
  print(f"  steady step {out['step_ms']:.3f} ms; epoch {out['epoch_s']:.3f} s of steps, "
        f"{out['whole_epoch_s']:.3f} s with evaluation, judge and checkpoints "
        f"(last {cycle} epochs: {out['window_evals']} evaluations, {out['window_scores']} judge "
        f"scores, {out['window_checkpoints']} checkpoints)")
  print(f"  projected {target} epochs: {out['projected_s']:.0f} s = "
        f"{out['projected_s'] / 60:.1f} min ({out['projected_steps_only_s'] / 60:.1f} min of "
        f"training steps alone)")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=1)
  return out


if __name__ == "__main__":
  main()
