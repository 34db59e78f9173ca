r"""Regenerates every figure and number of docs/cake.md (and the README's cake rows) from runs.

  python scripts/cake_section.py --runs fast=runs/cake_fast,report32=runs/cake32 \
      [--ablations fast_nodiff=runs/cake_fast_nodiff,report32_diff=runs/cake32_diff] \
      [--out docs]
  python scripts/cake_section.py --prefix cake64 --runs grow=runs/cake_grow,\
transposed=runs/cake64_transposed,upsample=runs/cake64_upsample --compare transposed,upsample

What it writes (figures under <out>/figures/<prefix>_*, numbers in <out>/<prefix>_results.json;
prefix 'cake' unless --prefix):
  - <prefix>_swd_vs_minutes.png: held-out SWD of every checkpoint of every run against the
    wall-clock minutes from process start to that checkpoint, summed over the processes of a
    resumed run (EMA generator solid, raw weights dashed), with the floor (as many training
    photos vs the held-out photos);
    the results keep each draw's SWD and the floor's per-chunk values (its spread);
  - for each main run: the latest sample grid, the evolution strip over the checkpoint
    history, the loss curves and the samples' power spectrum beside the photos'
    (`eval.py spectrum`: the checkerboard test); for each ablation run its latest sample grid;
  - with --split K: the split-half measure (gm.metrics.split) of every run's EMA generator,
    <prefix>_split_ratio.png, and at every run's last checkpoint a copying check (samples'
    pixel distance to their nearest training photo against the held-out photos') and the
    standardised KID against the held-out photos;
  - inversion of two training photos, two held-out photos and the cat (skimage:chelsea)
    with three procedures (the assignment's, the 32x32 report's, the recommended one)
    by every main run's generator: PSNR/SSIM table, the recommended procedure's evolution strips;
  - perturbation of single coordinates and interpolation between two inverted photos, and
    two generators side by side on the same targets (compare-generators; --compare, else
    the first two runs).
It prints the markdown tables: SWD at the last checkpoint within given minutes, inversion.

It runs the same `eval.py` commands a user would (in this process, so JAX compiles
once per generator), then copies their outputs under stable names. Every run
must hold out photos (`data.holdout`) and use the same folder and split. Run again after a
run was resumed, it scores only the new checkpoints: the scores of checkpoints it scored
before (same run directory, same held-out photos and halvings) are read from
<prefix>_results.json (--fresh scores every checkpoint anew).
"""

import argparse
import json
import math
import os
import shutil
import sys
from typing import Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gm import cli  # pylint: disable=g-import-not-at-top  (one-line usage errors)

# Inversion targets: two training photos, two held-out photos, the out-of-domain cat.
INDEX, IMAGE = "0,1,test:0,test:1", "skimage:chelsea"
DRAWS = 3  # Sample sets per checkpoint whose SWD is averaged (n = the held-out count each).
WINDOW = 5  # Scored checkpoints averaged in the split table's brackets (--split).
SKIPPABLE = {"curves", "figures", "inversion", "copying"}  # --skip's parts.
HARDWARE = "2-core CPU"  # What the runs ran on, by default (the minutes axis says it).
PROCEDURES = {  # name -> eval.py invert options
    "assignment": ["--loss", "mse", "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9",
                   "--steps", "100"],
    "report": ["--loss", "sse", "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9",
               "--steps", "100"],
    "recommended": ["--loss", "mse", "--optimizer", "adam", "--lr", "0.1", "--steps", "300",
                    "--restarts", "8"],
}


def parse_pairs(text: str, flag: str) -> Dict[str, str]:
  """'a=x,b=y' -> {'a': 'x', 'b': 'y'}; an item without a name or a value is an error."""
  out = {}
  for item in filter(None, text.split(",")):
    name, _, value = item.partition("=")
    if not name or not value:
      raise SystemExit(f"{flag}: {item!r} is not name=<value>")
    out[name] = value
  return out


def parse_runs(text: str) -> Dict[str, str]:
  out = parse_pairs(text, "--runs/--ablations")
  for name, path in out.items():
    if not os.path.isdir(path):
      raise SystemExit(f"--runs/--ablations: {name}={path}: no such run directory")
  return out


def positive(text: str, flag: str, example: str) -> float:
  """A finite number > 0 from a flag's text, or a one-line error naming the flag."""
  try:
    value = float(text)
  except ValueError:
    value = float("nan")
  if not math.isfinite(value) or value <= 0:
    raise SystemExit(f"{flag}: {text!r} is not a number > 0, e.g. {example}")
  return value


def eval_py(*args: str) -> List[str]:
  """Runs `eval.py <args>` in this process; returns the paths it wrote."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  buf = io.StringIO()
  with contextlib.redirect_stdout(buf):
    run(parser().parse_args(list(args)))
  print(f"eval.py {' '.join(args)}", flush=True)
  return [line for line in buf.getvalue().splitlines() if os.path.exists(line)]


def copy(src: str, out_dir: str, name: str) -> str:
  dst = os.path.join(out_dir, "figures", name)
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  shutil.copyfile(src, dst)
  return dst


def split_steps(timed: List[int], stride: int) -> List[int]:
  """The checkpoints the split-half measure scores: every `stride`-th of `timed` from the first
  (the 0th, the stride-th, ...) and the last. Counted from the first, so a resumed run keeps
  the choices of an earlier call and their stored scores are reused."""
  return sorted(set(timed[::stride]) | set(timed[-1:]))


def _close(a, b, rtol: float = 1e-6) -> bool:
  a, b = np.asarray(a, float), np.asarray(b, float)
  return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=1e-9))


def _stored_process_s(previous: dict) -> List[float]:
  """Per stored step, the `time/process_s` of its metrics record: stored as such, or in files
  written before that as minutes = process_s / 60 (unless those minutes were re-timed)."""
  if "process_s" in previous:
    return previous["process_s"]
  if "epoch_seconds" in previous:
    return [math.nan] * len(previous.get("step", []))
  return [m * 60 for m in previous.get("minutes", [])]


def stored_scores(previous: dict, workdir: str, floor_chunks, split_floor=None,
                  logged: Dict[int, float] = None, seed: int = 0) -> Dict[int, dict]:
  """Step -> the scores `swd_curves` stored for that checkpoint in an earlier call (its curve
  `previous`), when they measure the same checkpoint the same way: the same run directory,
  the metrics record of that step unchanged (`logged`: step -> its `time/process_s`, which
  differs if the directory was trained anew), the same held-out photos (equal floor chunks),
  seed and number of draws, and for the split-half entries the same halvings (equal split
  floors). Each value holds the per-draw SWDs and, where stored and valid, the 'split' entry."""
  if not previous or os.path.normpath(previous.get("workdir") or "") != os.path.normpath(workdir):
    return {}
  if previous.get("seed", 0) != seed or not _close(previous.get("floor_chunks", []), floor_chunks):
    return {}
  kinds = [k for k in ("swd_ema", "swd_raw") if f"{k}_draws" in previous]
  out = {}
  steps, process_s = previous.get("step", []), _stored_process_s(previous)
  for i, step in enumerate(steps):
    draws = {f"{k}_draws": previous[f"{k}_draws"][i] for k in kinds}
    same = logged is not None and step in logged and i < len(process_s) and _close(
        process_s[i], logged[step], rtol=1e-9)
    if kinds and same and all(len(d) == DRAWS for d in draws.values()):
      out[step] = draws
  old_floor = previous.get("split_floor")
  if split_floor is not None and old_floor and all(
      _close(old_floor.get(k, []), v) for k, v in split_floor.items()):
    for entry in previous.get("split", []):
      if entry["step"] in out:
        out[entry["step"]]["split"] = entry
  return out


def swd_curves(runs: Dict[str, str], seed: int = 0, splits: int = 0,
               split_stride: int = 1, previous: Dict[str, dict] = None) -> Dict[str, dict]:
  """Per run: minutes, EMA and raw SWD of every checkpoint against the held-out photos.

  With `splits` > 0 also the split-half measure (gm.metrics.split) of the EMA generator at
  the checkpoints of `split_steps(.., split_stride)`: 'split' (per checkpoint its summary and
  per-split values) and 'split_floor' (per-split floor values). `previous` (name -> curve, as
  returned by an earlier call): checkpoints scored there are not scored again (`stored_scores`).
  """
  from gm.metrics import split as split_lib  # pylint: disable=g-import-not-at-top
  from gm.commands.base import RunContext  # pylint: disable=g-import-not-at-top
  from gm.commands.generic import read_metrics  # pylint: disable=g-import-not-at-top
  from gm.data import to_float  # pylint: disable=g-import-not-at-top
  from gm.metrics.swd import swd  # pylint: disable=g-import-not-at-top
  from gm.train.rundir import run_minutes  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  out = {}
  for name, workdir in runs.items():
    ctx = RunContext(workdir)
    if not ctx.config.data.holdout:
      raise SystemExit(f"{workdir} holds out no photos (data.holdout); it cannot be scored")
    records = read_metrics(workdir)
    minutes = run_minutes(records)  # From process start, summed over the resumed processes.
    logged = {r["step"]: r["time/process_s"] for r in records if "time/process_s" in r}
    epochs = {r["step"]: r["epoch"] for r in records if "epoch" in r}
    held = np.asarray(to_float(ctx.dataset.test["image"]))
    train = np.asarray(to_float(ctx.dataset.train["image"]))
    n = len(held)
    floor = [float(swd(train[i:i + n], held)["swd"]) for i in range(0, len(train) - n + 1, n)]
    has_ema = ctx.config.train.ema_decay > 0  # The state carries an EMA exactly then.
    kinds = ["swd_ema", "swd_raw"] if has_ema else ["swd_ema"]
    curve = {"step": [], "epoch": [], "minutes": [], "process_s": [], **{k: [] for k in kinds},
             **{f"{k}_draws": [] for k in kinds}}
    timed = [step for step in ctx.steps() if step in minutes]  # Not step 0 (before training).
    scored = set(split_steps(timed, split_stride)) if splits else set()
    if splits:
      ref = split_lib.Reference(train, splits, seed)
      curve.update({"split": [], "split_floor": split_lib.floor(ref)})
    stored = stored_scores((previous or {}).get(name), workdir, floor, curve.get("split_floor"),
                           logged, seed)
    reused = 0
    for step in timed:
      curve["step"].append(step)
      curve["epoch"].append(epochs[step])
      curve["minutes"].append(minutes[step])
      curve["process_s"].append(logged.get(step))
      old, model = stored.get(step, {}), None
      if all(f"{k}_draws" in old for k in kinds):
        reused += 1
        for k in kinds:
          curve[f"{k}_draws"].append(old[f"{k}_draws"])
          curve[k].append(float(np.mean(old[f"{k}_draws"])))
      else:
        model = ctx.restore(step).model
        states = {"swd_ema": model, "swd_raw": ctx.family.raw_state(model)} if has_ema else {
            "swd_ema": model}
        for k, state in states.items():  # The mean over DRAWS sets of n samples.
          draws = [float(swd(ctx.family.sample(state, jax.random.PRNGKey(seed + d), n),
                             held)["swd"]) for d in range(DRAWS)]
          curve[f"{k}_draws"].append(draws)
          curve[k].append(float(np.mean(draws)))
        print(f"{name} step {step} ({minutes[step]:.1f} min): SWD "
              + ", ".join(f"{k} {curve[k][-1]:.1f}" for k in states), flush=True)
      if step in scored and "split" in old:
        curve["split"].append({**old["split"], "epoch": epochs[step], "minutes": minutes[step]})
      elif step in scored:  # The EMA generator, draw k for split k.
        model = ctx.restore(step).model if model is None else model
        gen = split_lib.generator(
            lambda k, num, m=model: ctx.family.sample(m, jax.random.PRNGKey(seed + 1000 + k), num),
            ref)
        summ = split_lib.summary(gen, curve["split_floor"])
        curve["split"].append({"step": step, "epoch": epochs[step], "minutes": minutes[step],
                               **summ, "per_split": gen})
        print(f"{name} step {step}: split-half SWD {summ['swd']:.1f} / floor "
              f"{summ['floor_swd']:.1f} = {summ['ratio']:.2f}x ({summ['ratio_min']:.2f} to "
              f"{summ['ratio_max']:.2f}); KID {summ['kid_z_x1e3']:.1f} (floor "
              f"{summ['floor_kid_z_x1e3']:.1f})", flush=True)
    if reused:
      print(f"{name}: {reused} of {len(timed)} checkpoints' held-out SWDs (and their split-half "
            "scores where stored) read from the stored results", flush=True)
    out[name] = {**curve, "floor": float(np.mean(floor)), "floor_chunks": floor,
                 "num_heldout": n, "image_size": int(held.shape[1]), "workdir": workdir,
                 "seed": seed}
  return out


def retime(curves: Dict[str, dict], epoch_seconds: Dict[str, float]) -> None:
  """Sets the minutes of the named runs' scored checkpoints (and split points) to epoch x s / 60."""
  for name, sec in epoch_seconds.items():
    if name not in curves:
      raise SystemExit(f"--epoch_seconds: no scored run {name!r}; scored: {', '.join(curves)}")
    c = curves[name]
    c["minutes"] = [e * sec / 60 for e in c["epoch"]]
    c["epoch_seconds"] = sec
    for p in c.get("split", []):
      p["minutes"] = p["epoch"] * sec / 60


def copying_check(runs: Dict[str, str], splits: int, seed: int = 0) -> Dict[str, dict]:
  """Per run, at its last checkpoint: gm.metrics.split.copying of as many EMA samples as half the
  training photos (does the generator reproduce training photos? the split-half measure cannot
  tell copying from learning), and gm.metrics.split.heldout_kid (the standardised KID against
  the held-out photos, which rewards no fit to the training photos)."""
  from gm.metrics import split as split_lib  # pylint: disable=g-import-not-at-top
  from gm.commands.base import RunContext  # pylint: disable=g-import-not-at-top
  from gm.commands.generic import read_metrics  # pylint: disable=g-import-not-at-top
  from gm.data import to_float  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  out = {}
  for name, workdir in runs.items():
    ctx = RunContext(workdir)
    step = ctx.steps()[-1]
    epoch = {r["step"]: r["epoch"] for r in read_metrics(workdir) if "epoch" in r}.get(step)
    train = np.asarray(to_float(ctx.dataset.train["image"]))
    held = np.asarray(to_float(ctx.dataset.test["image"]))
    model = ctx.restore(step).model
    samples = np.asarray(ctx.family.sample(model, jax.random.PRNGKey(seed + 2000), len(train) // 2))
    out[name] = {"step": step, "epoch": epoch, **split_lib.copying(samples, train, held)}
    ref = split_lib.Reference(train, splits, seed)  # KID against the held-out photos instead.
    kid = split_lib.heldout_kid(
        ref, lambda k, num: ctx.family.sample(model, jax.random.PRNGKey(seed + 1000 + k), num), held)
    out[name]["heldout_kid"] = kid
    print(f"{name} step {step}: nearest-training-photo distance, samples / held-out photos "
          f"(medians) {out[name]['ratio']:.2f}; samples nearer than any held-out photo "
          f"{100 * out[name]['share_nearer']:.1f}%; KID x1e3 against the held-out photos "
          f"{np.mean(kid['generator']):.0f} ({min(kid['generator']):.0f} to "
          f"{max(kid['generator']):.0f}), half of the training photos "
          f"{np.mean(kid['floor']):.0f} ({min(kid['floor']):.0f} to {max(kid['floor']):.0f})",
          flush=True)
  return out


def minutes_label(curves: Dict[str, dict], hardware: str = HARDWARE) -> str:
  """What the minutes axis is: wall-clock from process start, or (runs re-timed by `retime`)
  epochs x the run's cost per epoch measured alone; `hardware` says what the runs ran on."""
  retimed = [n for n, c in curves.items() if "epoch_seconds" in c]
  if not retimed:
    return f"wall-clock minutes from process start, over resumes ({hardware})"
  if len(retimed) == len(curves):
    return f"minutes: epoch x each run's cost per epoch alone ({hardware})"
  return (f"minutes: wall-clock from process start, over resumes; {', '.join(retimed)}: "
          f"epoch x cost per epoch alone ({hardware})")


def _panels(by_epoch: bool, curves: Dict[str, dict], hardware: str = HARDWARE):
  """A figure with one panel against minutes (and, `by_epoch`, one against epochs):
  (figure, [(axes, x key, x label)])."""
  from gm import plots  # noqa: F401  (sets the Agg backend)  pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  xs = [("minutes", minutes_label(curves, hardware))]
  if by_epoch:
    xs.append(("epoch", "epoch"))
  fig, axes = plt.subplots(1, len(xs), figsize=(7 * len(xs), 4.2), squeeze=False)
  return fig, [(ax, x, xlabel) for ax, (x, xlabel) in zip(axes[0], xs)]


def _save(fig, path: str) -> str:
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def plot_curves(curves: Dict[str, dict], path: str, by_epoch: bool = False,
                hardware: str = HARDWARE) -> str:
  """SWD against wall-clock minutes (and, `by_epoch`, a second panel against epochs)."""
  fig, panels = _panels(by_epoch, curves, hardware)
  for ax, x, xlabel in panels:
    floors = {}
    for i, (name, c) in enumerate(curves.items()):
      color = f"C{i}"
      ema = "swd_raw" in c
      ax.plot(c[x], c["swd_ema"], "-o", ms=3, color=color,
              label=f"{name} (EMA)" if ema else name)
      if ema:
        ax.plot(c[x], c["swd_raw"], "--", color=color, alpha=0.7, label=f"{name} (raw)")
      floors.setdefault(c["image_size"], c)
    for size, c in floors.items():
      floor = c["floor"]
      ax.axhspan(min(c["floor_chunks"]), max(c["floor_chunks"]), color="k", alpha=0.08, lw=0)
      ax.axhline(floor, color="k", lw=0.8, ls=":")
      ax.axhline(1.5 * floor, color="k", lw=0.8, ls="-.")
      ax.text(0, floor, f" floor {size}px (band: its chunks)", va="bottom", fontsize=8)
      ax.text(0, 1.5 * floor, f" 1.5x floor {size}px", va="bottom", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("SWD x1e3 vs held-out photos")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("held-out sliced Wasserstein distance over training")
  return _save(fig, path)


def plot_split(curves: Dict[str, dict], path: str, by_epoch: bool = False,
               hardware: str = HARDWARE) -> str:
  """The split-half SWD ratio (generator / floor, paired per split) against minutes (and epochs)."""
  fig, panels = _panels(by_epoch, curves, hardware)
  for ax, x, xlabel in panels:
    band = None
    for i, (name, c) in enumerate((n, c) for n, c in curves.items() if c.get("split")):
      pts = c["split"]
      ax.plot([p[x] for p in pts], [p["ratio"] for p in pts], "-o", ms=3, color=f"C{i}",
              label=f"{name} (EMA)")
      ax.fill_between([p[x] for p in pts], [p["ratio_min"] for p in pts],
                      [p["ratio_max"] for p in pts], color=f"C{i}", alpha=0.15, lw=0)
      f = np.asarray(c["split_floor"]["swd"])
      band = (f.min() / f.mean(), f.max() / f.mean())
    if band:
      ax.axhspan(*band, color="k", alpha=0.08, lw=0)
      ax.text(0, band[1], " floor's spread over splits", va="bottom", fontsize=8)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.axhline(1.2, color="k", lw=0.8, ls="-.")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("split-half SWD / floor (shade: min to max over splits)")
    ax.legend(fontsize=8)
    ax.set_title("samples vs halves of the training photos")
  return _save(fig, path)


def markdown_split_table(curves: Dict[str, dict], marks, by: str = "minutes") -> str:
  """The split-half ratio (mean over splits ± the per-split ratios' standard error) at the last
  scored checkpoint within each mark (minutes or epochs), and in brackets the mean ratio of the
  last WINDOW scored checkpoints within it (GANs oscillate from checkpoint to checkpoint by more
  than one checkpoint's error); the last one and its KID; the floor row."""
  unit = "min" if by == "minutes" else "epochs"
  head = " | ".join(f"<= {m:g} {unit}" for m in marks)
  rows = [f"| run | {head} | last ({by}) | KID x1e3 at the last (min to max) |",
          "|---|" + "---|" * (len(marks) + 2)]
  cell = lambda p: f"{p['ratio']:.2f}x ± {p['ratio_se']:.2f}"
  floor = None
  for name, c in curves.items():
    pts = c.get("split")
    if not pts:
      continue
    cells = []
    for m in marks:
      within = [p for p in pts if p[by] <= m]
      window = np.mean([p["ratio"] for p in within[-WINDOW:]]) if within else 0
      cells.append(f"{cell(within[-1])} ({window:.2f}x)" if within else "-")
    last = pts[-1]
    rows.append(f"| {name} (EMA) | {' | '.join(cells)} | {cell(last)} ({last[by]:.{0 if by == 'epoch' else 1}f}) | "
                f"{last['kid_z_x1e3']:.0f} ({last['kid_min']:.0f} to {last['kid_max']:.0f}) |")
    floor = last
  if floor:
    n = len(curves[next(n for n, c in curves.items() if c.get("split"))]["split_floor"]["swd"])
    rows.append(f"| floor (training photos, half against half, {n} splits) | "
                + " | ".join("" for _ in marks) + f" | SWD {floor['floor_swd']:.1f} ("
                f"{floor['floor_swd_min']:.1f} to {floor['floor_swd_max']:.1f}) = 1x | "
                f"{floor['floor_kid_z_x1e3']:.0f} ({floor['floor_kid_min']:.0f} to "
                f"{floor['floor_kid_max']:.0f}) |")
  return "\n".join(rows)


def latest_samples(name: str, workdir: str, out_dir: str, prefix: str = "cake") -> None:
  """The run's sample grid of its latest checkpoint, as <prefix>_<name>_samples.png."""
  from gm.commands.base import RunContext  # pylint: disable=g-import-not-at-top
  latest = RunContext(workdir).steps()[-1]
  copy(os.path.join(workdir, "samples", f"step_{latest:08d}.png"), out_dir,
       f"{prefix}_{name}_samples.png")


def run_figures(name: str, workdir: str, out_dir: str, prefix: str = "cake") -> dict:
  """Samples, evolution strip, loss curves and spectrum figures; returns the spectrum's peaks."""
  latest_samples(name, workdir, out_dir, prefix)
  strip = [p for p in eval_py("evolution", "--workdir", workdir, "--strip", "8", "--rows", "8")
           if p.endswith("evolution_strip.png")][0]
  copy(strip, out_dir, f"{prefix}_{name}_evolution.png")
  copy(eval_py("loss-curves", "--workdir", workdir)[0], out_dir,
       f"{prefix}_{name}_loss_curves.png")
  paths = eval_py("spectrum", "--workdir", workdir)
  copy([p for p in paths if p.endswith(".png")][0], out_dir, f"{prefix}_{name}_spectrum.png")
  return json.load(open([p for p in paths if p.endswith(".json")][0]))["peaks"]


def inversions(runs: Dict[str, str], out_dir: str, prefix: str = "cake") -> dict:
  """PSNR/SSIM of every procedure and generator; the recommended one's figures."""
  table = {}
  for name, workdir in runs.items():
    for proc, opts in PROCEDURES.items():
      paths = eval_py("invert", "--workdir", workdir, "--index", INDEX, "--image", IMAGE,
                      "--name", f"invert_{proc}", *opts)
      report = json.load(open([p for p in paths if p.endswith(".json")][0]))
      table.setdefault(name, {})[proc] = {k: report[k] for k in ("targets", "psnr_db", "ssim")}
      if proc == "recommended":
        copy([p for p in paths if p.endswith("_evolution.png") or "_evolution_step" in p
              and p.endswith(".png")][0], out_dir, f"{prefix}_{name}_invert_evolution.png")
        z = [p for p in paths if p.endswith(".npz")][0]
        perturb = eval_py("perturb", "--workdir", workdir, "--z", z, "--target", "0")
        copy(perturb[0], out_dir, f"{prefix}_{name}_perturb.png")
        interp = eval_py("interpolate", "--workdir", workdir, "--a", "test:0", "--b", "test:1",
                         *opts)
        copy(interp[0], out_dir, f"{prefix}_{name}_interpolate.png")
  return table


def markdown_inversion_table(table: dict) -> str:
  rows = ["| generator | procedure | training photos (PSNR dB / SSIM) | held-out photos | cat |",
          "|---|---|---|---|---|"]
  for name, procs in table.items():
    for proc, r in procs.items():
      p, s = np.asarray(r["psnr_db"]), np.asarray(r["ssim"])
      cell = lambda idx: f"{p[idx].mean():.1f} / {s[idx].mean():.2f}"
      rows.append(f"| {name} | {proc} | {cell([0, 1])} | {cell([2, 3])} | {cell([4])} |")
  return "\n".join(rows)


def markdown_curve_table(curves: Dict[str, dict], marks=(10, 20, 30, 60), by: str = "minutes"
                         ) -> str:
  """SWD (mean of the draws) at the last checkpoint within each mark (minutes, or epochs with
  by='epoch'), the last one, and last / floor; the floor row gives the floor's chunk range."""
  unit = "min" if by == "minutes" else "epochs"
  head = " | ".join(f"<= {m:g} {unit}" for m in marks)
  rows = [f"| run | {head} | last ({by}) | last / floor |",
          "|---|" + "---|" * (len(marks) + 2)]
  for name, c in curves.items():
    for kind, label in (("swd_ema", "EMA"), ("swd_raw", "raw weights")):
      if kind not in c:
        continue
      label = f"{name} ({label})" if "swd_raw" in c else name
      minutes, values = np.asarray(c[by]), np.asarray(c[kind])
      cells = []
      for m in marks:
        within = np.nonzero(minutes <= m)[0]
        cells.append(f"{values[within[-1]]:.1f}" if len(within) else "-")
      at = f"{minutes[-1]:.0f}" if by == "epoch" else f"{minutes[-1]:.1f}"
      rows.append(f"| {label} | {' | '.join(cells)} | {values[-1]:.1f} ({at}) | "
                  f"{values[-1] / c['floor']:.2f}x |")
  floors = {(c["image_size"], round(c["floor"], 6)): c for c in curves.values()}
  for (size, _), c in floors.items():
    rows.append(f"| floor ({size} px, {c['num_heldout']} training photos per chunk) | "
                + " | ".join("" for _ in marks) + f" | {c['floor']:.1f} (chunks "
                f"{min(c['floor_chunks']):.1f} to {max(c['floor_chunks']):.1f}) | 1x |")
  return "\n".join(rows)


def main():
  ap = cli.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--runs", required=True, help="the main runs: name=<dir>,name=<dir>,...")
  ap.add_argument("--ablations", default="", help="more runs for the SWD curves only")
  ap.add_argument("--out", default=os.path.join(ROOT, "docs"))
  ap.add_argument("--prefix", default="cake", help="figure and results file names' prefix")
  ap.add_argument("--compare", default="", help="a,b: the two runs compare-generators shows "
                  "(default: the first two main runs)")
  ap.add_argument("--minutes", default="10,20,30,60", help="the SWD table's columns")
  ap.add_argument("--by_epoch", action="store_true",
                  help="the SWD figure gets a second panel against epochs (for runs that "
                  "shared the CPU, whose minutes do not compare)")
  ap.add_argument("--skip", default="",
                  help="comma-separated: curves, figures, inversion, copying (with --split: "
                  "do the last checkpoints' samples copy training photos?)")
  ap.add_argument("--split", type=int, default=0,
                  help="K > 0: also the split-half measure (gm.metrics.split: samples against "
                  "halves of the training photos, K random halvings) of the EMA generator")
  ap.add_argument("--split_stride", type=int, default=1,
                  help="score every this-many-th checkpoint with --split, counted from the first "
                  "(and the last)")
  ap.add_argument("--fresh", action="store_true",
                  help="score every checkpoint anew (by default checkpoints scored by an earlier "
                  "call on the same run directory and photos are read from <prefix>_results.json)")
  ap.add_argument("--epoch_seconds", default="",
                  help="name=s,...: those runs' minutes are epoch x s / 60 (a whole epoch's cost "
                  "measured alone, e.g. by benchmarks/project_run.py) instead of their logged "
                  "process time (for runs that shared the CPU); with --skip curves the stored "
                  "curves are re-timed and re-plotted")
  ap.add_argument("--hardware", default=HARDWARE,
                  help="what the runs ran on, for the minutes axis (e.g. \"one core each of a "
                  "2-core CPU\" for two runs pinned side by side)")
  ap.add_argument("--epochs", default="",
                  help="the tables' columns in epochs instead of --minutes (for runs that "
                  "shared the CPU)")
  args = ap.parse_args()
  cli.setup_logging(False)
  runs, ablations = parse_runs(args.runs), parse_runs(args.ablations)
  compare = [n for n in args.compare.split(",") if n] or list(runs)[:2]
  if len(runs) > 1 and (len(compare) != 2 or not set(compare) <= set(runs)):
    raise SystemExit(f"--compare: two of the --runs names ({', '.join(runs)}); got {args.compare!r}")
  skip = set(filter(None, args.skip.split(",")))
  if skip - SKIPPABLE:
    raise SystemExit(f"--skip: {', '.join(sorted(skip - SKIPPABLE))} unknown; valid: "
                     f"{', '.join(sorted(SKIPPABLE))}")
  if args.split < 0 or args.split == 1:
    raise SystemExit(f"--split: {args.split}; pass 0 (off) or K >= 2 halvings (their spread is "
                     "the floor's error)")
  if args.split_stride < 1:
    raise SystemExit(f"--split_stride: {args.split_stride}; pass 1 (every checkpoint) or more")
  epoch_seconds = {name: positive(sec, "--epoch_seconds", f"{name}=0.9")
                   for name, sec in parse_pairs(args.epoch_seconds, "--epoch_seconds").items()}
  unknown = sorted(set(epoch_seconds) - set(runs) - set(ablations))
  if unknown:
    raise SystemExit(f"--epoch_seconds: no run named {unknown[0]!r}; runs: "
                     f"{', '.join({**runs, **ablations})}")
  by, marks = ("epoch", args.epochs) if args.epochs else ("minutes", args.minutes)
  marks = [positive(m, "--epochs" if args.epochs else "--minutes", "30")
           for m in marks.split(",")]
  pre = args.prefix
  os.makedirs(os.path.join(args.out, "figures"), exist_ok=True)  # Before the long work, not after.
  results_path = os.path.join(args.out, f"{pre}_results.json")
  results = json.load(open(results_path)) if os.path.exists(results_path) else {}
  for n, c in results.get("curves", {}).items():  # Files before "workdir": its run in "runs".
    c.setdefault("workdir", results.get("runs", {}).get(n))

  def save():
    with open(results_path, "w") as f:
      json.dump(results, f, indent=1)

  if "curves" not in skip:
    results["curves"] = swd_curves({**runs, **ablations}, splits=args.split,
                                   split_stride=args.split_stride,
                                   previous={} if args.fresh else results.get("curves"))
    save()  # The scores, before the figures and inversions (which may fail).
  if "curves" in results and epoch_seconds:  # Also the stored curves, without rescoring them.
    retime(results["curves"], epoch_seconds)
  if "curves" in results and ("curves" not in skip or epoch_seconds):
    plot_curves(results["curves"], os.path.join(args.out, "figures", f"{pre}_swd_vs_minutes.png"),
                by_epoch=args.by_epoch, hardware=args.hardware)
    if any(c.get("split") for c in results["curves"].values()):
      plot_split(results["curves"], os.path.join(args.out, "figures", f"{pre}_split_ratio.png"),
                 by_epoch=args.by_epoch, hardware=args.hardware)
  if args.split and "copying" not in skip:
    results["copying"] = copying_check({**runs, **ablations}, args.split)
  if "figures" not in skip:
    results["spectrum"] = {name: run_figures(name, workdir, args.out, pre)
                           for name, workdir in runs.items()}
    for name, workdir in ablations.items():
      latest_samples(name, workdir, args.out, pre)
  if "inversion" not in skip:
    results["inversion"] = inversions(runs, args.out, pre)
  if "inversion" not in skip and len(runs) > 1:  # Two generators side by side.
    wa, wb = runs[compare[0]], runs[compare[1]]
    paths = eval_py("compare-generators", "--workdir", wa, "--other", wb, "--index", INDEX,
                    "--image", IMAGE, *PROCEDURES["recommended"])
    for p in paths:
      for part in ("invert", "interpolate", "perturb"):
        if p.endswith(f"_{part}.png"):
          copy(p, args.out, f"{pre}_compare_{part}.png")
    results["compare"] = json.load(open([p for p in paths if p.endswith(".json")][0]))
  results["runs"] = {**runs, **ablations}
  save()
  if "curves" in results:
    print(markdown_curve_table(results["curves"], marks, by))
    if any(c.get("split") for c in results["curves"].values()):
      print(markdown_split_table(results["curves"], marks, by))
  if "inversion" in results:
    print(markdown_inversion_table(results["inversion"]))
  for name, peaks in results.get("spectrum", {}).items():
    print(f"{name}: spectrum grid peaks " + json.dumps(peaks))
  for name, c in results.get("curves", {}).items():
    best = int(np.argmin(c["swd_ema"]))
    raw = f" / {c['swd_raw'][-1]:.1f} (raw)" if "swd_raw" in c else ""
    print(f"{name}: floor {c['floor']:.1f}; last {c['swd_ema'][-1]:.1f}{raw} at "
          f"{c['minutes'][-1]:.1f} min; best {c['swd_ema'][best]:.1f} at {c['minutes'][best]:.1f} min")


if __name__ == "__main__":
  main()
