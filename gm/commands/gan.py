"""eval.py commands for GAN runs, and the seeds' minimax exercise."""

import json
import os

import numpy as np

from gm import minimax as minimax_lib, plots
from gm.commands.base import command, write_json
from gm.data import to_float
from gm.errors import UserError
from gm.metrics import load_judge
from gm.metrics.swd import swd


def _conditional(ctx) -> bool:
  return bool(ctx.config.model.get("num_classes", 0))


@command("digits", "conditional GAN: one image per digit (columns), one fixed noise per row",
         ("gan",), lambda p: (p.add_argument("--rows", type=int, default=4),
                              p.add_argument("--seed", type=int, default=0)),
         applies=_conditional)
def digits(ctx, args):
  family = ctx.family
  if not family.num_classes:
    raise UserError("digits needs a conditional GAN run (model.num_classes > 0)")
  if args.rows <= 0:
    raise UserError("--rows must be > 0")
  k = family.num_classes
  z = family._noise(ctx.key(args.seed), (args.rows, family.noise_dim))  # pylint: disable=protected-access
  z = np.repeat(np.asarray(z), k, axis=0)  # Row r: noise r with every label.
  labels = np.tile(np.arange(k), args.rows)
  imgs = np.asarray(family.images_jit(family.sampling_state(ctx.state).g, z,
                                      family.one_hot(labels)))
  return [plots.save_grid(imgs, ctx.path("digits"), cols=k,
                          title=f"labels 0..{k - 1} (columns), step {ctx.step}")]


@command("gan-score", "MNIST: judge Fréchet distance and KID of samples to the test set (and "
         "label accuracy of a conditional GAN); image folders: sliced Wasserstein distance to the "
         "photos (and FID with eval.inception_weights); for one checkpoint or the whole history; "
         "JSON", ("gan",),
         lambda p: (p.add_argument("--num", type=int, default=2000, help="samples per checkpoint"),
                    p.add_argument("--judge", default="", help="judge run dir (default: eval.judge)"),
                    p.add_argument("--all", action="store_true", help="every checkpoint"),
                    p.add_argument("--seed", type=int, default=0)))
def gan_score(ctx, args):
  test, train = ctx.dataset.test, ctx.dataset.train
  num = min(args.num, len(test["image"]))
  if num < 2:
    raise UserError("--num must be >= 2")
  if ctx.family.uses_judge:
    judge = load_judge(args.judge or ctx.config.eval.get("judge", "runs/classifier_mnist"))
    # The floor to read the numbers against: as many real training images vs the test images.
    reference = {"real_train_vs_test": judge.distances(
        np.asarray(to_float(train["image"][:num])), np.asarray(to_float(test["image"][:num])))}
    what = judge.workdir
  else:  # Image folders: sliced Wasserstein distance; the floor is one half of the photos vs the other.
    judge, what = None, "sliced Wasserstein distance (no judge)"
    real = np.asarray(to_float(test["image"][:num]))
    reference = {"real_half_vs_half": swd(real[:num // 2], real[num // 2:])}
  steps = ctx.steps() if args.all else [ctx.resolve(args.step)]
  records = []
  for step in steps:
    state = ctx.model_at(step)
    scores = ctx.family.judge_metrics(state, judge, ctx.key(args.seed), test, num=num)
    records.append({"step": step, **scores})
    print(json.dumps(records[-1]))
  result = {"judge": what, "num_samples": num, **reference, "scores": records}
  if not args.all:
    return [write_json(ctx.path("gan_score", "json", steps[0]), result)]
  paths = [write_json(os.path.join(ctx.out_dir, "gan_score_history.json"), result)]
  series = {k: [r[k] for r in records] for k in ("frechet", "kid", "label_accuracy", "swd", "fid")
            if k in records[0]}
  paths.append(plots.metric_over_steps(steps, series, os.path.join(
      ctx.out_dir, "gan_score_history.png"), title=f"scores of {num} samples per checkpoint"))
  return paths


@command("minimax", "the seeds' exercise: alternating gradient steps on f(x, y) = x*y; prints "
         "the table of (x_t, y_t) and plots the trajectory (no run needed)",
         args=lambda p: (p.add_argument("--out", default="runs/minimax", help="output directory"),
                         p.add_argument("--x0", type=float, default=1.0),
                         p.add_argument("--y0", type=float, default=1.0),
                         p.add_argument("--lr", type=float, default=1.0),
                         p.add_argument("--steps", type=int, default=6)),
         needs_run=False)
def minimax(ctx, args):
  del ctx
  if args.steps < 1:
    raise UserError("--steps must be >= 1")
  path = minimax_lib.alternating_gradient(x0=args.x0, y0=args.y0, lr=args.lr, steps=args.steps)
  print(" t      x_t      y_t")
  for t, (x, y) in enumerate(path):
    print(f"{t:2d} {x:8.3f} {y:8.3f}")
  os.makedirs(args.out, exist_ok=True)
  table = write_json(os.path.join(args.out, "minimax.json"),
                     {"f": "x*y", "lr": args.lr, "iterates": path.tolist()})
  fig = plots.trajectory(path, os.path.join(args.out, "minimax.png"),
                         title=f"alternating gradient steps on x*y, lr {args.lr:g}")
  return [table, fig]
