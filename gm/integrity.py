"""Checkpoint and run-file integrity: digests saved with every checkpoint, checked on restore.

What is hashed. Every array of the saved state: sha256 over its dtype, shape and
host bytes (C order), keyed by its pytree path (`.model.g.params['Dense_0']['kernel']`).
The digest is of the content, not of Orbax's files, so it does not depend on
Orbax's layout (OCDBT, compression, file names) and a restore recomputes it
from the arrays it returns. The `meta` item is covered too: a sha256 of its
canonical JSON. The run's `config.json` (its content) and a digest of
`monitor.npz`'s arrays are recorded alongside, for `eval.py verify`.

Where it is stored, and why a kill cannot fool it. The digests go into the
`meta` JSON item of the same Orbax `Composite` save as the state (key
`integrity`). They are computed from the in-memory arrays before the save
starts, and Orbax writes both items into `<step>.orbax-checkpoint-tmp-*/` and
renames that directory to `<step>/` only once everything in it is written. So:
- a kill before the rename leaves a temporary directory, never listed and
  removed when the run is opened again: no checkpoint, no verdict;
- a kill after it leaves a complete checkpoint whose digests describe exactly
  the arrays handed to Orbax: it verifies, so it is never judged damaged;
- a checkpoint without its digests cannot appear, except one written before
  this change (then it restores with a note that it cannot be verified);
- a restore writes nothing, and moving a damaged checkpoint aside is one
  rename on the same file system (it is then in `checkpoints/` or in
  `checkpoints.damaged/`, never half in each).
Files damaged after the rename (a bad sector, a partial copy, power lost before
the file system wrote the data Orbax handed it) fail the check: a flipped bit
changes a digest; a missing or truncated file, or unreadable metadata, fails
the read itself, and `Damaged` names which. Hashing before the rename and not
after is the point: per-file hashes of the finished directory would need a
second write after Orbax's rename, and a kill between the two would leave a
checkpoint that looks like an old, unverifiable one.
"""

import glob
import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import jax
import numpy as np

from gm.errors import UserError

VERSION = 1
KEY = "integrity"  # The key of the digests in a checkpoint's meta item.


class Damaged(UserError):
  """A checkpoint whose files do not hold what was written. `reason` says what is wrong."""

  def __init__(self, step: int, directory: str, reason: str):
    super().__init__(f"checkpoint {step} in {directory} is damaged: {reason}")
    self.step, self.directory, self.reason = step, directory, reason


def array_digest(x) -> str:
  """sha256 of an array's dtype, shape and bytes; of a scalar's kind and value.

  Scalars by value: a counter that training holds as an int32 array comes back
  from Orbax as a Python int when the restore target's leaf is one.
  """
  x = np.asarray(x)
  if x.ndim == 0:
    kind = ("bool" if x.dtype == np.bool_ else "int" if np.issubdtype(x.dtype, np.integer)
            else "float" if np.issubdtype(x.dtype, np.floating) else x.dtype.name)
    value = float(x) if kind == "float" else x.item()  # float64 holds any float32/bf16 exactly.
    return hashlib.sha256(f"{kind}:{value!r}".encode()).hexdigest()
  x = np.ascontiguousarray(x)
  h = hashlib.sha256(f"{x.dtype.name}{x.shape}".encode())
  h.update(x.reshape(-1).view(np.uint8))  # No copy: the buffer itself.
  return h.hexdigest()


def tree_digests(tree: Any) -> Dict[str, str]:
  """{pytree path: array_digest} of every leaf, fetched from device once."""
  leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(tree))
  return {jax.tree_util.keystr(path): array_digest(v) for path, v in leaves}


def _canonical(obj) -> bytes:
  """JSON as the meta item stores it (tuples become lists), with sorted keys."""
  return json.dumps(json.loads(json.dumps(obj)), sort_keys=True, separators=(",", ":")).encode()


def seal(meta: Dict[str, Any], state: Any, files: Optional[Dict[str, Any]] = None
         ) -> Dict[str, Any]:
  """`meta` plus the digests of `state`, of the run files `files`, and of meta itself."""
  meta = {k: v for k, v in meta.items() if k != KEY}
  record = {"version": VERSION, "arrays": tree_digests(state), "files": dict(files or {})}
  record["meta"] = hashlib.sha256(_canonical({**meta, KEY: record})).hexdigest()
  return {**meta, KEY: record}


def check(step: int, directory: str, meta: Dict[str, Any], state: Any) -> bool:
  """Raises `Damaged` unless restored `meta` and `state` match the digests sealed into meta.

  Returns:
    True if verified; False for a checkpoint written before digests (nothing to check).
  """
  record = meta.get(KEY)
  if record is None:
    return False
  if not isinstance(record, dict) or not isinstance(record.get("arrays"), dict):
    raise Damaged(step, directory, "its digest record in meta/metadata is unreadable")
  rest = {k: v for k, v in record.items() if k != "meta"}
  body = {**{k: v for k, v in meta.items() if k != KEY}, KEY: rest}
  if hashlib.sha256(_canonical(body)).hexdigest() != record.get("meta"):
    raise Damaged(step, directory, "digest mismatch in meta/metadata (its content changed "
                                   "since it was written)")
  actual, stored = tree_digests(state), record["arrays"]
  if set(actual) != set(stored):
    odd = sorted(set(actual) ^ set(stored))
    raise Damaged(step, directory, f"its digests list other arrays ({', '.join(odd[:2])})")
  bad = [k for k in stored if actual[k] != stored[k]]
  if bad:
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    raise Damaged(step, directory, f"digest mismatch in {bad[0]}{more} (its bytes changed since "
                                   "they were written)")
  return True


# --- the files of a checkpoint directory, before Orbax reads them ----------------------------

def probe(step: int, step_dir: str) -> None:
  """Raises `Damaged` for what Orbax would misreport: missing items, unreadable metadata.

  Orbax ignores an unreadable `_CHECKPOINT_METADATA` (it logs an error) and
  reports an unreadable `state/_METADATA` like a model mismatch; an empty
  directory named like a step is listed as a checkpoint.
  """
  directory = os.path.dirname(step_dir)
  names = set(os.listdir(step_dir)) if os.path.isdir(step_dir) else set()
  if not names:
    raise Damaged(step, directory, "the directory is empty (no checkpoint files)")
  for need in ("_CHECKPOINT_METADATA", "meta/metadata", "state/_METADATA",
               "state/manifest.ocdbt"):
    path = os.path.join(step_dir, need)
    if not os.path.isfile(path):
      raise Damaged(step, directory, f"{need} is missing")
  for name in ("_CHECKPOINT_METADATA", "meta/metadata", "state/_METADATA"):
    try:
      with open(os.path.join(step_dir, name), "rb") as f:
        json.loads(f.read())
    except (ValueError, UnicodeDecodeError) as e:
      raise Damaged(step, directory, f"unreadable metadata: {name} is not valid JSON "
                                     f"({str(e)[:80]})") from None


def read_failure(e: BaseException) -> Optional[str]:
  """What a failed Orbax read says about the files (a TensorStore status), or None.

  TensorStore reports missing, short and garbled files as OUT_OF_RANGE / NOT_FOUND /
  DATA_LOSS / FAILED_PRECONDITION with the array's key, e.g. 'Error reading
  "model.g.params.Dense_0.kernel/0.0" ... Requested byte range [1962, 17032) is
  not valid for value of size 1000'.
  """
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    text = str(e)
    for status in ("OUT_OF_RANGE", "NOT_FOUND", "DATA_LOSS", "FAILED_PRECONDITION"):
      if status in text:
        line = text[text.index(status):].splitlines()[0]
        key = (line.split('Error reading "', 1)[1].split('"', 1)[0]
               if 'Error reading "' in line else "")
        why = line.rsplit(": ", 1)[-1][:120]
        # A short file reads out of range; other statuses (a zstd stream cut short or garbled)
        # cannot tell a missing file from a truncated or corrupt one.
        what = {"OUT_OF_RANGE": "truncated", "NOT_FOUND": "missing"}.get(
            status, "missing, truncated or corrupt")
        return f"a file of array {key or '?'} is {what} ({status}: {why})"
    if isinstance(e, (json.JSONDecodeError, UnicodeDecodeError)):
      return f"unreadable metadata ({str(e)[:80]})"
    e = e.__cause__ or e.__context__
  return None


# --- the other files of a run, for `eval.py verify` -------------------------------------------

def npz_digest(arrays: Dict[str, np.ndarray]) -> str:
  """One sha256 over the named arrays (content, not the zip's bytes: a redrawn file matches)."""
  h = hashlib.sha256()
  for name in sorted(arrays):
    h.update(f"{name}:{array_digest(arrays[name])};".encode())
  return h.hexdigest()


def read_npz(path: str) -> Dict[str, np.ndarray]:
  """Every array of an .npz, read in full, so zip's CRC-32 of each is checked.

  Raises:
    ValueError: the file is not a readable .npz (truncated, bit flips, not a zip).
  """
  import zipfile  # pylint: disable=g-import-not-at-top
  try:
    with np.load(path) as f:
      return {k: np.asarray(f[k]) for k in f.files}
  except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
    raise ValueError(str(e).splitlines()[0][:120] if str(e) else type(e).__name__) from None


def run_files(workdir: str) -> Dict[str, Any]:
  """What each checkpoint records of the run's other files: config.json (its parsed
  content, so that `verify` can tell a resumable change from damage) and monitor.npz
  (a digest of its arrays); those present and readable."""
  out = {}
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      out["config.json"] = json.load(f)
  except (OSError, ValueError):
    pass  # Missing or damaged: not recorded; verify reports it.
  path = os.path.join(workdir, "monitor.npz")
  if os.path.isfile(path):
    try:
      out["monitor.npz"] = npz_digest(read_npz(path))
    except ValueError:
      pass
  return out


def check_config(workdir: str, recorded: Optional[Dict[str, Any]], step: Optional[int]
                 ) -> Tuple[bool, str]:
  """(ok, note) of config.json against the config recorded at checkpoint `step`.

  Intact: the same config, or one that differs only in keys a resume may change
  (`config_utils.RESUMABLE_KEYS`, e.g. more epochs), or a replacement whose
  predecessor (the recorded one) is kept as config.json.<time>.bak.
  """
  from gm import config_utils  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    return (False, "missing")
  try:
    with open(path) as f:
      current = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    return (False, f"not valid JSON ({str(e)[:60]})")
  if not isinstance(recorded, dict):
    return (True, "valid JSON (no config recorded to compare with)")
  if current == recorded:
    return (True, f"as recorded by checkpoint {step}")
  diff = config_utils.differences(recorded, current)
  if not diff:
    a, b = config_utils.flatten(recorded), config_utils.flatten(current)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return (True, f"differs from checkpoint {step}'s only in {', '.join(keys[:3])} (a resume "
                  "may change these)")
  for bak in sorted(glob.glob(path + ".*.bak")):  # Replaced on purpose (--allow_config_change).
    try:
      with open(bak) as f:
        if json.load(f) == recorded:
          return (True, f"replaced after checkpoint {step} (that one is {os.path.basename(bak)})")
    except (OSError, ValueError):
      continue
  return (False, f"differs from the config checkpoint {step} was trained with at "
                 f"{', '.join(diff[:3])}, and no kept .bak holds that one")


def check_monitor(workdir: str, recorded: Optional[str], step: Optional[int]) -> Tuple[bool, str]:
  """(ok, note) of monitor.npz: readable (zip CRC-32), and the content recorded at `step`."""
  path = os.path.join(workdir, "monitor.npz")
  if not os.path.isfile(path):
    return (recorded is None, "missing")
  try:
    digest = npz_digest(read_npz(path))
  except ValueError as e:
    return (False, f"unreadable ({e})")
  if recorded is None:
    return (True, "zip CRC-32 of every array verified (no digest recorded)")
  if digest == recorded:
    return (True, f"zip CRC-32 verified; content as recorded by checkpoint {step}")
  return (False, f"digest mismatch: not the content recorded by checkpoint {step}")


def check_metrics(workdir: str, checkpoint_steps: List[int]) -> Tuple[bool, str]:
  """(ok, note) of metrics.jsonl: a JSON object with a step per line, a line per checkpoint > 0.

  A torn last line (a kill while appending) is noted, not failed: the next
  train.py moves it to metrics.dropped.jsonl.
  """
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    return (not [s for s in checkpoint_steps if s > 0], "missing")
  with open(path, "rb") as f:
    lines = f.read().splitlines()
  steps, torn = set(), ""
  for i, line in enumerate(lines):
    try:
      steps.add(int(json.loads(line)["step"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
      if i == len(lines) - 1:
        torn = "; the last line is torn (a kill while writing; train.py sets it aside)"
        continue
      return (False, f"line {i + 1} is not a JSON object with a step")
  missing = [s for s in checkpoint_steps if s > 0 and s not in steps]
  if missing:
    return (False, f"no line for checkpoint step {', '.join(map(str, missing[:3]))}")
  n = len(lines) - bool(torn)
  return (True, f"{n} line{'' if n == 1 else 's'}, one for every checkpoint{torn}")
