"""What train.py and eval.py share: logging set-up and one-line errors.

By default every failure is one line on stderr that starts with `error:` and
says what to do; `--debug` adds the traceback (and lets background-thread and
"exception ignored" reports through). Exit codes: 2 for a problem with the
user's input (`UserError`, bad flags), 1 for a failure of the machine (disk
full, no permission) or an unexpected error, 130 for Ctrl-C.
"""

import argparse
import difflib
import errno
import logging
import os
import re
import sys
import traceback
import warnings
from typing import Optional, Sequence

from gm.errors import UserError

# errnos of a failed write: no space left, and not allowed.
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


class _NoTracebacks(logging.Filter):
  """Keeps log records to their one-line message (libraries log exceptions with tracebacks)."""

  def filter(self, record):
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    return True


def setup_logging(debug: bool = False) -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                      datefmt="%H:%M:%S")
  for noisy in ("absl", "orbax", "jax._src", "tensorflow_datasets"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  if not debug:
    for handler in logging.getLogger().handlers:
      handler.addFilter(_NoTracebacks())
    # Orbax/TensorStore report failed background writes as "exception ignored" (also at
    # interpreter exit, after our one-line error); run_main reports the failure itself.
    sys.unraisablehook = lambda unraisable: None
    # The same failures again, from asyncio tasks that Orbax leaves behind (at exit, after our line).
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)


def run_main(fn, debug: bool, rerun: str = "rerun") -> int:
  """Runs fn(); any failure becomes one line on stderr (with the traceback if debug).

  `rerun`: what to tell the user to do once a disk-full / permission problem is fixed.
  """
  try:
    fn()
    return 0
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    return 130
  except Exception as e:  # pylint: disable=broad-except
    if debug:
      traceback.print_exc()
    message, code = describe(e, rerun)
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr)
    sys.stderr.flush()
    return code


def describe(e: BaseException, rerun: str = "rerun") -> "tuple[str, int]":
  """(one-line message, exit code) for an exception that reached the entry point."""
  if isinstance(e, UserError):
    return one_line(str(e)), 2
  os_error = write_failure(e)
  if os_error is not None:
    code, path = os_error
    reason = os.strerror(code)
    if code in _DISK_FULL:
      return (f"cannot write {path or 'a file'}: {reason} (disk full or a size limit); free "
              f"disk space and {rerun}; files written before are intact"), 1
    target = path if path and os.path.isdir(path) else os.path.dirname(path) or "the directory"
    if code == errno.EROFS:
      return (f"cannot write {path or 'a file'}: {reason}; use a directory on a writable file "
              f"system and {rerun}"), 1
    return (f"{reason}: {path or 'a file'}; make {target} writable (and readable) for this user, "
            f"or use another directory, and {rerun}"), 1
  if out_of_memory(e):
    what = re.search(r"(?:Out of memory|RESOURCE_EXHAUSTED)[^.;\n]*", str(e))
    return (f"out of device memory ({(what.group(0) if what else type(e).__name__)[:160]}); lower "
            "--config.train.batch_size (or --config.eval.batch_size), or try "
            f"--config.model.compute_dtype=bfloat16, and {rerun}; checkpoints written before are "
            "intact"), 2
  text = one_line(str(e)) or "(no message)"
  return (f"unexpected {type(e).__name__}: {text[:300]}; rerun with --debug for the "
          "traceback and report it"), 1


def out_of_memory(e: BaseException) -> bool:
  """True for a failed device (or host) allocation: XLA's RESOURCE_EXHAUSTED, MemoryError."""
  return isinstance(e, MemoryError) or bool(re.search(r"RESOURCE_EXHAUSTED|Out of memory", str(e)))


def one_line(text: str) -> str:
  return " ".join(str(text).split())


def write_failure(e: BaseException) -> Optional["tuple[int, str]"]:
  """(errno, path) if `e` (or an exception it was raised from) is a failed write.

  Python's own OSError carries errno and filename; Orbax passes TensorStore's
  failures on as ValueError texts with `[os_error_code='28']` and the file path.
  """
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno in _DISK_FULL | _NOT_WRITABLE:
      return e.errno, _short_path(e.filename or "")
    text = str(e)
    m = re.search(r"os_error_code='?(\d+)", text)
    if m and int(m.group(1)) in _DISK_FULL | _NOT_WRITABLE:
      paths = re.findall(r'"(/[^"]+)"', text)
      return int(m.group(1)), _short_path(paths[-1] if paths else "")
    e = e.__cause__ or e.__context__
  return None


def _short_path(path: str) -> str:
  """A checkpoint's temporary files -> the checkpoint being written (`.../checkpoints/<step>`)."""
  path = str(path)
  m = re.match(r"(.*/checkpoints/\d+)\.orbax-checkpoint-tmp", path)
  return f"checkpoint {m.group(1)}" if m else path


# --- argparse commands (eval.py, scripts/) -----------------------------------------------------

class ArgumentParser(argparse.ArgumentParser):
  """argparse whose usage errors are one line: `error: <what> (<prog> --help)`, exit code 2.

  Sub-parsers made by `add_subparsers` are of this class too (argparse's default).
  """

  def error(self, message):
    self.exit(2, f"error: {message} ({self.prog} --help)\n")


# --- absl flags of train.py ------------------------------------------------------------------

def config_spec(argv: Sequence[str]) -> str:
  for i, a in enumerate(argv):
    if a.startswith("--config="):
      return a.split("=", 1)[1]
    if a == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return ""


def _overrides(argv: Sequence[str]):
  """(dotted key, value or None) of every --config.<key>[=value] argument."""
  out = []
  for i, a in enumerate(argv):
    if a.startswith("--config."):
      key, sep, value = a[len("--config."):].partition("=")
      if not sep and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
        value = argv[i + 1]
      out.append((key, value if (sep or value) else None))
  return out


def defer_switched_fields(argv: Sequence[str]) -> "tuple[list, list]":
  """(argv without them, their (key, text)) for the `--config.model.g.<field>` /
  `model.d.<field>` overrides of an architecture the same command switches
  (`--config.model.generator=<another>`): absl would type them against the config file's module;
  train.py sets them after the switch (`config_utils.switched_fields`)."""
  argv = list(argv)
  overrides = [(k, v) for k, v in _overrides(argv) if v is not None]
  spec = config_spec(argv)
  if not spec or not any(k in ("model.generator", "model.discriminator") for k, _ in overrides):
    return argv, []
  from gm import config_utils  # pylint: disable=g-import-not-at-top
  try:
    base = config_utils.load_file(spec)
  except Exception:  # pylint: disable=broad-except  (absl reports a config file that fails)
    return argv, []
  deferred = config_utils.switched_fields(base, overrides)
  keys, out, skip = {k for k, _ in deferred}, [], False
  for i, a in enumerate(argv):
    if skip:
      skip = False
      continue
    key, sep, _ = a[len("--config."):].partition("=")
    if a.startswith("--config.") and key in keys:
      skip = not sep and i + 1 < len(argv) and not argv[i + 1].startswith("--")
      continue
    out.append(a)
  return out, deferred


def _lookup(config, key: str):
  """(value, None) or (None, message for an unknown key)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  node, parts = config, key.split(".")
  for i, part in enumerate(parts):
    prefix = ".".join(parts[:i])
    if not isinstance(node, (ml_collections.ConfigDict, dict)):
      return None, f"config key {prefix} is a value, not a group: no {key}"
    if part not in node:
      from gm import config_utils  # pylint: disable=g-import-not-at-top
      renamed = config_utils.RENAMED_KEYS.get(".".join(parts[:i + 1]))
      if renamed:
        rest = ".".join(parts[i + 1:])
        return None, (f"config key {'.'.join(parts[:i + 1])} is now {renamed}: "
                      f"--config.{renamed}{'.' + rest if rest else ''}=<value>")
      valid = sorted(node.keys())
      close = difflib.get_close_matches(part, valid, 1)
      hint = f"did you mean {'.'.join(parts[:i] + close)}? " if close else ""
      where = f"under {prefix}" if prefix else "at the top level"
      arch = {"model.g": "generator", "model.d": "discriminator"}.get(prefix)
      if arch and isinstance(config.model.get(arch), str):
        where += f" (the fields of model.{arch} {config.model[arch]!r})"
      return None, f"unknown config key {key}; {hint}valid keys {where}: {', '.join(valid)}"
    node = node[part]
  return node, None


def explain_flag_error(argv: Sequence[str], e: BaseException) -> str:
  """A one-line, actionable message for a train.py flag or --config override error."""
  text = str(e)
  spec = config_spec(argv)
  m = re.search(r"Flag --(\w+) must have a value other than None", text)
  if m:
    return (f"--{m.group(1)} is required: python train.py --config configs/<name>.py[:arg] "
            "--workdir <dir> [--config.<key>=<value> ...]")
  if "Error whilst parsing config file" in text or "Failed loading config file" in text:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    last = re.sub(r"^\w+(Error|Exception): ", "", lines[-1]) if lines else text
    if "No such file" in last:
      return f"config file {spec.partition(':')[0]} does not exist; pass --config configs/<name>.py[:arg]"
    return f"cannot load --config {spec}: {last}"
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = None
  if spec:
    try:
      from gm import config_utils  # pylint: disable=g-import-not-at-top
      config = config_utils.load_file(spec)
    except Exception:  # pylint: disable=broad-except  (then the generic message below)
      config = None
  if config is not None:
    for key, value in _overrides(argv):
      current, unknown = _lookup(config, key)
      if unknown:
        return f"--config.{key}: {unknown}"
      if value is None:
        return f"--config.{key} needs a value: --config.{key}=<value>"
      if re.search(rf"flag --config\.{re.escape(key)}=", text):
        if isinstance(current, (dict, ml_collections.ConfigDict)):
          return (f"--config.{key}={value}: {key} is a group of keys ({', '.join(sorted(current))}); "
                  f"set one of them, e.g. --config.{key}.<key>=<value>")
        return f"--config.{key}={value}: {key} takes {_kind(current)}, e.g. --config.{key}={_show(current)}"
  m = re.search(r"Unknown command line flag '([^']+)'", text)
  if m:
    return f"unknown flag --{m.group(1)}; python train.py --help lists the flags"
  return f"bad flag or config override: {one_line(text)}"


def _kind(value) -> str:
  if isinstance(value, bool):
    return "true or false"
  if isinstance(value, int):
    return "an integer"
  if isinstance(value, float):
    return "a number"
  return f"a {type(value).__name__}"


def _show(value) -> str:
  return str(value).lower() if isinstance(value, bool) else str(value)
