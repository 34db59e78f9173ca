"""The results rows of the README: how each is measured, and its tables from docs/results.json.

A `Row` holds the README's commands for one result (train.py, then the eval.py commands that read
its numbers), where its numbers come from in the run directory, and how they are shown.
`scripts/reproduce.py` runs the rows and records every run in docs/results.json; `render_*` turn
that file into the README's results table and docs/results.md's tables, which
tests/test_results.py keeps in step with it.
"""

import dataclasses
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from gm.train.rundir import read_metrics, run_minutes

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
RUNS_BEGIN, RUNS_END = "<!-- results-runs:begin -->", "<!-- results-runs:end -->"
JUDGES_BEGIN, JUDGES_END = "<!-- results-judges:begin -->", "<!-- results-judges:end -->"
JUDGE_SPREAD_ROWS = ("gan_mlp_mnist", "lsgan_mlp_mnist")  # Cheap enough to score many times.
IDX = ("--config.data.source=idx", "--config.data.dir={mnist}")


def _json(workdir: str, name: str) -> dict:
  with open(os.path.join(workdir, "eval", name)) as f:
    return json.load(f)



def read_elbo(workdir: str, step: int) -> dict:
  """`eval.py elbo`: test ELBO (closed-form KL), its MC estimate, IWAE; AE: MSE and BCE."""
  d = _json(workdir, f"elbo_step{step}.json")
  names = {"test/elbo": "elbo", "test/elbo_mc": "elbo_mc", "test/iwae_k100": "iwae",
           "test/kl": "kl", "test/mse": "mse", "test/bce": "bce"}
  out = {v: d[k] for k, v in names.items() if k in d}
  out["epoch_s"] = float(np.mean([r["time/epoch_s"] for r in read_metrics(workdir)]))
  return out


def read_accuracy(workdir: str, step: int) -> dict:
  """The judge: test accuracy (%) at the last epoch."""
  del step
  recs = read_metrics(workdir)
  return {"accuracy": 100 * recs[-1]["test/accuracy"],
          "epoch_s": float(np.mean([r["time/epoch_s"] for r in recs]))}


def judge_accuracy(where: str) -> dict:
  """A judge's test accuracy (%): a run directory's last epoch, or 'builtin''s recorded one."""
  if where != "builtin":
    return {"accuracy": read_accuracy(where, 0)["accuracy"]}
  with np.load(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gm",
                           "metrics", "judge_mnist.npz")) as f:
    return {"accuracy": 100 * json.loads(str(f["provenance"]))["test_accuracy"]}


def read_cvae(workdir: str, step: int) -> dict:
  """CVAE: test ELBO and KL (`elbo --k 0`), the judge's reading of prior samples (`cvae-score`)."""
  out = read_elbo(workdir, step)
  s = _json(workdir, f"cvae_score_step{step}.json")
  out.update(label_accuracy=100 * s["label_accuracy"], position_accuracy=100 * s["position_accuracy"],
             ink_outside=100 * s["ink_outside"],
             real_label_accuracy=100 * s["real_test_canvases"]["label_accuracy"])
  return out


GAN_KEYS = ("frechet", "kid_x1e3", "precision", "recall", "density", "coverage")


def read_gan(workdir: str, step: int, stem: str = "gan_score") -> dict:
  """`gan-score` of the last checkpoint (2,000 samples vs 2,000 test images) and its floor."""
  d = _json(workdir, f"{stem}_step{step}.json")
  (score,) = d["scores"]
  out = {k: score[k] for k in GAN_KEYS}
  if "label_accuracy" in score:
    out["label_accuracy"] = 100 * score["label_accuracy"]
  out.update({f"floor_{k}": d["real_train_vs_test"][k] for k in GAN_KEYS})
  return out


def read_swd(workdir: str, step: int) -> dict:
  """Photo runs: held-out SWD x1e3, mean of `gan-score` draws 0, 1, 2, the real floor, and the
  wall-clock minutes of training up to `step` over every process that trained it."""
  draws = [_json(workdir, f"gan_score{f'_seed{d}' if d else ''}_step{step}.json") for d in range(3)]
  swd = [d["scores"][0]["swd"] for d in draws]
  floor = next(v for k, v in draws[0].items() if k.startswith("real_"))  # real_train_vs_test
  return {"swd": float(np.mean(swd)), "swd_draws": swd, "floor_swd": floor["swd"],
          "minutes": _minutes_to(workdir, step)}


def _minutes_to(workdir: str, step: int) -> Optional[float]:
  """Training minutes from process start up to the last metrics record at or before `step`,
  summed over resumed processes (None if no record there is timed)."""
  minutes = run_minutes(read_metrics(workdir))
  before = [s for s in minutes if s <= step]
  return minutes[max(before)] if before else None


def read_invert(workdir: str, step: int) -> dict:
  """Inversion of held-out photos: mean PSNR (dB) and SSIM over the targets."""
  d = _json(workdir, f"invert_step{step}.json")
  return {"psnr_db": float(np.mean(d["psnr_db"])), "ssim": float(np.mean(d["ssim"]))}


@dataclasses.dataclass(frozen=True)
class Row:
  """One results row: its runs' commands, where its numbers come from, how they are shown."""
  name: str              # --only name; the run directory is <root>/<base>[_seed<s>]
  model: str
  data: str
  metric: str            # may name floor_<key> values: "{floor_frechet:.2f}"
  ref: str               # the README's command label
  train: Tuple[str, ...]  # train.py arguments; {workdir}, {mnist}, {photos}, {root} filled in
  evals: Tuple[Tuple[str, ...], ...]  # eval.py commands; {step}: the last checkpoint's step
  outputs: Tuple[str, ...]  # each eval command's JSON (under <workdir>/eval/) that marks it done
  read: Callable[[str, int], dict]
  show: Tuple[Tuple[str, str], ...]  # (value key, format) of the headline, in order
  cost: str              # time of one run on the 2-core CPU
  base: str = ""
  seeded: bool = False   # a GAN: seeds 0 .. N-1
  costly: bool = False   # runs only when named in --only
  needs: Tuple[str, ...] = ("mnist",)
  readme: bool = True    # a row of the README's table (all rows are in docs/results.md)

  def workdir(self, seed: int) -> str:
    base = self.base or self.name
    return base if seed == 0 else f"{base}_seed{seed}"

  def commands(self, seed: int) -> List[List[str]]:
    train = ["train.py", *self.train, "--workdir", "{workdir}"]
    if seed:
      train.append(f"--config.seed={seed}")
    return [train] + [["eval.py", *e] for e in self.evals]

  def output(self, workdir: str, i: int, step: int) -> str:
    """The JSON eval command i (1, 2, ...) writes for checkpoint `step`."""
    return os.path.join(workdir, "eval", self.outputs[i - 1].format(step=step))


def _gan(name, model, config_hint, cost, costly=False, extra=(), label=False):
  show = (("frechet", ".1f"), ("kid_x1e3", ",.0f"), ("precision", ".2f"), ("recall", ".2f"),
          ("density", ".2f"), ("coverage", ".2f")) + ((("label_accuracy", ".1f"),) if label else ())
  metric = ("judge Fréchet distance / KID ×10³ / precision / recall / density / coverage"
            + (" / label accuracy %" if label else "") +
            " (floor {floor_frechet:.2f} / {floor_kid_x1e3:,.0f} / {floor_precision:.2f} / "
            "{floor_recall:.2f} / {floor_density:.2f} / {floor_coverage:.2f})")
  return Row(name=name, model=model, data="full MNIST", metric=metric, ref="(5)",
             train=("--config", f"configs/{config_hint}.py", *IDX, *extra),
             evals=(("gan-score", "--workdir", "{workdir}"),),
             outputs=("gan_score_step{step}.json",), read=read_gan, show=show, cost=cost,
             seeded=True, costly=costly)


def _cvae(name, model, arg, cost, costly=False):
  return Row(name=name, model=model, data="3x3 canvas",
             metric="test ELBO; judge label accuracy % (real canvases: {real_label_accuracy:.1f})",
             ref="(4)", train=("--config", f"configs/cvae_mnist.py{arg}", *IDX),
             evals=(("elbo", "--workdir", "{workdir}", "--k", "0"),
                    ("cvae-score", "--workdir", "{workdir}")),
             outputs=("elbo_step{step}.json", "cvae_score_step{step}.json"), read=read_cvae,
             show=(("elbo", ".2f"), ("label_accuracy", ".1f")), cost=cost, costly=costly,
             readme=not costly)


def _gan_scores(draws=3):
  return tuple(("gan-score", "--workdir", "{workdir}", *(("--seed", str(d)) if d else ()))
               for d in range(draws))


_SWD_OUT = tuple(f"gan_score{f'_seed{d}' if d else ''}_step{{step}}.json" for d in range(3))
_CAKE32 = ("--config", "configs/dcgan_cake32.py", "--config.data.dir={photos}",
           "--config.data.holdout=0.15", "--config.train.num_epochs=400",
           "--config.train.checkpoint_every=20", "--config.train.eval_every=20",
           "--config.eval.score_every=20")
_INVERT = ("invert", "--workdir", "{workdir}", "--index", "test:0,test:1", "--optimizer", "adam",
           "--lr", "0.1", "--steps", "300", "--restarts", "8")

ROWS: Tuple[Row, ...] = (
    Row("vae", "VAE, latent 2, 10 epochs", "full MNIST", "test ELBO (IWAE k = 100)", "(1)",
        ("--config", "configs/vae_mnist.py", *IDX), (("elbo", "--workdir", "{workdir}"),),
        ("elbo_step{step}.json",), read_elbo, (("elbo", ".2f"), ("iwae", ".2f")),
        cost="about 10 min"),
    Row("ae", "AE, latent 2, 10 epochs", "full MNIST", "test reconstruction MSE per pixel", "(2)",
        ("--config", "configs/ae_mnist.py", *IDX), (("elbo", "--workdir", "{workdir}"),),
        ("elbo_step{step}.json",), read_elbo, (("mse", ".4f"),), cost="about 8 min"),
    Row("quickstart", "VAE quickstart (`:quick`, 15 epochs)", "embedded 4,000 / 1,000",
        "test ELBO (IWAE k = 100)", "quickstart", ("--config", "configs/vae_mnist.py:quick",),
        (("elbo", "--workdir", "{workdir}"),), ("elbo_step{step}.json",), read_elbo,
        (("elbo", ".1f"), ("iwae", ".1f")), cost="about 1 min", needs=()),
    Row("classifier_mnist", "MNIST judge, 5 epochs", "full MNIST", "test accuracy %", "(3)",
        ("--config", "configs/classifier_mnist.py", "--config.train.num_epochs=5", *IDX), (), (),
        read_accuracy, (("accuracy", ".2f"),), cost="about 7 min"),
    _cvae("cvae_z2", "CVAE, latent 2, 10 epochs", "", "about 42 min"),
    _cvae("cvae_z25", "CVAE, latent 25, 20 epochs (`:z25`)", ":z25", "about 65 min", costly=True),
    _cvae("cvae_z100", "CVAE, latent 100, 50 epochs (`:z100`)", ":z100", "about 2 h", costly=True),
    _gan("gan_mlp_mnist", "MLP GAN, 10 epochs", "gan_mlp_mnist", "about 3 min"),
    _gan("lsgan_mlp_mnist", "LSGAN, 10 epochs", "lsgan_mlp_mnist", "about 3 min"),
    _gan("dcgan_mnist", "DCGAN, 5 epochs", "dcgan_mnist", "1 to 2.7 h", costly=True),
    _gan("cgan_mnist", "conditional GAN, 5 epochs", "cgan_mnist", "0.9 to 1.6 h", costly=True,
         label=True),
    Row("cake_fast", "cake fast recipe, 3,000 epochs", "636 carrot-cake photos, 112 held out",
        "held-out SWD ×10³, `gan-score`: 256 samples vs the 112 photos, mean of 3 draws "
        "(floor {floor_swd:.1f})", "(6)",
        ("--config", "configs/cake_fast.py", "--config.data.dir={photos}"), _gan_scores(), _SWD_OUT,
        read_swd, (("swd", ".1f"),), cost="57 min", seeded=True, costly=True, needs=("photos",)),
    Row("cake_fast_invert", "same, inversion of 2 held-out photos", "same",
        "PSNR dB / SSIM (recommended procedure)", "(6)",
        ("--config", "configs/cake_fast.py", "--config.data.dir={photos}"), (_INVERT,),
        ("invert_step{step}.json",), read_invert, (("psnr_db", ".1f"), ("ssim", ".2f")),
        cost="57 min, then 5 min", base="cake_fast", seeded=True, costly=True, needs=("photos",)),
    Row("cake32", "the 32x32 report's DCGAN, 400 epochs", "same",
        "held-out SWD ×10³, as above (floor {floor_swd:.1f})", "(7)", _CAKE32, _gan_scores(),
        _SWD_OUT, read_swd, (("swd", ".1f"),), cost="53 min", seeded=True, costly=True,
        needs=("photos",)),
    Row("cake_grow", "cake grown from 32x32 to 64x64 (`cake_grow.py`), 1,450 epochs", "same",
        "held-out SWD ×10³ at 64 px, as above (floor {floor_swd:.1f})", "(8)",
        ("--config", "configs/cake_grow.py", "--config.data.dir={photos}",
         "--config.train.num_epochs=1450"), _gan_scores(), _SWD_OUT, read_swd, (("swd", ".1f"),),
        cost="101 min", costly=True, needs=("photos",)),
)


def select(only: str) -> List[Row]:
  """The rows named in `only` (comma-separated), or every row that is not costly.

  Judged rows read the judge that ships with gm (`eval.judge=builtin`), not the judge row's run.
  """
  by_name = {r.name: r for r in ROWS}
  if not only:
    return [r for r in ROWS if not r.costly]
  names = [n for n in only.split(",") if n]
  bad = [n for n in names if n not in by_name]
  if bad:
    raise KeyError(f"unknown row {', '.join(bad)}; valid rows: {', '.join(by_name)}")
  return [by_name[n] for n in names]


def load(path: str) -> dict:
  if not os.path.exists(path):
    return {"rows": {}}
  with open(path) as f:
    return json.load(f)


def save(store: dict, path: str) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(json.dumps(store, indent=1, sort_keys=True) + "\n")
  os.replace(tmp, path)


def stats(values: Sequence[float]) -> Tuple[float, float]:
  """Mean and sample standard deviation (ddof = 1; 0 for one value)."""
  v = np.asarray(values, np.float64)
  return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _runs(store: dict, row: Row) -> List[dict]:
  return store.get("rows", {}).get(row.name, {}).get("runs", [])


def _num(x: float, spec: str) -> str:
  """A number as the docs print it: a true minus sign."""
  return format(x, spec).replace("-", "−")


def headline(row: Row, runs: List[dict]) -> str:
  """The value cell: mean ± std over seeds (range of the first number), or one run's numbers."""
  if not runs:
    return "not measured"
  parts = []
  for i, (k, f) in enumerate(row.show):
    have = [r["values"][k] for r in runs if k in r["values"]]
    if not have:  # An earlier run that did not measure it.
      parts.append("–")
      continue
    mean, std = stats(have)
    text = _num(mean, f) + (f" ± {format(std, f)}" if len(have) > 1 else "")
    parts.append(f"**{text}**" if i == 0 else text)
  if len(runs) > 1:
    first = [r["values"][row.show[0][0]] for r in runs]
    f = row.show[0][1]
    note = f"{len(runs)} seeds, mean ± std; range {_num(min(first), f)} to {_num(max(first), f)}"
  else:
    note = "one run" + (f"; each further seed costs {row.cost} here" if row.seeded else "")
  if any("not re-run" in r.get("measured_by", "") for r in runs):
    note += "; an earlier run, not re-run: see docs/results.md"
  note += "".join(f"; {n}" for n in dict.fromkeys(r["note"] for r in runs if r.get("note")))
  return " / ".join(parts) + f" ({note})"


def hardware(runs: List[dict]) -> str:
  return "; ".join(dict.fromkeys(r.get("hardware", "unknown") for r in runs))


class _Values(dict):  # A missing value formats as –.
  def __missing__(self, key):
    return type("Missing", (), {"__format__": lambda self, spec: "–"})()


def _metric(row: Row, runs: List[dict]) -> str:
  """The metric cell, with the floor of the first run (– where it did not measure one)."""
  if not runs:
    return row.metric.split(" (")[0]
  return row.metric.format_map(_Values(runs[0]["values"]))


def render_table(store: dict, rows: Sequence[Row]) -> str:
  lines = ["| model | data | metric | value | command | hardware |", "|---|---|---|---|---|---|"]
  for row in rows:
    runs = _runs(store, row)
    lines.append("| " + " | ".join(c.replace("|", "\\|") for c in (
        row.model, row.data, _metric(row, runs), headline(row, runs), row.ref,
        hardware(runs))) + " |")
  return "\n".join(lines)


def _fmt_value(v) -> str:
  if isinstance(v, list):
    return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
  return _num(v, ".4g" if abs(v) < 1000 else ",.0f") if isinstance(v, float) else str(v)


def render_runs(store: dict) -> str:
  """Every run of every row: its numbers, wall time, date, code version and provenance."""
  lines = ["| row | seed | numbers | wall | hardware | date | code | measured by |",
           "|---|---|---|---|---|---|---|---|"]
  for row in ROWS:
    for r in _runs(store, row):
      nums = ", ".join(f"{k} {_fmt_value(v)}" for k, v in r["values"].items()
                       if not k.startswith("floor_"))  # The floors are in the rows' metric cells.
      wall = "" if r.get("wall_s") is None else f"{r['wall_s'] / 60:.1f} min"
      lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in (
          row.name, r["seed"], nums, wall, r.get("hardware", ""), r.get("date", ""),
          r.get("code_version", ""),
          r.get("measured_by", ""))) + " |")
  return "\n".join(lines)


def render_judges(store: dict) -> str:
  """The GAN rows' Fréchet distance under each judge (another seed of command (3))."""
  spread = store.get("judge_spread")
  if not spread:
    return "Not measured: `python scripts/reproduce.py --mnist <mnist> --judges 3`."
  judges = spread["judges"]
  lines = ["| row | " + " | ".join(
      ("shipped judge, seed 0" if j["workdir"] == "builtin" else f"judge seed {j['seed']}")
      + f" ({j['accuracy']:.2f} %)" for j in judges) + " | all |",
      "|---|" + "---|" * (len(judges) + 1)]
  for name, runs in spread["rows"].items():
    model = next(r.model for r in ROWS if r.name == name)
    cells = []
    for j in range(len(judges)):
      m, sd = stats([r["frechet"][j] for r in runs])
      cells.append(f"{m:.1f} ± {sd:.1f} (floor {runs[0]['floor_frechet'][j]:.2f})")
    every = [f for r in runs for f in r["frechet"]]  # Correlated pairs: a range, not a std.
    cells.append(f"range {min(every):.1f} to {max(every):.1f}")
    lines.append(f"| {model} ({len(runs)} seeds) | " + " | ".join(cells) + " |")
  return "\n".join(lines) + (f"\n\n{spread['hardware']}; {spread['date']}; code "
                              f"{spread['code_version']}.")


def judge_sentence(store: dict) -> str:
  """One line for the README: how far the judge moves the MLP GAN's Fréchet distance."""
  spread = store.get("judge_spread") or {"rows": {}}
  runs = spread["rows"].get("gan_mlp_mnist")
  if not runs:
    return "how much is not measured yet (`scripts/reproduce.py --judges 3`)."
  per_judge = [stats([r["frechet"][j] for r in runs])[0] for j in range(len(spread["judges"]))]
  every = [f for r in runs for f in r["frechet"]]
  others = " and ".join(str(j["seed"]) for j in spread["judges"][1:])
  return (f"scored by the shipped judge and by command (3) retrained with seed {others}, the MLP "
          f"GAN's mean Fréchet distance is {' / '.join(f'{m:.1f}' for m in per_judge)}, and its "
          f"{len(every)} seed-judge pairs range from {min(every):.1f} to {max(every):.1f} "
          "([docs/results.md](docs/results.md#the-judge)).")


def _splice(text: str, begin: str, end: str, body: str, path: str) -> str:
  if text.count(begin) != 1 or text.count(end) != 1:
    raise ValueError(f"{path} needs one {begin} and one {end}")
  head, rest = text.split(begin)
  _, tail = rest.split(end)
  return f"{head}{begin}\n{body}\n{end}{tail}"


def tables(store: dict, repo: str) -> Dict[str, str]:
  """{path: its text with the generated tables} for README.md and docs/results.md."""
  readme, docs = os.path.join(repo, "README.md"), os.path.join(repo, "docs", "results.md")
  out = {}
  with open(readme) as f:
    text = _splice(f.read(), BEGIN, END, render_table(store, [r for r in ROWS if r.readme]),
                   readme)
  out[readme] = _splice(text, JUDGES_BEGIN, JUDGES_END, judge_sentence(store), readme)
  with open(docs) as f:
    text = _splice(f.read(), BEGIN, END, render_table(store, ROWS), docs)
  text = _splice(text, RUNS_BEGIN, RUNS_END, render_runs(store), docs)
  out[docs] = _splice(text, JUDGES_BEGIN, JUDGES_END, render_judges(store), docs)
  return out


def write_tables(store: dict, repo: str) -> List[str]:
  written = []
  for path, text in tables(store, repo).items():
    with open(path) as f:
      if f.read() == text:
        continue
    with open(path, "w") as f:
      f.write(text)
    written.append(path)
  return written
