"""Writing files so that a process killed meanwhile leaves the old file or none, never half of one."""

import os
from typing import Callable


def write_atomic(path: str, write: Callable[[str], None], suffix: str = "") -> None:
  """write(tmp) into a temporary name beside `path`, then rename it over `path`.

  `suffix` ends the temporary name (np.savez appends '.npz' to names without it).
  """
  tmp = f"{path}.tmp{os.getpid()}{suffix}"
  write(tmp)
  os.replace(tmp, path)
