"""Fault injection for the reliability tests: kill this process at a named point.

`GM_KILL_AT=<point>:<n>` makes the n-th (1-based) arrival at `point` send SIGKILL
to the process itself, so a test can stop training exactly between the metrics
write and the checkpoint, or while a checkpoint is being written. Unset (the
normal case), `kill_point` is a dictionary lookup and nothing else.

Points: 'epoch_logged' (metrics.jsonl written, checkpoint not yet saved),
'checkpoint_writing' (an Orbax save started, not finished).
"""

import collections
import os
import signal

_counts = collections.Counter()


def kill_point(point: str) -> None:
  """SIGKILLs this process on the n-th arrival at `point` if GM_KILL_AT asks for it."""
  spec = os.environ.get("GM_KILL_AT")
  if not spec:
    return
  name, _, n = spec.partition(":")
  if name != point:
    return
  _counts[point] += 1
  if _counts[point] == int(n or 1):
    os.kill(os.getpid(), signal.SIGKILL)
