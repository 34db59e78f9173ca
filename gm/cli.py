"""What train.py and eval.py share: logging set-up and one-line user errors."""

import logging
import sys
import traceback

from gm.errors import UserError


def setup_logging() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                      datefmt="%H:%M:%S")
  for noisy in ("absl", "orbax", "jax._src", "tensorflow_datasets"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


def run_main(fn, debug: bool) -> int:
  """Runs fn(); a UserError (or other failure, unless debug) becomes one line on stderr."""
  try:
    fn()
    return 0
  except UserError as e:
    if debug:
      traceback.print_exc()
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    return 130
