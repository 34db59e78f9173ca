"""eval.py commands for latent-space optimization: invert, perturb, interpolate (GAN), compare.

Targets are training images by index (`--index 0,5`) or image files
(`--image a.jpg,b.png`; `skimage:chelsea` names a photo shipped inside
scikit-image, so the out-of-domain example runs offline), resized as the
training data. Checkpoints: `--step N`, `latest` or `best` (by the run's logged
quality number).
"""

import json
import os
from typing import List, Tuple

import numpy as np

from gm import invert as inv, plots
from gm.commands.base import command, write_json
from gm.data import to_float
from gm.errors import UserError

INVERT_FAMILIES = ("gan", "ae", "vae")


def add_inversion_args(p, index: str = "0") -> None:
  p.add_argument("--index", default=index, help="training images to invert, e.g. 0,5; "
                 "test:<i> for held-out images (image folders with data.holdout), e.g. 0,test:3 "
                 "('' = none)")
  p.add_argument("--image", default="", help="image files to invert, comma-separated "
                 "(skimage:<name> for scikit-image's sample photos, e.g. skimage:chelsea)")
  p.add_argument("--steps", type=int, default=100)
  p.add_argument("--lr", type=float, default=0.01)
  p.add_argument("--momentum", type=float, default=0.9)
  p.add_argument("--optimizer", default="sgd", help="sgd | adam")
  p.add_argument("--loss", default="mse", help=" | ".join(inv.LOSSES))
  p.add_argument("--prior_weight", type=float, default=0.01, help="for --loss mse+prior")
  p.add_argument("--restarts", type=int, default=1, help="random starts per target (best kept)")
  p.add_argument("--init", default="random", help="random | encoder (AE / VAE)")
  p.add_argument("--seed", type=int, default=0)


def _read_file(spec: str):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if spec.startswith("skimage:"):
    try:
      import skimage.data  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise UserError("skimage: images need scikit-image (pip install scikit-image)") from None
    name = spec.split(":", 1)[1]
    if not hasattr(skimage.data, name):
      raise UserError(f"scikit-image has no sample image {name!r} (try chelsea, coffee, astronaut)")
    return Image.fromarray(np.asarray(getattr(skimage.data, name)()))
  if not os.path.exists(spec):
    raise UserError(f"image file {spec} does not exist")
  try:
    img = Image.open(spec)
    img.load()
    return img
  except Exception:  # pylint: disable=broad-except
    raise UserError(f"{spec} is not a readable image") from None


def load_targets(ctx, index: str, image: str) -> Tuple[np.ndarray, List[str]]:
  """Targets [T, H, W, C] in [0, 1] shaped like the training images, and their names."""
  from gm.data.folder import resize  # pylint: disable=g-import-not-at-top
  train = ctx.dataset.train["image"]
  h, w, c = train.shape[1:]
  out, names = [], []
  for item in filter(None, index.replace(" ", "").split(",")):
    split, _, number = item.rpartition(":")
    split = split or "train"
    if split not in ("train", "test") or not number.isdigit():
      raise UserError(f"--index takes training indices or test:<i>, e.g. 0,5,test:2; got {item!r}")
    images, i = getattr(ctx.dataset, split)["image"], int(number)
    if i >= len(images):
      raise UserError(f"--index {item} is outside the {len(images)} {split} images")
    out.append(np.asarray(to_float(images[i])))
    names.append(f"{split}[{i}]")
  for spec in filter(None, image.split(",")):
    img = resize(_read_file(spec), h, ctx.config.data.resize)
    arr = np.asarray(img, np.float32) / 255.0
    if c == 1:
      arr = arr.mean(-1, keepdims=True)
    out.append(arr)
    names.append(os.path.basename(spec))
  if not out:
    raise UserError("no targets: pass --index and/or --image")
  return np.stack(out).astype(np.float32), names


def run_inversion(ctx, args, targets, gen=None) -> dict:
  """`Run.invert` (`gm.api`) with the command's options, on `gen` (default: the run's
  generator)."""
  return ctx.invert(targets, seed=args.seed, steps=args.steps, lr=args.lr,
                    momentum=args.momentum, optimizer=args.optimizer, loss=args.loss,
                    prior_weight=args.prior_weight, restarts=args.restarts, init=args.init,
                    generator=gen)


def save_inversion(ctx, name: str, targets, names, res, args) -> List[str]:
  """The evolution strip and GIF, target | result pairs, loss curves, z (npz), metrics (JSON)."""
  t = len(targets)
  evo = res["evolution"]  # [S, T, H, W, C]
  strip = np.concatenate([targets[:, None], evo.transpose(1, 0, 2, 3, 4)], 1)  # [T, 1+S, ...]
  steps_txt = ",".join(map(str, res["snapshot_steps"]))
  paths = [plots.save_grid(strip.reshape(-1, *targets.shape[1:]), ctx.path(f"{name}_evolution"),
                           cols=strip.shape[1], title=f"target | G(z) at steps {steps_txt}")]
  frames = [plots.grid_image(np.concatenate([targets, evo[i]]), cols=t)
            for i in range(len(evo))]
  paths.append(plots.save_gif(frames, ctx.path(f"{name}_evolution", "gif")))
  pairs = np.stack([targets, res["images"]], 1).reshape(-1, *targets.shape[1:])
  p = inv.psnr(res["images"], targets)
  s = inv.ssim(res["images"], targets)
  paths.append(plots.save_grid(pairs, ctx.path(f"{name}_result"), cols=2,
                               title="target | inversion"))
  losses = res["losses"]  # [steps+1, T, R]
  best = {f"{n} ({p_:.1f} dB)": losses[:, i, res["best"][i]]
          for i, (n, p_) in enumerate(zip(names, p))}
  faint = {f"{i}/{r}": losses[:, i, r] for i in range(t) for r in range(losses.shape[2])
           if r != res["best"][i]}
  paths.append(plots.lines(best, ctx.path(f"{name}_loss"), xlabel="step", ylabel=args.loss,
                           log=True, faint=faint, title="inversion loss (grey: other restarts)"))
  npz = ctx.path(f"{name}_z", "npz")
  np.savez(npz, z=res["z"], z_all=res["z_all"], loss=res["loss"], names=np.asarray(names))
  paths.append(npz)
  report = {"step": ctx.step, "targets": names, "psnr_db": p.tolist(), "ssim": s.tolist(),
            "final_loss": res["loss"].tolist(), "best_restart": res["best"].tolist(),
            "settings": {k: getattr(args, k) for k in ("steps", "lr", "momentum", "optimizer",
                                                       "loss", "restarts", "init", "seed")}}
  print(json.dumps({k: report[k] for k in ("targets", "psnr_db", "ssim", "final_loss")}))
  paths.append(write_json(ctx.path(name, "json"), report))
  return paths


@command("invert", "optimise the generator input to reproduce images (GAN inversion; AE/VAE: "
         "optionally from the encoder's code): evolution strip + GIF, result, loss, z, PSNR/SSIM",
         INVERT_FAMILIES, lambda p: (add_inversion_args(p),
                                     p.add_argument("--name", default="invert",
                                                    help="output file prefix")))
def invert(ctx, args):
  targets, names = load_targets(ctx, args.index, args.image)
  return save_inversion(ctx, args.name, targets, names, run_inversion(ctx, args, targets), args)


def _effects(gen, z: np.ndarray, delta: float = 1.0) -> np.ndarray:
  """Mean absolute image change when each coordinate of z [D] moves by +-delta: [D]."""
  d = len(z)
  plus = z[None] + delta * np.eye(d)
  minus = z[None] - delta * np.eye(d)
  f = gen.apply_jit()
  out = [np.abs(np.asarray(f(plus[i:i + 64])) - np.asarray(f(minus[i:i + 64]))).mean((1, 2, 3))
         for i in range(0, d, 64)]
  return np.concatenate(out)


def perturb_grid(ctx, z: np.ndarray, coords: str, top: int, lo: float, hi: float, n: int):
  """(images [len(coords) * n, ...], chosen coords, effects) with z_i set to n values in [lo, hi]."""
  gen = inv.generator_of(ctx.family, ctx.state)
  effects = _effects(gen, z)
  if coords:
    try:
      chosen = [int(c) for c in coords.split(",")]
    except ValueError:
      raise UserError(f"--coords takes integers, got {coords!r}") from None
    if any(not 0 <= c < len(z) for c in chosen):
      raise UserError(f"--coords must be in 0..{len(z) - 1}")
  else:
    chosen = list(np.argsort(-effects)[:top])
  values = np.linspace(lo, hi, n)
  zs = np.repeat(z[None], len(chosen) * n, 0).reshape(len(chosen), n, -1)
  for r, c in enumerate(chosen):
    zs[r, :, c] = values
  imgs = np.asarray(gen.apply_jit()(zs.reshape(-1, len(z))))
  return imgs, chosen, effects


def _load_z(ctx, path: str, target: int) -> np.ndarray:
  path = path or ctx.path("invert_z", "npz")
  if not os.path.exists(path):
    raise UserError(f"{path} does not exist; run `eval.py invert` first or pass --z <npz>")
  with np.load(path) as f:
    z = f["z"]
  if not 0 <= target < len(z):
    raise UserError(f"--target {target}: the file holds {len(z)} codes")
  return z[target].astype(np.float32)


@command("perturb", "change single coordinates of a saved z over a range of values (the chosen "
         "ones or those with the largest effect) and draw the grid", INVERT_FAMILIES,
         lambda p: (p.add_argument("--z", default="", help="npz from invert (default: this "
                                   "step's invert_z)"),
                    p.add_argument("--target", type=int, default=0, help="which code in the npz"),
                    p.add_argument("--coords", default="", help="coordinates, e.g. 3,17"),
                    p.add_argument("--top", type=int, default=6,
                                   help="else: this many with the largest effect"),
                    p.add_argument("--range", default="-3,3", help="values lo,hi"),
                    p.add_argument("--n", type=int, default=9, help="values per coordinate")))
def perturb(ctx, args):
  from gm.commands.base import parse_floats  # pylint: disable=g-import-not-at-top
  lo, hi = parse_floats(args.range, 2, "range")
  z = _load_z(ctx, args.z, args.target)
  imgs, chosen, effects = perturb_grid(ctx, z, args.coords, args.top, lo, hi, args.n)
  path = plots.save_grid(imgs, ctx.path("perturb"), cols=args.n,
                         title=f"rows: z[{', '.join(map(str, chosen))}] set to {lo:g}..{hi:g}")
  meta = write_json(ctx.path("perturb", "json"),
                    {"coords": [int(c) for c in chosen], "values": np.linspace(lo, hi, args.n).tolist(),
                     "effect": {int(c): float(effects[c]) for c in chosen}})
  return [path, meta]


def interpolation_rows(ctx, args, targets: np.ndarray, k: int) -> Tuple[np.ndarray, dict]:
  """Rows [2, k + 4, H, W, C] (linear, spherical): target A | G(z) from z_A to z_B | target B."""
  gen = inv.generator_of(ctx.family, ctx.state)
  res = run_inversion(ctx, args, targets, gen)  # Its compiled `generate` serves the rows too.
  t = np.linspace(0.0, 1.0, k + 2)
  rows = []
  for fn in (inv.lerp, inv.slerp):
    imgs = np.asarray(gen.apply_jit()(fn(res["z"][0], res["z"][1], t).astype(np.float32)))
    rows.append(np.concatenate([targets[:1], imgs, targets[1:2]]))
  return np.stack(rows), res


def interpolate_gan(ctx, args) -> List[str]:
  """`interpolate` for GAN runs: invert A and B, decode k codes between (linear, spherical)."""
  pairs = [_one_target(ctx, spec) for spec in (args.a, args.b)]
  targets, names = np.stack([p[0] for p in pairs]), [p[1] for p in pairs]
  rows, res = interpolation_rows(ctx, args, targets, args.k)
  psnr = inv.psnr(res["images"], targets)
  return [plots.save_grid(rows.reshape(-1, *targets.shape[1:]), ctx.path("interpolate"),
                          cols=args.k + 4, title=f"{names[0]} -> {names[1]} (PSNR {psnr[0]:.1f}, "
                          f"{psnr[1]:.1f} dB); rows: linear, spherical")]


def _one_target(ctx, spec: str):
  """A training-image index or an image file -> (target [H, W, C], name)."""
  is_index = spec.lstrip("-").isdigit() or spec.startswith(("train:", "test:"))
  targets, names = load_targets(ctx, spec if is_index else "", "" if is_index else spec)
  return targets[0], names[0]


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
  """Images [N, H, W, C] in [0, 1] -> [N, size, size, C] (bicubic, as the folder loader)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if images.shape[1] == size:
    return images

  def one(image):
    u8 = np.uint8(np.clip(image, 0, 1) * 255 + 0.5)
    pil = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8).resize((size, size),
                                                                          Image.BICUBIC)
    return np.asarray(pil, np.float32).reshape(size, size, -1) / 255.0

  return np.stack([one(image) for image in images])


@command("compare-generators", "invert, interpolate and perturb with this run's generator and "
         "another run's (--other) side by side, on the same targets and seeds",
         ("gan",), lambda p: (add_inversion_args(p, index="0,1"),
                              p.add_argument("--other", required=True, help="the other run dir"),
                              p.add_argument("--other_step", default="latest"),
                              p.add_argument("--k", type=int, default=8),
                              p.add_argument("--top", type=int, default=4),
                              p.add_argument("--n", type=int, default=7)))
def compare_generators(ctx, args):
  """Runs of different image sizes compare on the same targets resized to each run's size; the
  other run's images are resized to this run's size for the figures (PSNR/SSIM at its own)."""
  other = type(ctx)(args.other, args.other_step, args.raw)  # A run like this one (`gm.api.Run`).
  other.require("gan")
  targets, names = load_targets(ctx, args.index, args.image)
  size = targets.shape[1]
  names_ = [os.path.basename(c.workdir) for c in (ctx, other)]
  if names_[0] == names_[1]:  # e.g. two runs/<x>/run: name them by their parents too
    names_ = [os.path.basename(os.path.dirname(c.workdir)) + "_" + n
              for c, n in zip((ctx, other), names_)]
  if names_[0] == names_[1]:  # The same run: two of its checkpoints.
    if ctx.step == other.step:
      raise UserError(f"--other is this run at the same checkpoint (step {ctx.step}): pass "
                      "another run, or another --other_step")
    names_ = [f"{n}_step{c.step}" for c, n in zip((ctx, other), names_)]
  label = "_vs_".join(names_)
  runs = dict(zip(names_, (ctx, other)))
  results, interp, perturbs, report = {}, [], [], {"targets": names}
  for run_name, c in runs.items():
    own = resize_images(targets, c.dataset.train["image"].shape[1])
    back = lambda imgs: resize_images(np.asarray(imgs).reshape(-1, *own.shape[1:]), size)
    res = run_inversion(c, args, own)
    report[run_name] = {"step": c.step, "image_size": own.shape[1],
                        "psnr_db": inv.psnr(res["images"], own).tolist(),
                        "ssim": inv.ssim(res["images"], own).tolist()}
    results[run_name] = {**res, "images": back(res["images"])}
    if len(targets) >= 2:
      rows = interpolation_rows(c, args, own[:2], args.k)[0]
      interp.append(back(rows).reshape(2, -1, *targets.shape[1:]))
    perturbs.append(back(perturb_grid(c, res["z"][0], "", args.top, -3.0, 3.0, args.n)[0]))
  a, b = list(results)
  cols = np.stack([targets, results[a]["images"], results[b]["images"]], 1)
  out = os.path.join(ctx.out_dir, f"compare_{label}")
  paths = [plots.save_grid(cols.reshape(-1, *targets.shape[1:]), out + "_invert.png", cols=3,
                           title=f"target | {a} | {b}")]
  if interp:
    rows = np.concatenate([interp[0][:1], interp[1][:1], interp[0][1:], interp[1][1:]])
    paths.append(plots.save_grid(rows.reshape(-1, *targets.shape[1:]), out + "_interpolate.png",
                                 cols=args.k + 4, title=f"linear: {a}, {b}; spherical: {a}, {b}"))
  paths.append(plots.save_grid(np.concatenate(perturbs), out + "_perturb.png", cols=args.n,
                               title=f"top-{args.top} coordinates of z, -3..3: {a} rows, then {b}"))
  print(json.dumps(report))
  paths.append(write_json(out + ".json", report))
  return paths
