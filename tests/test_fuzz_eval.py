"""Property-based fuzzing of eval.py's flags: every command of eval.py, one of its flags with a
drawn value (wrong types, zero, negative, huge, NaN and infinities, empty and malformed strings,
paths that do not exist), run for real on a tiny trained GAN and VAE run. Each must succeed,
be refused by the argument parser (exit 2, its one-line `error:`), or end in a one-line
`UserError`: never another exception, and never a JSON file with a NaN (they are strict).

Examples per run: GM_FUZZ_EVAL_EXAMPLES (default 25, about a minute here); a long local run:
  GM_FUZZ_EVAL_EXAMPLES=2000 python -m pytest -q tests/test_fuzz_eval.py
As in tests/test_fuzz.py no example database is kept; cases that found bugs are in PINNED.
"""

import contextlib
import glob
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import gm
from gm.errors import UserError
from tests.conftest import ROOT

EXAMPLES = int(os.environ.get("GM_FUZZ_EVAL_EXAMPLES", "25"))
_QUIET = ["train.progress=False", "train.tensorboard=False"]

# Flags whose value is a workload size: drawn small (a huge one is a long run, not an error).
SIZES = {"num", "n", "k", "steps", "restarts", "images", "draws", "rows", "strip", "top"}
# Flags that only place outputs or pick the run: left at the fixture's values.
FIXED = {"workdir", "out", "debug", "help", "set", "other"}

INTS = ["0", "-1", "1", "2", "3", "-7", "9", "1e3", "2.5", "nan", "abc", ""]
HUGE = ["2147483648", "-2147483649", "99999999999999999999"]
FLOATS = ["0", "-1", "0.5", "1e-300", "1e30", "-1e30", "nan", "inf", "-inf", "abc", ""]
TEXTS = ["", "abc", "0", "-1", "1", "1,2", "0:1", "0,0,0", "nan", "inf", "999999", ",", ":",
         "a:b", "1:", "-3,3", "3,-3", "0,1,2,3,4,5,6,7,8,9,10", "/nonexistent/x.png", "best",
         "latest", "mse", "lpips", "adam", "random", "mean"]

# (family, argv) that were crashes before their checks.
PINNED = [
    ("gan", ["data-grid", "--num", "4"]),  # --workdir without --raw (was an AttributeError).
    ("gan", ["invert", "--index", "0", "--steps", "5", "--lr", "nan"]),
]


def _parser():
  from eval import parser  # pylint: disable=g-import-not-at-top
  return parser()


def _flags():
  """{command: [(flag, kind)]} from eval.py's own parser, kind int / float / text."""
  sub = _parser()._subparsers._group_actions[0]  # pylint: disable=protected-access
  out = {}
  for name, sp in sub.choices.items():
    flags = []
    for a in sp._actions:  # pylint: disable=protected-access
      if not a.option_strings or a.dest in FIXED or a.nargs == 0:
        continue
      kind = {int: "int", float: "float"}.get(a.type, "text")
      flags.append((a.option_strings[0], a.dest, kind))
    out[name] = flags
  return out


FLAGS = _flags()
COMMANDS = sorted(c for c in FLAGS if c != "all")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A tiny trained GAN (MNIST, 2 epochs) and VAE (1 epoch)."""
  base = tmp_path_factory.mktemp("fuzz_eval_runs")
  out = {}
  for family, name, epochs in (("gan", "gan_mlp_mnist", 2), ("vae", "vae_mnist", 1)):
    config = gm.load_config(os.path.join(ROOT, f"configs/{name}.py:smoke"),
                            [f"train.num_epochs={epochs}", "data.num_train=256",
                             "data.num_test=64", *_QUIET])
    out[family] = str(base / family)
    gm.fit(config, out[family])
  return out


def _outcome(argv, workdir, cwd):
  """None if the command succeeds, else its refusal's one-line message; any other exception
  propagates (and fails the test)."""
  from eval import run  # pylint: disable=g-import-not-at-top
  if "--workdir" not in argv and argv[0] != "minimax":
    argv = [argv[0], "--workdir", workdir, *argv[1:]]
  before = set(glob.glob(os.path.join(workdir, "eval", "*.json")))
  with contextlib.chdir(cwd):  # Relative paths a flag names land in a temp dir.
    try:
      args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse: a one-line "error: argument --x: ... (--help)"
      assert e.code == 2, (argv, e.code)
      return f"usage error ({argv})"
    try:
      run(args)
    except UserError as e:
      msg = str(e)
      assert msg and "\n" not in msg and "unexpected" not in msg, (argv, msg)
      return msg
  for path in set(glob.glob(os.path.join(workdir, "eval", "*.json"))) - before:
    json.load(open(path), parse_constant=lambda c: pytest.fail(f"{c} in {path} ({argv})"))
  return None


@pytest.mark.parametrize("family,argv", PINNED)
def test_pinned_eval_flags(family, argv, runs, tmp_path):
  _outcome(argv, runs[family], str(tmp_path))


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_eval_flags_are_accepted_or_one_line_errors(data, runs, tmp_path_factory):
  command = data.draw(st.sampled_from(COMMANDS), label="command")
  family = data.draw(st.sampled_from(sorted(runs)), label="run")
  argv = [command]
  flags = FLAGS[command]
  for flag, dest, kind in data.draw(st.lists(st.sampled_from(flags), min_size=1, max_size=2,
                                             unique=True), label="flags") if flags else []:
    values = {"int": INTS + ([] if dest in SIZES else HUGE), "float": FLOATS}.get(kind, TEXTS)
    if dest in SIZES and kind == "int":
      values = values + ["4", "12"]
    argv += [flag, data.draw(st.sampled_from(values), label=flag)]
  if command in ("invert", "interpolate", "compare-generators") and "--steps" not in argv:
    argv += ["--steps", "3"]  # The default 100 steps are a workload, not an input.
  if command == "gan-score" and "--num" not in argv:
    argv += ["--num", "16"]
  if command == "compare-generators":
    argv += ["--other", runs[family]]
  _outcome(argv, runs[family], str(tmp_path_factory.getbasetemp()))
