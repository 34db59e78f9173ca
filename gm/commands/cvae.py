"""eval.py commands for the conditional VAE on the 3x3 canvas."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from gm import plots
from gm.commands.base import command, write_json
from gm.data.canvas import CELL, GRID, condition
from gm.errors import UserError
from gm.metrics import load_judge

ALL_CELLS = np.arange(GRID * GRID)


def _panels(ctx, z: np.ndarray, label: int) -> np.ndarray:
  """Decodes each z [N, D] with `label` at all 9 cells -> [N, 42*3... ] list of 3x3 tiles."""
  n = len(z)
  cond = condition(np.full(9 * n, label), np.tile(ALL_CELLS, n))
  imgs = np.asarray(ctx.family.images(ctx.state.params, np.repeat(z, 9, axis=0), cond))
  return imgs.reshape(n, 9, *imgs.shape[1:])


def _save_panels(panels, path, title):
  """Panels [P, 9, H, W, 1] -> one PNG with the 3x3 grids side by side."""
  tiles = np.stack([plots.tile(p, GRID).astype(np.float32) / 255 for p in panels])
  return plots.save_grid(tiles, path, cols=len(tiles), title=title, scale=2)


@command("cvae-positions", "encode test examples, decode their z with their label at all 9 cells",
         ("cvae",), lambda p: p.add_argument("--index", default="0,1,2,3",
                                             help="comma-separated test indices"))
def cvae_positions(ctx, args):
  test = ctx.dataset.test
  idx = [int(i) for i in args.index.split(",")]
  if any(not 0 <= i < len(test["image"]) for i in idx):
    raise UserError(f"--index must be in [0, {len(test['image'])})")
  batch = {k: v[idx] for k, v in test.items()}
  z, _ = ctx.family.embed(ctx.state.params, ctx.family.inputs(batch), batch["cond"])
  panels = []
  for i, zi in enumerate(np.asarray(z)):
    grid = _panels(ctx, zi[None], int(batch["label"][i]))[0]
    original = np.zeros_like(grid)
    original[4] = ctx.family.inputs({"image": batch["image"][i:i + 1]})[0]  # centre of its panel
    panels += [original, grid]
  return [_save_panels(panels, ctx.path("cvae_positions"),
                       "test example (centre) | its z decoded with its label at all 9 cells")]


@command("cvae-prior", "z ~ N(0, I) decoded with a label at all 9 cells, several z side by side",
         ("cvae",), lambda p: (p.add_argument("--label", type=int, default=3),
                                p.add_argument("--num", type=int, default=4, help="number of z"),
                                p.add_argument("--seed", type=int, default=0)))
def cvae_prior(ctx, args):
  if not 0 <= args.label <= 9:
    raise UserError("--label must be a digit 0..9")
  z = np.asarray(jax.random.normal(ctx.key(args.seed), (args.num, ctx.family.latent_dim)))
  return [_save_panels(_panels(ctx, z, args.label), ctx.path(f"cvae_prior_label{args.label}"),
                       f"digit {args.label}: {args.num} draws of z, each at the 9 cells")]


def crop_cells(images: np.ndarray, cells: np.ndarray) -> np.ndarray:
  """[N, 42, 42, 1] canvases -> the requested 14x14 cells upsampled to [N, 28, 28, 1]."""
  n = len(images)
  grid = images[..., 0].reshape(n, GRID, CELL, GRID, CELL).transpose(0, 1, 3, 2, 4)
  cell = grid[np.arange(n), cells // GRID, cells % GRID]          # [N, 14, 14]
  return cell.repeat(2, 1).repeat(2, 2)[..., None]


def ink_per_cell(images: np.ndarray) -> np.ndarray:
  """[N, 42, 42, 1] -> total intensity per cell [N, 9]."""
  n = len(images)
  return images[..., 0].reshape(n, GRID, CELL, GRID, CELL).sum((2, 4)).reshape(n, GRID * GRID)


def score_canvases(judge, images, labels, cells):
  """Label accuracy on the requested cell, position accuracy, ink outside it."""
  ink = ink_per_cell(images)
  pred = judge(crop_cells(images, cells))["labels"]
  inside = ink[np.arange(len(ink)), cells]
  return {"label_accuracy": float((pred == labels).mean()),
          "position_accuracy": float((ink.argmax(1) == cells).mean()),
          "ink_outside": float(np.mean(1 - inside / np.maximum(ink.sum(1), 1e-8))),
          "label_accuracy_per_digit": [float((pred == labels)[labels == d].mean()) for d in range(10)],
          "position_accuracy_per_cell": [float((ink.argmax(1) == cells)[cells == c].mean())
                                         for c in range(9)]}


@command("cvae-score", "judge label accuracy on the requested cell, position accuracy and ink "
         "outside it, over many z and all labels and cells; JSON", ("cvae",),
         lambda p: (p.add_argument("--num", type=int, default=20, help="z per (label, cell)"),
                    p.add_argument("--judge", default="", help="judge run dir (default: eval.judge)"),
                    p.add_argument("--seed", type=int, default=0)))
def cvae_score(ctx, args):
  judge = load_judge(args.judge or ctx.config.eval.get("judge", "runs/classifier_mnist"))
  labels = np.repeat(np.arange(10), 9 * args.num)
  cells = np.tile(np.repeat(ALL_CELLS, args.num), 10)
  z = jax.random.normal(ctx.key(args.seed), (len(labels), ctx.family.latent_dim))
  decode = jax.jit(ctx.family.images)
  imgs = np.concatenate([np.asarray(decode(ctx.state.params, z[i:i + 1000],
                                           jnp.asarray(condition(labels[i:i + 1000], cells[i:i + 1000]))))
                         for i in range(0, len(labels), 1000)])
  test = ctx.dataset.test
  real = score_canvases(judge, np.asarray(ctx.family.inputs(test)), test["label"], test["cell"])
  result = {"step": ctx.step, "num_samples": int(len(labels)), "judge": judge.workdir,
            **score_canvases(judge, imgs, labels, cells),
            "real_test_canvases": {k: real[k] for k in ("label_accuracy", "position_accuracy",
                                                         "ink_outside")}}
  print(json.dumps({k: v for k, v in result.items() if not k.endswith(("digit", "cell"))}, indent=2))
  return [write_json(ctx.path("cvae_score", "json"), result)]
