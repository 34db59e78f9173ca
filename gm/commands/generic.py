"""eval.py commands for several families: loss curves, the evolution GIF, sample grids."""

import glob
import logging
import os

import numpy as np

from gm import integrity, plots
from gm.backend import runtime
from gm.commands.base import command
from gm.errors import UserError
from gm.train.rundir import read_metrics

log = logging.getLogger("gm")


@command("loss-curves", "training and test metrics over epochs from metrics.jsonl",
         args=lambda p: p.add_argument("--keys", default="", help="comma-separated metric names "
                                       "(default: every train/ and test/ metric)"))
def loss_curves(ctx, args):
  records = read_metrics(ctx.workdir)
  keys = args.keys.split(",") if args.keys else sorted(
      {k for r in records for k in r if k.startswith(("train/", "test/"))})
  if not keys:
    raise UserError("metrics.jsonl has no train/ or test/ metrics yet")
  path = os.path.join(ctx.out_dir, "loss_curves.png")
  return [plots.curves(records, keys, path, title=f"{ctx.config.family}: {ctx.workdir}")]


def evenly_spaced(steps, num: int):
  """`num` of `steps` at evenly spaced positions, first and last included (all if num <= 0;
  the last if num == 1)."""
  if num <= 0 or num >= len(steps):
    return list(steps)
  if num == 1:
    return [steps[-1]]
  return [steps[round(i * (len(steps) - 1) / (num - 1))] for i in range(num)]


@command("evolution", "the per-checkpoint sample grids as an animated GIF (and with --strip N, "
         "one PNG row of the first N fixed-noise samples per checkpoint)",
         args=lambda p: (p.add_argument("--ms", type=int, default=400, help="ms per frame"),
                         p.add_argument("--strip", type=int, default=0,
                                        help="also evolution_strip.png with N samples per row"),
                         p.add_argument("--rows", type=int, default=0,
                                        help="strip: this many checkpoints, evenly spaced from the "
                                        "first to the last (default: all)")))
def evolution(ctx, args):
  if args.ms > 655350:  # GIF frame delays are 16-bit counts of 10 ms.
    raise UserError(f"--ms {args.ms}: a GIF frame lasts at most 655350 ms")
  frames = sorted(glob.glob(os.path.join(ctx.workdir, "samples", "step_*.png")))
  if not frames:
    raise UserError(f"no sample grids in {ctx.workdir}/samples; train first")
  paths = [plots.save_gif(frames, os.path.join(ctx.out_dir, "evolution.gif"), args.ms)]
  if args.strip > 0:
    path = os.path.join(ctx.workdir, "monitor.npz")
    try:
      inputs = {k: v[:args.strip] for k, v in integrity.read_npz(path).items()}
    except ValueError as e:
      raise UserError(f"{path} is damaged ({e}); rerun train.py on this run (it moves the file "
                      "aside and draws the same inputs again from config.seed), or restore it from "
                      "a copy") from None
    draw = runtime.jit(ctx.family.monitor_images)
    steps = evenly_spaced(ctx.steps(), args.rows)
    rows = [np.asarray(draw(ctx.model_at(step), inputs)) for step in steps]
    paths.append(plots.save_grid(np.concatenate(rows), os.path.join(ctx.out_dir, "evolution_strip.png"),
                                 cols=len(rows[0]), title=f"rows: steps {', '.join(map(str, steps))}",
                                 scale=2))
  return paths


@command("samples", "a grid of samples: VAE prior draws, GAN noise draws", ("vae", "gan"),
         lambda p: (p.add_argument("--num", type=int, default=64),
                    p.add_argument("--seed", type=int, default=0),
                    p.add_argument("--label", type=int, default=-1,
                                   help="conditional GAN: this digit for every sample "
                                   "(default: digits in turn)")))
def samples(ctx, args):
  if args.num <= 0:
    raise UserError("--num must be > 0")
  classes = getattr(ctx.family, "num_classes", 0)
  if args.label >= 0 and not classes:
    raise UserError(f"--label applies to conditional runs; this {ctx.config.family} run has no "
                    "classes (leave --label out)")
  if not -1 <= args.label < max(classes, 1):
    raise UserError(f"--label {args.label}: a class in 0..{classes - 1}, or -1 for the classes "
                    "in turn")
  labels = None
  if classes:
    labels = np.full(args.num, args.label) if args.label >= 0 else np.arange(args.num) % classes
  imgs = ctx.sample(args.num, args.seed, labels)  # `gm.api.Run.sample`
  name = "samples" if args.label < 0 else f"samples_label{args.label}"
  cols = classes if classes and args.label < 0 else 8
  return [plots.save_grid(imgs, ctx.path(name), cols=cols, title=f"step {ctx.step}")]
