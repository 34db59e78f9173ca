"""Run context (config, data, checkpoint) shared by eval commands, and their registry."""

import dataclasses
import functools
import json
import math
import numbers
import os
from typing import Callable, List, Optional

import jax

from gm import checkpoint, config_utils, data as gm_data, integrity, train
from gm.errors import UserError
from gm.registry import Registry
from gm.train import rundir

COMMANDS = Registry("eval command")


@dataclasses.dataclass
class Command:
  """An eval command: `run(ctx, args) -> paths`; `add_args(parser)` declares its options.

  Attributes:
    families: the run families it works for (empty: every family).
    applies: ctx -> bool, whether `eval.py all` runs it for this run.
    needs_run: False for commands that take no run directory (ctx is None).
    config_ok: the command needs only a config and its data, so it also runs
      before training with --config FILE[:arg] [--set key=value ...] --out DIR.
  """
  run: Callable
  add_args: Callable = lambda parser: None
  help: str = ""
  families: tuple = ()
  applies: Callable = lambda ctx: True
  needs_run: bool = True
  config_ok: bool = False


def command(name: str, help: str, families=(), args: Callable = lambda p: None, **kwargs):
  def wrap(fn):
    COMMANDS.register(name)(Command(fn, args, help, tuple(families), **kwargs))
    return fn
  return wrap


class RunContext:
  """Lazily loads what a command needs from a run directory."""

  @classmethod
  def from_config(cls, config, out_dir: str) -> "RunContext":
    """A context with a config and its data but no checkpoints (commands with config_ok)."""
    ctx = cls.__new__(cls)
    ctx.workdir, ctx.config, ctx._step_arg, ctx.raw = None, config, "latest", False
    ctx.out_dir = os.path.abspath(out_dir)
    return ctx

  def __init__(self, workdir: str, step: str = "latest", raw: bool = False):
    """`raw`: GAN runs with generator EMA draw from the trained weights, not their average."""
    self.workdir = os.path.abspath(workdir)
    self.raw = raw
    cfg_path = os.path.join(self.workdir, "config.json")
    if not os.path.exists(cfg_path):
      raise UserError(f"{self.workdir} holds no gm run (no config.json); pass the --workdir "
                      "given to train.py")
    try:
      with open(cfg_path) as f:
        self.config = config_utils.from_dict(json.load(f))
    except ValueError:
      raise UserError(f"{cfg_path} is damaged (not JSON); restore it from a copy (train.py keeps "
                      "replaced ones as config.json.<time>.bak)") from None
    self._step_arg = step
    self.out_dir = os.path.join(self.workdir, "eval")
    if step not in ("latest", "best", "", None):
      self.resolve(step)  # A --step that does not exist fails before the model is built.

  @functools.cached_property
  def dataset(self) -> gm_data.Dataset:
    return gm_data.load(self.config.data)

  @functools.cached_property
  def _template(self):
    """(family, an initial RunState to restore into)."""
    family, run, _ = train.build(self.config, self.dataset)
    return family, run

  @functools.cached_property
  def _built(self):
    step = self.resolve(self._step_arg)
    return self._template[0], self.restore(step), step

  def resolve(self, step: str) -> int:
    """'latest', 'best' or a number -> a step of the checkpoint history (clear error otherwise).

    'best': the checkpoint with the best value of the family's quality number
    (`Family.best_metric`) among those logged in metrics.jsonl.
    """
    step = str(step).strip()
    if step not in ("latest", "best", "") and not step.lstrip("-").isdigit():
      raise UserError(f"--step {step!r}: pass a checkpoint step number, 'latest' or 'best'")
    ckpt = checkpoint.Checkpointer(self.workdir, create=False)
    try:
      if step != "best":
        return ckpt.resolve(step)
      steps = set(ckpt.steps())
    finally:
      ckpt.close()
    key, mode = self.family.best_metric
    logged = {r["step"]: r[key] for r in rundir.read_metrics(self.workdir)
              if key in r and r.get("step") in steps}
    if not logged:
      raise UserError(f"--step best: no checkpoint has a logged {key} in metrics.jsonl "
                      "(enable eval.score_every when training), pass --step N instead")
    pick = min if mode == "min" else max
    return pick(logged, key=lambda s: (logged[s], -s) if mode == "min" else (logged[s], s))

  def steps(self) -> List[int]:
    """Every step of the checkpoint history."""
    ckpt = checkpoint.Checkpointer(self.workdir, create=False)
    try:
      return ckpt.steps()
    finally:
      ckpt.close()

  def model_at(self, step: int):
    """The family's model state at a step of the history (without its EMA with `raw`)."""
    return self._as_asked(self.restore(step).model)

  def _as_asked(self, model):
    raw = self.family.raw_state(model) if self.raw else None
    return model if raw is None else raw

  def restore(self, step: int):
    """The RunState at a step of the history."""
    ckpt = checkpoint.Checkpointer(self.workdir, create=False)
    try:
      return ckpt.restore(step, self._template[1])[0]
    except integrity.Damaged as e:
      raise UserError(damaged_message(e, *ckpt.intact_steps(self._template[1], 5, skip=(step,)),
                                      self.workdir)) from None
    finally:
      ckpt.close()

  @property
  def target(self):
    """An initial RunState: the structure a checkpoint of this run restores into."""
    return self._template[1]

  @property
  def family(self):
    return self._template[0]

  @property
  def state(self):
    """The family's model state at the chosen checkpoint (without its EMA with `raw`)."""
    return self._as_asked(self._built[1].model)

  @property
  def step(self) -> int:
    return self._built[2]

  def path(self, name: str, ext: str = "png", step: Optional[int] = None) -> str:
    """<workdir>/eval/<name>_step<N>.<ext>."""
    step = self.step if step is None else step
    return os.path.join(self.out_dir, f"{name}_step{step}.{ext}")

  def require(self, *families: str) -> None:
    if self.config.family not in families:
      raise UserError(f"this command needs a {' or '.join(families)} run; "
                      f"{self.workdir} is a {self.config.family} run")

  def key(self, seed: int) -> jax.Array:
    return jax.random.PRNGKey(seed)


def damaged_message(e: "integrity.Damaged", intact: List[int], complete: bool, workdir: str) -> str:
  """One line: what is damaged, and the intact steps to pass with --step instead."""
  if not intact:
    return (f"{e}; no other checkpoint of this run is intact either: restore {e.directory} from "
            "a copy (eval.py verify --workdir <run> checks every file)")
  listed = ", ".join(map(str, intact)) + ("" if complete else ", ... (newest first)")
  return (f"{e}; intact: {listed}; pass one with --step (e.g. --step {intact[0]}), or restore "
          f"checkpoint {e.step} from a copy; eval.py verify --workdir {workdir} checks every file")


# Numeric flags of eval commands, checked before a command loads or writes anything.
_FLAGS_AT_LEAST_ONE = ("steps", "restarts", "k", "n", "top", "images", "draws", "ms")
_FLAGS_POSITIVE = ("lr",)
_FLAGS_NOT_NEGATIVE = ("prior_weight", "temperature", "strip", "rows", "num")


def check_flags(args) -> None:
  """Every float flag finite, every integer 64-bit; counts >= 1; --lr > 0; --momentum in [0, 1); weights >= 0.
  A one-line UserError names the first flag that is not."""
  given = vars(args)
  for name, value in given.items():
    if isinstance(value, float) and not math.isfinite(value):
      raise UserError(f"--{name} {value}: pass a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
      raise UserError(f"--{name} {value}: too large (64-bit integers)")
  for names, ok, what in ((_FLAGS_AT_LEAST_ONE, lambda v: v >= 1, ">= 1"),
                          (_FLAGS_POSITIVE, lambda v: v > 0, "> 0"),
                          (_FLAGS_NOT_NEGATIVE, lambda v: v >= 0, ">= 0")):
    for name in names:
      if isinstance(given.get(name), (int, float)) and not ok(given[name]):
        raise UserError(f"--{name} {given[name]}: it must be {what}")
  momentum = given.get("momentum")
  if isinstance(momentum, float) and not 0 <= momentum < 1:
    raise UserError(f"--momentum {momentum}: it must be in [0, 1)")


def nonfinite_path(obj, path: str = "") -> Optional[str]:
  """The first key path in a JSON-like object whose number is NaN or infinite, else None."""
  if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):
    return None if math.isfinite(float(obj)) else (path or "the result")
  items = obj.items() if isinstance(obj, dict) else (
      enumerate(obj) if isinstance(obj, (list, tuple)) else ())
  for k, v in items:
    found = nonfinite_path(v, f"{path}[{k!r}]" if isinstance(k, int) else f"{path}.{k}".lstrip("."))
    if found:
      return found
  return None


def write_json(path: str, obj) -> str:
  """Strict JSON (no NaN / Infinity); a non-finite number is a one-line UserError naming it,
  and nothing is written."""
  bad = nonfinite_path(obj)
  if bad:
    raise UserError(f"{bad} is not finite: the computation diverged, so "
                    f"{os.path.basename(path)} is not written (for an inversion, try a lower --lr "
                    "or --optimizer adam)")
  text = json.dumps(obj, indent=2, allow_nan=False)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)
  return path


def parse_ints(text: str, name: str, sep: str = ",", n: Optional[int] = None,
               example: str = "0,2") -> List[int]:
  """Integers from a flag's text ('0,2,5'); a one-line UserError naming the flag otherwise."""
  try:
    values = [int(v) for v in text.split(sep)]
  except ValueError:
    values = []
  if not values or (n is not None and len(values) != n):
    count = f"{n} " if n is not None else ""
    raise UserError(f"--{name} takes {count}integers separated by {sep!r} (e.g. {example}); "
                    f"got {text!r}")
  return values


def parse_floats(text: str, n: int, name: str) -> List[float]:
  try:
    values = [float(v) for v in text.split(",")]
  except ValueError:
    values = []
  if len(values) != n:
    raise UserError(f"--{name} needs {n} comma-separated numbers, got {text!r}")
  return values
