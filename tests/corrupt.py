"""Damage done to a written checkpoint, as a disk, a copy or a sync tool might
(tests/test_faults.py, tests/test_integrity.py, scripts/kill_campaign.py)."""

import os

CORRUPTIONS = ("flip", "truncate", "delete", "metadata", "meta_item", "empty")


def largest_array_file(step_dir: str) -> str:
  """The biggest data file of a checkpoint's `state` item: `state/ocdbt.process_<i>/d/<hash>`
  (OCDBT), the one that holds most of the arrays' bytes."""
  import glob  # pylint: disable=g-import-not-at-top
  files = glob.glob(os.path.join(step_dir, "state", "ocdbt.process_*", "d", "*"))
  return max(files, key=os.path.getsize)


def corrupt(step_dir: str, kind: str, offset_fraction: float = 0.5) -> str:
  """Damages checkpoint directory `step_dir` as a disk, a copy or a sync tool might.

  Kinds: 'flip' (64 bytes inverted at `offset_fraction` of the largest array
  file), 'truncate' (that file cut to 1,000 bytes), 'delete' (that file removed),
  'metadata' (Orbax's `state/_METADATA` overwritten in its middle), 'meta_item'
  (a digit of the `meta` item's JSON changed), 'empty' (every file and folder
  in the checkpoint removed, leaving the empty directory).

  Returns:
    What was done, in words.
  """
  if kind == "flip":
    path = largest_array_file(step_dir)
    with open(path, "r+b") as f:
      size = os.fstat(f.fileno()).st_size
      at = max(0, min(int(size * offset_fraction), size - 64))
      f.seek(at)
      data = bytes(b ^ 0xFF for b in f.read(64))
      f.seek(at)
      f.write(data)
    return f"64 bytes flipped at byte {at:,} of {os.path.relpath(path, step_dir)}"
  if kind == "truncate":
    path = largest_array_file(step_dir)
    os.truncate(path, 1000)
    return f"{os.path.relpath(path, step_dir)} truncated to 1,000 bytes"
  if kind == "delete":
    path = largest_array_file(step_dir)
    os.remove(path)
    return f"{os.path.relpath(path, step_dir)} deleted"
  if kind == "metadata":
    path = os.path.join(step_dir, "state", "_METADATA")
    with open(path, "r+b") as f:
      size = os.fstat(f.fileno()).st_size
      f.seek(size // 2)
      f.write(b"\x00" * 16)
    return "16 zero bytes written into the middle of state/_METADATA"
  if kind == "meta_item":
    path = os.path.join(step_dir, "meta", "metadata")
    with open(path) as f:
      text = f.read()
    at = text.index('"epoch": ') + len('"epoch": ')
    with open(path, "w") as f:
      f.write(text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:])
    return "the first digit of the epoch in meta/metadata changed"
  if kind == "empty":
    import shutil  # pylint: disable=g-import-not-at-top
    for name in os.listdir(step_dir):
      path = os.path.join(step_dir, name)
      shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return "every file removed (the directory left empty)"
  raise ValueError(f"unknown corruption {kind!r}; valid: {', '.join(CORRUPTIONS)}")
