"""eval.py commands for AE and VAE runs: the plots of the reports."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from gm import plots
from gm.backend import runtime
from gm.commands import invert as invert_cmds
from gm.commands.base import command, parse_floats, parse_ints, write_json
from gm.data import to_float
from gm.errors import UserError

AE_FAMILIES = ("ae", "vae")


def _test_codes(ctx, num: int):
  """(codes [N, D], std [N, D] or None, labels [N]) of the first `num` test images."""
  test = ctx.dataset.test
  num = min(num or len(test["image"]), len(test["image"]))
  x = to_float(jnp.asarray(test["image"][:num]), ctx.config.data.binarize)
  embed = runtime.jit(ctx.family.embed)
  outs = [embed(ctx.state.params, x[i:i + 1000]) for i in range(0, num, 1000)]
  z = np.concatenate([np.asarray(o[0]) for o in outs])
  std = None if outs[0][1] is None else np.concatenate([np.asarray(o[1]) for o in outs])
  return z, std, test["label"][:num]


def _check_2d(ctx, what):
  if ctx.family.latent_dim != 2:
    raise UserError(f"{what} draws a 2-D latent space; this run has latent_dim "
                    f"{ctx.family.latent_dim}")


@command("latent-space", "test set encoded to 2-D, coloured by digit", AE_FAMILIES,
         lambda p: (p.add_argument("--num", type=int, default=0, help="test images (0 = all)"),
                    p.add_argument("--std", action="store_true",
                                   help="VAE: ±1 posterior std error bars")))
def latent_space(ctx, args):
  _check_2d(ctx, "latent-space")
  z, std, labels = _test_codes(ctx, args.num)
  if args.std and std is None:
    raise UserError("--std needs a VAE run (an AE has no posterior std)")
  what = "posterior mean" if std is not None else "code"
  return [plots.latent_scatter(z, labels, ctx.path("latent_space"), std if args.std else None,
                               title=f"{ctx.config.family}: test {what}s, step {ctx.step}")]


def _box_from_data(ctx):
  z, _, _ = _test_codes(ctx, 0)
  lo, hi = np.percentile(z, 1, axis=0), np.percentile(z, 99, axis=0)
  return [lo[0], hi[0], lo[1], hi[1]]


@command("latent-grid", "decoded images on an n x n grid over a latent box", AE_FAMILIES,
         lambda p: (p.add_argument("--n", type=int, default=20),
                    p.add_argument("--box", default="",
                                   help="x0,x1,y0,y1 (default: 1st-99th percentile of test codes)")))
def latent_grid(ctx, args):
  _check_2d(ctx, "latent-grid")
  box = parse_floats(args.box, 4, "box") if args.box else _box_from_data(ctx)
  xs, ys = np.linspace(box[0], box[1], args.n), np.linspace(box[2], box[3], args.n)
  zz = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)  # row = z[1]
  imgs = np.asarray(ctx.family.images_jit(ctx.state.params, zz))
  imgs = imgs.reshape(args.n, args.n, *imgs.shape[1:])
  title = f"{ctx.config.family} latent grid [{box[0]:.2g},{box[1]:.2g}]x[{box[2]:.2g},{box[3]:.2g}]"
  return [plots.image_grid_axes(imgs, ctx.path("latent_grid"), box, title)]


def _pairs(ctx, args):
  """Test-index pairs from --pairs 'i:j,...' or --digits 'a:b,...' (first of each digit)."""
  labels = ctx.dataset.test["label"]
  if args.pairs:
    pairs = [tuple(parse_ints(p, "pairs", ":", 2, "0:1,2:3")) for p in args.pairs.split(",")]
  else:
    first = {}
    for d in range(10):
      hits = np.flatnonzero(labels == d)
      if len(hits):
        first[d] = int(hits[0])
    pairs = []
    for p in args.digits.split(","):
      a, b = parse_ints(p, "digits", ":", 2, "1:7,3:8")
      if a not in first or b not in first:
        raise UserError(f"digit pair {p} has no test example")
      pairs.append((first[a], first[b]))
  n = len(labels)
  if any(not 0 <= i < n for pair in pairs for i in pair):
    raise UserError(f"test indices must be in [0, {n})")
  return pairs


def _interpolate_args(p):
  p.add_argument("--pairs", default="", help="AE/VAE: test indices, e.g. 0:1,2:3")
  p.add_argument("--digits", default="1:7,3:8,4:9,0:6",
                 help="AE/VAE: digit pairs (first test example of each)")
  p.add_argument("--k", type=int, default=8, help="points between the ends")
  p.add_argument("--a", default="0", help="GAN: image A, a training index or a file")
  p.add_argument("--b", default="1", help="GAN: image B")
  invert_cmds.add_inversion_args(p)


@command("interpolate", "AE/VAE: decode k points between the codes of test-image pairs; GAN: "
         "invert images A and B and decode k codes between (linear and spherical)",
         AE_FAMILIES + ("gan",), _interpolate_args)
def interpolate(ctx, args):
  if ctx.config.family == "gan":
    return invert_cmds.interpolate_gan(ctx, args)
  pairs = _pairs(ctx, args)
  test = ctx.dataset.test
  idx = np.array(pairs).reshape(-1)
  x = to_float(jnp.asarray(test["image"][idx]), ctx.config.data.binarize)
  z, _ = ctx.family.embed(ctx.state.params, x)
  z = np.asarray(z).reshape(len(pairs), 2, -1)
  t = np.linspace(0.0, 1.0, args.k + 2)[None, :, None]
  path_z = (1 - t) * z[:, :1] + t * z[:, 1:]                      # [P, k+2, D]
  imgs = np.asarray(ctx.family.images(ctx.state.params, path_z.reshape(-1, z.shape[-1])))
  imgs = imgs.reshape(len(pairs), args.k + 2, *imgs.shape[1:])
  x = np.asarray(x).reshape(len(pairs), 2, *imgs.shape[2:])
  rows = np.concatenate([x[:, :1], imgs, x[:, 1:]], axis=1)      # originals at the ends
  return [plots.save_grid(rows.reshape(-1, *imgs.shape[2:]), ctx.path("interpolate"),
                          cols=args.k + 4, title="original | decoded codes, end to end | original")]


@command("reconstructions", "test images (odd rows) and their reconstructions (even rows)",
         AE_FAMILIES, lambda p: p.add_argument("--num", type=int, default=32))
def reconstructions(ctx, args):
  num = max(8, args.num // 8 * 8)
  x = np.asarray(to_float(jnp.asarray(ctx.dataset.test["image"][:num]), ctx.config.data.binarize))
  recon = ctx.reconstruct(x)  # `gm.api.Run.reconstruct`
  rows = np.stack([x.reshape(-1, 8, *x.shape[1:]), recon.reshape(-1, 8, *x.shape[1:])], 1)
  return [plots.save_grid(rows.reshape(-1, *x.shape[1:]), ctx.path("reconstructions"), cols=8)]


@command("elbo", "test ELBO and importance-weighted k-sample bound (VAE, CVAE); "
         "reconstruction errors (AE); written as JSON", AE_FAMILIES + ("cvae",),
         lambda p: (p.add_argument("--k", type=int, default=100, help="IWAE samples"),
                    p.add_argument("--num", type=int, default=0, help="test images (0 = all)"),
                    p.add_argument("--seed", type=int, default=0)))
def elbo(ctx, args):
  test = ctx.dataset.test
  num = min(args.num or len(test["image"]), len(test["image"]))
  family, state = ctx.family, ctx.state
  batches = [{k: jnp.asarray(v[i:i + 250]) for k, v in test.items()} for i in range(0, num, 250)]
  batches[-1] = {k: v[:num - 250 * (len(batches) - 1)] for k, v in batches[-1].items()}
  key = ctx.key(args.seed)
  step_fn = runtime.jit(family.eval_step)
  sums = {}
  for i, batch in enumerate(batches):
    for k, v in step_fn(state, batch, jax.random.fold_in(key, i)).items():
      sums[k] = sums.get(k, 0.0) + float(jnp.sum(v))
  result = {"step": ctx.step, "num_test": num, **{f"test/{k}": v / num for k, v in sums.items()}}
  if ctx.config.family in ("vae", "cvae") and args.k > 0:
    iwae = runtime.jit(family.iwae, static_argnums=4)
    total = 0.0
    for i, batch in enumerate(batches):
      total += float(jnp.sum(iwae(state.params, family.inputs(batch), family.cond(batch),
                                  jax.random.fold_in(key, 10**6 + i), args.k)))
    result[f"test/iwae_k{args.k}"] = total / num
  print(json.dumps(result, indent=2))
  return [write_json(ctx.path("elbo", "json"), result)]
