"""Re-runs the README's results rows with their documented commands; writes docs/results.json.

  python scripts/reproduce.py --mnist <idx dir> --photos <photo dir> [--only ROW,...] [--seeds N]
      [--judges J] [--root runs] [--results docs/results.json] [--list] [--tables]

Every row is the README's command(s) for it, run as subprocesses (`train.py`, then the `eval.py`
command that reads its number), one run directory per seed: `<root>/<name>` for seed 0 and
`<root>/<name>_seed<s>` for the others, as in the README. Rows of a GAN run seeds 0 .. N-1
(--seeds, default 3); the others run once. MNIST scores read the judge that ships with gm
(gm/metrics/judge_mnist.npz, a run of the judge row); the judge row shows that its recipe
reproduces.

Resume: a step whose output is complete is skipped (a trained run: its last logged epoch is its
configured one; an evaluation: its JSON exists and <workdir>/eval/reproduce_commands.json says this
script wrote it with the same command, so an eval.py call of your own with other options is redone),
and an interrupted training run continues where its checkpoints left it (train.py's own resume), so
the same command picks up after an interruption.

Each run's numbers are written to the results file as soon as they exist, with the commands, the
hardware, the date, the code version (`git describe`, `+dirty` with uncommitted changes) and the
wall time of the steps run. Entries of runs this invocation did not measure stay as they are.
`--tables` (also done after every run) rewrites the README's results table and docs/results.md's
table from the results file; tests/test_results.py checks that they agree.

Rows marked costly (hours on a 2-core CPU) run only when named in --only; --list prints every row
with its cost. --judges J scores the recorded MLP GAN and LSGAN runs under J judges (the row's and
J-1 retrained with other seeds), so the judge's share of a Fréchet distance is measured too.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gm import cli  # pylint: disable=g-import-not-at-top
from scripts import results  # pylint: disable=g-import-not-at-top
from gm.train.rundir import read_metrics  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RESULTS = os.path.join(REPO, "docs", "results.json")
WRITES = ("docs/results.json", "README.md", "docs/results.md")


def git_version() -> str:
  """`git describe --always`, `+dirty` when tracked files (but the ones this writes) changed."""
  try:
    head = subprocess.run(["git", "describe", "--always", "--abbrev=10"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            *(f":!{p}" for p in WRITES)], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown (not a git checkout)"
  return head + ("+dirty" if dirty else "")


def hardware() -> str:
  """The accelerator JAX will use, or the CPU model and core count; with the JAX version."""
  probe = ("import jax; d = jax.devices()[0]; "
           "print(d.platform, len(jax.devices()), d.device_kind, jax.__version__, sep='|')")
  out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       cwd=REPO, check=True).stdout.strip().splitlines()[-1]
  kind, count, name, version = out.split("|")
  if kind == "cpu":
    model = platform.processor() or "CPU"
    try:
      with open("/proc/cpuinfo") as f:
        model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
      pass
    return f"{len(os.sched_getaffinity(0))}-core {model} CPU, JAX {version}"
  return f"{count}x {name}, JAX {version}"


def last_record(workdir: str) -> Optional[dict]:
  """The last complete record of <workdir>/metrics.jsonl (a killed write skipped), or None."""
  if not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return None
  records = read_metrics(workdir)
  return records[-1] if records else None


def trained(workdir: str) -> bool:
  """True when the run logged its configured last epoch."""
  rec, cfg = last_record(workdir), os.path.join(workdir, "config.json")
  if rec is None or not os.path.exists(cfg):
    return False
  with open(cfg) as f:
    epochs = json.load(f)["train"]["num_epochs"]
  return rec.get("epoch") == epochs


def _stamps(output: str) -> str:
  return os.path.join(os.path.dirname(output), "reproduce_commands.json")


def evaluated(output: str, cmd: List[str]) -> bool:
  """True when `output` exists and this script wrote it with `cmd` (not another eval.py call)."""
  if not os.path.exists(output) or not os.path.exists(_stamps(output)):
    return False
  with open(_stamps(output)) as f:
    return json.load(f).get(os.path.basename(output)) == shlex.join(cmd)


def stamp(output: str, cmd: List[str]) -> None:
  """Records that `cmd` wrote `output` (<workdir>/eval/reproduce_commands.json)."""
  path = _stamps(output)
  done = {}
  if os.path.exists(path):
    with open(path) as f:
      done = json.load(f)
  done[os.path.basename(output)] = shlex.join(cmd)
  with open(path, "w") as f:
    json.dump(done, f, indent=1)


class Runner:
  """Runs the steps of one row's seeds, skipping finished ones, and records their numbers."""

  def __init__(self, args):
    self.args, self.python = args, sys.executable
    self.data = {"mnist": args.mnist, "photos": args.photos}
    self.hardware, self.version = hardware(), git_version()
    self.start = time.time()

  def run_dir(self, row: results.Row, seed: int) -> str:
    return os.path.join(self.args.root, row.workdir(seed))

  def commands(self, row: results.Row, seed: int, step: Optional[int]) -> List[List[str]]:
    ctx = {"root": self.args.root, "workdir": self.run_dir(row, seed), "seed": seed,
           "step": step, **self.data}
    return [[a.format(**ctx) for a in cmd] for cmd in row.commands(seed)]

  def check_data(self, row: results.Row) -> None:
    for need in row.needs:
      if not self.data.get(need):
        raise SystemExit(f"row {row.name} needs --{need} <dir>: "
                         f"{'the four MNIST idx files' if need == 'mnist' else 'a photo folder'}")

  def call(self, label: str, cmd: List[str], workdir: str) -> float:
    """Runs `python <cmd>` in the repo, its output appended to <workdir>.log; its wall time."""
    print(f"{label} run: {shlex.join(cmd)}", flush=True)
    log_path = workdir.rstrip("/") + ".log"
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    start = time.time()
    with open(log_path, "a") as log:
      proc = subprocess.run([self.python] + cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
      raise SystemExit(f"{label} failed (exit {proc.returncode}): {shlex.join(cmd)}; "
                       f"see {log_path}")
    return time.time() - start

  def save(self, store: dict) -> None:
    results.save(store, self.args.results)
    if os.path.abspath(self.args.results) == DEFAULT_RESULTS:  # Tables show the repo's file.
      results.write_tables(store, REPO)

  def judge_spread(self, store: dict, judges: int) -> None:
    """Scores every recorded MLP GAN / LSGAN run under judges trained with seeds 1 .. judges-1.

    The judge is part of a Fréchet distance: this measures how far a judge retrained by command
    (3) with another seed moves the GAN rows (judge 0: the shipped one), beside the spread over
    the GANs' own seeds.
    """
    if not self.args.mnist:
      raise SystemExit("--judges needs --mnist <dir>: the four MNIST idx files")
    dirs = ["builtin"]
    for j in range(1, judges):
      wd = os.path.join(self.args.root, "judges", f"classifier_mnist_seed{j}")
      cmd = ["train.py", "--config", "configs/classifier_mnist.py", "--workdir", wd,
             "--config.train.num_epochs=5", "--config.data.source=idx",
             f"--config.data.dir={self.args.mnist}", f"--config.seed={j}"]
      if not trained(wd):
        self.call(f"[judge seed {j}]", cmd, wd)
      dirs.append(wd)
    spread = {"judges": [{"seed": j, "workdir": d, **results.judge_accuracy(d)}
                         for j, d in enumerate(dirs)],
              "hardware": self.hardware, "date": datetime.date.today().isoformat(),
              "code_version": self.version, "rows": {}}
    for name in results.JUDGE_SPREAD_ROWS:
      for run in store.get("rows", {}).get(name, {}).get("runs", []):
        wd = run["workdir"]
        if not trained(wd):
          print(f"[{name} seed {run['seed']}] {wd} is not here: left out of the judge spread")
          continue
        step = last_record(wd)["step"]
        scores = []
        for j, d in enumerate(dirs):
          stem = "gan_score" if j == 0 else f"gan_score_judge{j}"  # Judge 0: the row's score.
          cmd = ["eval.py", "gan-score", "--workdir", wd] + (
              ["--judge", d, "--name", stem] if j else [])
          out = os.path.join(wd, "eval", f"{stem}_step{step}.json")
          if not evaluated(out, cmd):
            self.call(f"[{name} seed {run['seed']} judge {j}]", cmd, wd)
            stamp(out, cmd)
          scores.append(results.read_gan(wd, step, stem))
        spread["rows"].setdefault(name, []).append(
            {"seed": run["seed"], "frechet": [s["frechet"] for s in scores],
             "floor_frechet": [s["floor_frechet"] for s in scores]})
    store["judge_spread"] = spread
    self.save(store)
    print(results.judge_sentence(store), flush=True)

  def run_seed(self, row: results.Row, seed: int, label: str) -> dict:
    workdir = self.run_dir(row, seed)
    ran, wall, version = set(), 0.0, None
    for i, _ in enumerate(row.commands(seed)):
      step = (last_record(workdir) or {}).get("step")
      cmd = self.commands(row, seed, step)[i]
      if (i == 0 and trained(workdir)) or (i > 0 and evaluated(row.output(workdir, i, step), cmd)):
        print(f"{label} skip (done): {shlex.join(cmd)}", flush=True)
        continue
      version = version or git_version()  # The tree the first step that runs imports.
      wall += self.call(label, cmd, workdir)
      ran.add(i)
      if i > 0:
        stamp(row.output(workdir, i, step), cmd)
    step = last_record(workdir)["step"]
    entry = {"seed": seed, "workdir": workdir,
             "commands": [shlex.join(["python"] + c) for c in self.commands(row, seed, step)],
             "values": row.read(workdir, step)}
    entry.update(measured_by="scripts/reproduce.py", hardware=self.hardware,
                 date=datetime.date.today().isoformat(), code_version=version or self.version,
                 wall_s=round(wall, 1))
    return entry, ran

  def run_row(self, row: results.Row, seeds: int, store: dict, index: str) -> None:
    self.check_data(row)
    for s in (range(seeds) if row.seeded else [0]):
      t0 = time.time()
      label = f"[{index} {row.name} seed {s}]"
      entry, ran = self.run_seed(row, s, label)
      runs = store.setdefault("rows", {}).setdefault(row.name, {}).setdefault("runs", [])
      old = next((r for r in runs if r["seed"] == s), None)
      if 0 not in ran and old is not None:
        # Trained before: keep when and how; refresh the numbers and add any evaluation time.
        old.update(values=entry["values"], commands=entry["commands"], workdir=entry["workdir"])
        if ran:
          old["scored"] = f"{entry['date']}, code {entry['code_version']}, {entry['hardware']}"
          if old.get("wall_s") is not None:
            old["wall_s"] = round(old["wall_s"] + entry["wall_s"], 1)
      elif 0 not in ran:
        entry.update(measured_by="scripts/reproduce.py (run directory found trained)",
                     hardware="unknown", date="unknown", code_version="unknown", wall_s=None,
                     scored=f"{entry['date']}, code {entry['code_version']}, {entry['hardware']}")
        runs.append(entry)
      else:
        if old is not None:
          runs.remove(old)
        runs.append(entry)
      runs.sort(key=lambda r: r["seed"])
      self.save(store)
      shown = " / ".join(format(entry["values"][k], f) for k, f in row.show)
      print(f"{label} {shown} ({time.time() - t0:.0f} s; "
            f"{(time.time() - self.start) / 60:.1f} min since the start)", flush=True)


def main(argv=None):
  ap = cli.ArgumentParser(description=__doc__.split("\n")[0],
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--mnist", default="", help="folder with the four MNIST idx files")
  ap.add_argument("--photos", default="", help="folder of carrot-cake photos")
  ap.add_argument("--only", default="", help="comma-separated row names (--list shows them)")
  ap.add_argument("--seeds", type=int, default=3, help="seeds per GAN row (default 3)")
  ap.add_argument("--root", default="runs", help="where the run directories go")
  ap.add_argument("--results", default=DEFAULT_RESULTS,
                  help="the results file (the README's tables are generated from the default)")
  ap.add_argument("--judges", type=int, default=0,
                  help="also score the MLP GAN and LSGAN runs under judges of seeds 1 .. J-1 "
                  "(trained under <root>/judges/; about 6 min each)")
  ap.add_argument("--list", action="store_true", help="print the rows and their costs")
  ap.add_argument("--tables", action="store_true",
                  help="only regenerate the README and docs/results.md tables from --results")
  args = ap.parse_args(argv)
  for name in ("root", "results", "mnist", "photos"):  # Children run in the repo: so does this.
    path = getattr(args, name)
    if path:
      path = os.path.relpath(os.path.abspath(path), REPO)
      setattr(args, name, path if not path.startswith("..") else os.path.abspath(path))
  os.chdir(REPO)
  if args.list:
    for row in results.ROWS:
      print(f"{row.name:16s} {'costly, ' if row.costly else ''}{row.cost}: {row.model}")
    return
  store = results.load(args.results)
  if args.tables:
    if os.path.abspath(args.results) != DEFAULT_RESULTS:
      raise SystemExit(f"--tables writes the README from {DEFAULT_RESULTS}; drop --results")
    for path in results.write_tables(store, REPO):
      print(path)
    return
  if args.seeds < 1:
    raise SystemExit("--seeds must be >= 1")
  try:
    chosen = results.select(args.only)
  except KeyError as e:
    raise SystemExit(e.args[0]) from None
  runner = Runner(args)
  print(f"{len(chosen)} rows on {runner.hardware}, code {runner.version}; results -> "
        f"{args.results}", flush=True)
  for i, row in enumerate(chosen):
    runner.run_row(row, args.seeds, store, f"{i + 1}/{len(chosen)}")
  if args.judges > 1:
    runner.judge_spread(store, args.judges)


if __name__ == "__main__":
  main()
