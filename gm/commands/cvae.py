"""eval.py commands for the conditional VAE on the 3x3 canvas."""

import json

import jax
import numpy as np

from gm import plots
from gm.commands.base import command, parse_ints, write_json
from gm.data.canvas import GRID, condition
from gm.errors import UserError
from gm.judge import load_judge
from gm.metrics.canvas import sample_requests, score_canvases

ALL_CELLS = np.arange(GRID * GRID)


def _panels(ctx, z: np.ndarray, label: int) -> np.ndarray:
  """Decodes each z [N, D] with `label` at all 9 cells -> images [N, 9, H, W, 1]."""
  n = len(z)
  cond = condition(np.full(9 * n, label), np.tile(ALL_CELLS, n))
  imgs = np.asarray(ctx.family.images(ctx.state.params, np.repeat(z, 9, axis=0), cond))
  return imgs.reshape(n, 9, *imgs.shape[1:])


def _panel_tile(panel: np.ndarray) -> np.ndarray:
  """A panel: 9 images [9, H, W, 1] as a 3x3 tile, or one canvas [H, W, 1] scaled to that size."""
  if panel.ndim == 4:
    return plots.tile(panel, GRID).astype(np.float32) / 255
  big = panel.repeat(GRID, 0).repeat(GRID, 1)
  pad = GRID + 1  # tile() puts 1-pixel borders between and around the 3x3 images
  return np.pad(big, ((pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)),
                constant_values=1.0)


def _save_panels(panels, path, title):
  """Panels side by side in one PNG."""
  tiles = np.stack([_panel_tile(np.asarray(p)) for p in panels])
  return plots.save_grid(tiles, path, cols=len(tiles), title=title, scale=2)


@command("cvae-positions", "encode test examples, decode their z with their label at all 9 cells",
         ("cvae",), lambda p: p.add_argument("--index", default="0,2,4,6",
                                             help="comma-separated test indices (consecutive "
                                                  "indices are placements of one digit)"))
def cvae_positions(ctx, args):
  test = ctx.dataset.test
  idx = parse_ints(args.index, "index", example="0,2,4,6")
  if any(not 0 <= i < len(test["image"]) for i in idx):
    raise UserError(f"--index must be in [0, {len(test['image'])})")
  batch = {k: v[idx] for k, v in test.items()}
  x = ctx.family.inputs(batch)
  z, _ = ctx.family.embed(ctx.state.params, x, batch["cond"])
  panels = []
  for i, zi in enumerate(np.asarray(z)):
    panels += [np.asarray(x[i]), _panels(ctx, zi[None], int(batch["label"][i]))[0]]
  return [_save_panels(panels, ctx.path("cvae_positions"),
                       "test canvas | its z decoded with its label at all 9 cells")]


def _add_temperature(p):
  p.add_argument("--temperature", type=float, default=1.0,
                 help="z ~ N(0, t^2 I); 1 is the prior, lower stays nearer its mode; files of "
                      "t != 1 are named ..._t<t>_step<N>")


def _temperature(args) -> float:
  if not args.temperature >= 0:
    raise UserError(f"--temperature must be >= 0, got {args.temperature}")
  return float(args.temperature)


def _suffix(temperature: float) -> str:
  return "" if temperature == 1 else f"_t{temperature:g}"


@command("cvae-prior", "z ~ N(0, I) decoded with a label at all 9 cells, several z side by side",
         ("cvae",), lambda p: (p.add_argument("--label", type=int, default=3),
                                p.add_argument("--num", type=int, default=4, help="number of z"),
                                p.add_argument("--seed", type=int, default=0),
                                _add_temperature(p)))
def cvae_prior(ctx, args):
  if not 0 <= args.label <= 9:
    raise UserError("--label must be a digit 0..9")
  t = _temperature(args)
  z = t * np.asarray(jax.random.normal(ctx.key(args.seed), (args.num, ctx.family.latent_dim)))
  at = "" if t == 1 else f" (z ~ N(0, {t:g}^2 I))"
  return [_save_panels(_panels(ctx, z, args.label),
                       ctx.path(f"cvae_prior_label{args.label}{_suffix(t)}"),
                       f"digit {args.label}: {args.num} draws of z{at}, each at the 9 cells")]


@command("cvae-score", "judge label accuracy on the requested cell, position accuracy and ink "
         "outside it, over many z and all labels and cells; JSON", ("cvae",),
         lambda p: (p.add_argument("--num", type=int, default=20, help="z per (label, cell)"),
                    p.add_argument("--judge", default="", help="judge: run dir, .npz or builtin (default: eval.judge)"),
                    p.add_argument("--seed", type=int, default=0),
                    _add_temperature(p)))
def cvae_score(ctx, args):
  t = _temperature(args)
  judge = load_judge(args.judge or ctx.config.eval.judge)
  labels, cells, imgs = sample_requests(ctx.family, ctx.state, ctx.key(args.seed), args.num, t)
  test = ctx.dataset.test
  real = score_canvases(judge, np.asarray(ctx.family.inputs(test)), test["label"], test["cell"])
  result = {"step": ctx.step, "num_samples": int(len(labels)), "temperature": t,
            "judge": judge.workdir,
            **score_canvases(judge, imgs, labels, cells),
            "real_test_canvases": {k: real[k] for k in ("label_accuracy", "position_accuracy",
                                                         "ink_outside")}}
  print(json.dumps({k: v for k, v in result.items() if not k.endswith(("digit", "cell"))}, indent=2))
  return [write_json(ctx.path(f"cvae_score{_suffix(t)}", "json"), result)]
