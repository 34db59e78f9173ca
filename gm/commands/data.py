"""eval.py commands that look at the training data: before training (--config) or for a run."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from gm import plots
from gm.backend import runtime
from gm.commands.base import command
from gm.data import augment as augment_lib, to_float
from gm.errors import UserError


def _out(ctx, name: str) -> str:
  return os.path.join(ctx.out_dir, f"{name}.png")


@command("data-grid", "a grid of the loaded training images (as the model sees them)",
         args=lambda p: p.add_argument("--num", type=int, default=64), config_ok=True)
def data_grid(ctx, args):
  ds = ctx.dataset
  n = min(max(args.num, 1), len(ds.train["image"]))
  info = ds.info
  skipped = info.get("skipped", [])
  print(f"{info['num_train']} training images from {info.get('path', info['source'])}"
        + (f"; {len(skipped)} unreadable file(s) skipped: {', '.join(skipped[:5])}" if skipped else ""))
  return [plots.save_grid(np.asarray(to_float(ds.train["image"][:n])), _out(ctx, "data_grid"),
                          cols=8, title=f"{n} of {info['num_train']} training images")]


@command("augment-grid", "the same few training images drawn many times with the run's "
         "augmentation (first column: the original)",
         args=lambda p: (p.add_argument("--images", type=int, default=4),
                         p.add_argument("--draws", type=int, default=7),
                         p.add_argument("--diff", action="store_true",
                                        help="also apply the DiffAugment policy (augment.diff)"),
                         p.add_argument("--seed", type=int, default=0)),
         config_ok=True)
def augment_grid(ctx, args):
  cfg = ctx.config.augment if "augment" in ctx.config else None
  if cfg is None or not (cfg.flip or cfg.zoom or cfg.rotate or (args.diff and cfg.diff)):
    raise UserError("this config has no augmentation on (augment.flip / zoom / rotate / diff); "
                    "set e.g. --set augment.zoom=0.1")
  real, diff = augment_lib.from_config(cfg)
  x = jnp.asarray(to_float(ctx.dataset.train["image"][:max(args.images, 1)]))  # [I, H, W, C]
  fn = runtime.jit(lambda x, k: diff(real(x, k), jax.random.fold_in(k, 1)) if args.diff
               else real(x, k))
  draws = [np.asarray(fn(x, jax.random.fold_in(jax.random.PRNGKey(args.seed), d)))
           for d in range(args.draws)]
  rows = np.stack([np.asarray(x)] + draws, 1)  # [I, 1 + draws, H, W, C]
  what = f"flip={cfg.flip}, zoom={cfg.zoom}, rotate={cfg.rotate}" + (
      f", diff={cfg.diff}" if args.diff else "")
  return [plots.save_grid(np.clip(rows.reshape(-1, *rows.shape[2:]), 0, 1),
                          _out(ctx, "augment_grid"), cols=1 + args.draws, title=what)]
