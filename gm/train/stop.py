"""Stopping on a signal, and the process clock the metrics log."""

import logging
import os
import signal
import time

log = logging.getLogger("gm")


class GracefulStop:
  """SIGINT / SIGTERM: the first finishes the current epoch and checkpoints it; a second stops now.

  `requested` is the signal's name once one arrived. Only the main thread can
  install handlers; elsewhere this does nothing.
  """

  def __init__(self):
    self.requested = ""
    self._old = {}
    try:
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._old[sig] = signal.signal(sig, self._handle)
    except ValueError:  # Not the main thread.
      self._old = {}

  def _handle(self, signum, frame):
    del frame
    if self.requested:
      raise KeyboardInterrupt
    self.requested = signal.Signals(signum).name
    log.warning("%s: finishing this epoch and writing a checkpoint (again to stop now, "
                "losing the epoch in progress)", self.requested)

  def restore(self):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


def process_seconds() -> float:
  """Wall-clock seconds since this process started (Linux: /proc; elsewhere since gm.train.loop's
  import)."""
  try:
    with open("/proc/self/stat") as f:
      start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
      uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
  except (OSError, ValueError, IndexError):
    return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()
