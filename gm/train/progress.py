"""The progress bar of training and of long eval commands (tqdm, or a silent stand-in)."""


class _NoBar:
  def update(self, n=1):
    pass

  def write(self, text):
    print(text)

  def set_postfix(self, *a, **k):
    pass

  def close(self):
    pass


def progress(total: int, initial: int = 0, enabled: bool = True, unit: str = "step"):
  """A tqdm progress bar with ETA (or a silent stand-in); `write(text)` prints past it."""
  if not enabled:
    return _NoBar()
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True, smoothing=0.1,
              mininterval=1.0)
