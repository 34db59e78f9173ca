"""eval.py commands for GAN runs, and the course notebook's minimax exercise."""

import json
import os

import numpy as np

from gm import minimax as minimax_lib, plots
from gm.backend import runtime
from gm.train import progress as progress_lib
from gm.commands.base import command, write_json
from gm.data import to_float
from gm.errors import UserError
from gm.judge import load_judge
from gm.metrics import image_set_scores, random_cnn, sample_scores
from gm.metrics.scores import FOLDER_MAX_REAL, FOLDER_MIN_SAMPLES
from gm.train import health as health_lib
from gm.train.rundir import read_metrics


def _conditional(ctx) -> bool:
  return bool(ctx.config.model.num_classes)


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
  gen = family.generator(ctx.state)
  z = np.repeat(np.asarray(gen.noise(ctx.key(args.seed), args.rows)), k, axis=0)  # Row r: noise r
  labels = np.tile(np.arange(k), args.rows)                                     # with every label.
  imgs = np.asarray(runtime.jit(gen.apply)(z, family.one_hot(labels)))
  return [plots.save_grid(imgs, ctx.path("digits"), cols=k,
                          title=f"labels 0..{k - 1} (columns), step {ctx.step}")]


def _reference_photos(config, folder: str) -> np.ndarray:
  """The photos of `folder` decoded as the run's own: data.image_size, data.resize, cache."""
  from gm.data import folder as folder_lib  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(folder) or not any(
      f.lower().endswith(folder_lib.EXTENSIONS) for _, _, files in os.walk(folder) for f in files):
    raise UserError(f"--reference {folder}: no such folder, or no "
                    f"{'/'.join(e[1:] for e in folder_lib.EXTENSIONS)} photos in it; pass a folder "
                    "of photos")
  d = config.data
  return folder_lib.load_folder(folder, d.image_size, d.resize, d.cache_dir)["image"]


def _safe_name(path: str) -> str:
  """A folder's base name as a file-name fragment."""
  base = os.path.basename(os.path.normpath(os.path.abspath(path))) or "reference"
  return "".join(c if c.isalnum() or c in "-_." else "_" for c in base)


def _same_photos(a: np.ndarray, b: np.ndarray) -> bool:
  return a is b or (a.shape == b.shape and np.array_equal(a, b))


def _folder_floor(ctx, real: np.ndarray, reference_dir: str) -> dict:
  """Real photos scored like samples: the floor the sample scores are read against.

  With --reference: the run's training photos vs that folder. Otherwise, when the
  reference set is the training photos themselves: one half of them vs the other;
  when it is a separate set (held out): the training photos vs it.
  """
  train = ctx.dataset.train["image"]
  test = ctx.dataset.test["image"]
  family = ctx.family
  inception = sample_scores.inception_of(ctx.config)
  if reference_dir or not _same_photos(train, test):
    name = "real_train_vs_reference" if reference_dir else "real_train_vs_test"
    # As many training photos as sample_scores draws samples.
    count = max(len(real), FOLDER_MIN_SAMPLES)
    return {name: image_set_scores(np.asarray(to_float(train[:count])), real, inception)}
  half = len(real) // 2
  return {"real_half_vs_half": image_set_scores(real[:half], real[half:], inception)}


@command("gan-score", "MNIST: the judge's Fréchet distance, KID x 10^3, precision, recall, "
         "density and coverage of samples vs the test set (and label accuracy of a conditional "
         "GAN); image folders: sliced Wasserstein distance and random-CNN precision / recall / "
         "density / coverage vs the photos or --reference <folder> (and FID with "
         "eval.inception_weights); a real-vs-real floor beside them; one checkpoint or --all; JSON",
         ("gan",),
         lambda p: (p.add_argument("--num", type=int, default=2000, help="samples per checkpoint"),
                    p.add_argument("--judge", default="", help="judge: run dir, .npz or builtin (default: eval.judge)"),
                    p.add_argument("--all", action="store_true", help="every checkpoint"),
                    p.add_argument("--reference", default="",
                                   help="image-folder runs: score against the photos of this "
                                   "folder (decoded at the run's image size and resize mode)"),
                    p.add_argument("--seed", type=int, default=0,
                                   help="sampling seed; other than 0 it names the files "
                                   "<name>_seed<s>_..."),
                    p.add_argument("--name", default="gan_score",
                                   help="file name stem under <workdir>/eval/")))
def gan_score(ctx, args):
  steps = ctx.steps() if args.all else [ctx.resolve(args.step)]
  result = score_checkpoints(ctx, steps, args.num, args.seed, args.reference, args.judge,
                             progress=args.all)
  records, floor = result["scores"], {k: v for k, v in result.items() if k.startswith("real_")}
  name = f"{args.name}_vs_{_safe_name(args.reference)}" if args.reference else args.name
  if args.seed:  # Another draw of samples keeps its own file beside seed 0's.
    name += f"_seed{args.seed}"
  if not args.all:
    return [write_json(ctx.path(name, "json", steps[0]), result)]
  paths = [write_json(os.path.join(ctx.out_dir, f"{name}_history.json"), result)]
  keys = [k for k, v in records[0].items() if k != "step" and isinstance(v, (int, float))]
  (real_vs_real,) = floor.values()
  paths.append(plots.curves(
      records, keys, os.path.join(ctx.out_dir, f"{name}_history.png"), x="step",
      title=f"{result['num_samples']} samples per checkpoint; dashed: {next(iter(floor))}",
      hlines=real_vs_real))
  return paths


def score_checkpoints(ctx, steps, num: int, seed: int = 0, reference: str = "", judge: str = "",
                      progress: bool = False) -> dict:
  """gan-score's numbers for `steps` of the run: {'judge': what scores, 'num_samples',
  the real-vs-real floor ('real_train_vs_test' or 'real_train_vs_reference'), 'scores':
  [{'step', ...}], 'reference' if given}. `Run.score` and the command share it."""
  family = ctx.family
  test, train = ctx.dataset.test, ctx.dataset.train
  if reference:
    if family.scoring == "judge":
      raise UserError("--reference applies to image-folder runs; MNIST runs are scored against "
                      "the MNIST test set by the judge")
    test = {"image": _reference_photos(ctx.config, reference)}
  num = min(num, len(test["image"]))
  if num < 2:
    raise UserError("--num must be >= 2")
  inception = None
  if family.scoring == "judge":
    judge = load_judge(judge or ctx.config.eval.judge)
    # The floor to read the numbers against: as many real training images vs the test images.
    floor = {"real_train_vs_test": judge.distances(
        np.asarray(to_float(train["image"][:num])), np.asarray(to_float(test["image"][:num])))}
    what = judge.workdir
  else:
    num = min(num, FOLDER_MAX_REAL)  # What sample_scores compares against.
    judge, inception = None, sample_scores.inception_of(ctx.config)
    what = ("sliced Wasserstein distance (PGGAN's, x 10^3); precision / recall / density / "
            f"coverage (k = 5) on {random_cnn.VERSION} features" +
            (" and on Inception features; FID" if family.inception_weights else ""))
    floor = _folder_floor(ctx, np.asarray(to_float(test["image"][:num])), reference)
  bar = progress_lib.progress(total=len(steps), enabled=progress, unit="checkpoint")
  records = []
  for step in steps:
    state = ctx.model_at(step)
    scores = sample_scores.sample_scores(family, state, judge, ctx.key(seed), test, num=num,
                                         inception=inception)
    records.append({"step": step, **scores})
    bar.write(json.dumps(records[-1]))
    bar.update(1)
  bar.close()
  result = {"judge": what, "num_samples": num, **floor, "scores": records}
  if reference:
    result["reference"] = os.path.abspath(reference)
  return result


@command("health", "the health warnings (winning discriminator, collapse, degrading run) that "
         "the current rules give over the run's metrics.jsonl, epoch by epoch: for a run trained "
         "before a rule changed; with --scores the degrading rule reads a `gan-score --all` "
         "history instead of the logged scores (`--step best` still picks by the logged ones); "
         "prints them and writes eval/health.json (health_<scores file>.json)",
         ("gan",),
         lambda p: p.add_argument("--scores", default="",
                                  help="a gan_score_history.json (`gan-score --all`): its scores "
                                  "replace the logged ones at the same steps"))
def health(ctx, args):
  key = ctx.family.best_metric[0]
  found, records = ctx.health(args.scores), len(read_metrics(ctx.workdir))  # `gm.api.Run.health`
  for epoch, warning in found:
    print(f"epoch {epoch}: {warning}")
  epochs = [e for e, _ in found]
  source = "metrics.jsonl"
  if args.scores:
    scored = sum(r.get("step") in _read_scores(args.scores, key)
                 for r in read_metrics(ctx.workdir))
    source = f"{args.scores} ({scored} of the {records} records scored)"
  print(f"{len(found)} warnings over {records} records" + (
      f" (epochs {epochs[0]} to {epochs[-1]})" if found else "") + f"; score {key} from {source}")
  name = "health" + (f"_{_safe_name(os.path.splitext(args.scores)[0])}" if args.scores else "")
  return [write_json(os.path.join(ctx.out_dir, f"{name}.json"), {
      "rules": ctx.config.health.to_dict(), "score": key,
      "scores_from": os.path.abspath(args.scores) if args.scores else "metrics.jsonl",
      "warnings": [{"epoch": e, "warning": w} for e, w in found]})]


def health_warnings(ctx, scores: str = ""):
  """[(epoch, warning)]: the run's health warnings under the current rules, replayed over
  metrics.jsonl; `scores`: a gan-score history whose scores replace the logged ones."""
  if "health" not in ctx.config:
    raise UserError(f"{ctx.workdir}'s config.json has no health rules (trained before they "
                    "existed); nothing to replay")
  key, mode = ctx.family.best_metric
  records = read_metrics(ctx.workdir)
  if scores:
    records = _with_scores(records, key, scores)
  return health_lib.replay(ctx.config, records, (key, mode))


def _read_scores(path: str, key: str):
  """{step: score} of a gan-score history's `key` (quality/swd -> its 'swd'), one-line errors."""
  name = key.split("/")[-1]  # quality/swd -> swd, judge/frechet -> frechet
  try:
    with open(path, encoding="utf-8") as f:
      scores = {int(s["step"]): float(s[name]) for s in json.load(f)["scores"]}
  except OSError as e:
    raise UserError(f"--scores {path}: {e.strerror}; pass the gan_score_history.json that "
                    "`eval.py gan-score --all` wrote under <workdir>/eval/") from None
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f"--scores {path}: not a gan-score history with a {name!r} per step "
                    f"({type(e).__name__}: {e}); pass the gan_score_history.json that "
                    "`eval.py gan-score --all` wrote") from None
  bad = [step for step, v in scores.items() if not np.isfinite(v)]
  if bad:
    raise UserError(f"--scores {path}: {name} is not finite at step {bad[0]}; score that "
                    "checkpoint again or leave it out of the file")
  return scores


def _with_scores(records, key: str, path: str):
  """The records with `key` taken from a gan-score history's scores at the same steps (and
  dropped elsewhere)."""
  scores = _read_scores(path, key)
  steps = {r.get("step") for r in records}
  if not steps & set(scores):
    raise UserError(f"--scores {path}: none of its steps is in this run's metrics.jsonl; pass "
                    "the history of this run")
  out = []
  for r in records:
    r = {k: v for k, v in r.items() if k != key}
    if r.get("step") in scores:
      r[key] = scores[r["step"]]
    out.append(r)
  return out


@command("minimax", "the course notebook's exercise: alternating gradient steps on f(x, y) = x*y; prints "
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


@command("spectrum", "mean power spectrum of samples beside the training photos' (Fourier "
         "checkerboard test for upsampling artifacts): figure and peak ratios at the period-2/4/8 "
         "frequencies, JSON", ("gan",),
         lambda p: (p.add_argument("--num", type=int, default=512,
                                   help="samples and photos (at most the training photos)"),
                    p.add_argument("--seed", type=int, default=0)),
         applies=lambda ctx: not _conditional(ctx))
def spectrum(ctx, args):
  from gm.metrics import spectrum as spec  # pylint: disable=g-import-not-at-top
  family = ctx.family
  if family.num_classes:
    raise UserError("spectrum compares an unconditional generator's samples with the photos; "
                    "this run is conditional")
  photos = np.asarray(to_float(ctx.dataset.train["image"]))
  num = min(args.num, len(photos))
  if num < 2:
    raise UserError("--num must be >= 2")
  samples = np.asarray(family.sample(ctx.state, ctx.key(args.seed), num))
  spectra = {"training photos": spec.power_spectrum(photos[:num]),
             "samples": spec.power_spectrum(samples)}
  result = {"num": num, "step": ctx.step,
            "peaks": {k: spec.grid_peaks(v) for k, v in spectra.items()},
            "radial": {k: spec.radial_profile(v).tolist() for k, v in spectra.items()}}
  ratio = spectra["samples"] / np.maximum(spectra["training photos"], 1e-30)
  peaks = ", ".join(f"{k.split('_')[1]} px {v:.2f}" for k, v in result["peaks"]["samples"].items())
  figure = plots.spectra({**spectra, "samples / photos": ratio},
                         {k: np.asarray(v) for k, v in result["radial"].items()},
                         ctx.path("spectrum"),
                         title=f"step {ctx.step}: {num} samples; grid peaks (samples) {peaks}")
  return [write_json(ctx.path("spectrum", "json"), result), figure]
