r"""Trains a model from a config file; re-running the same command resumes.

  python train.py --config configs/vae_mnist.py --workdir runs/vae
  python train.py --config configs/vae_mnist.py:smoke --workdir /tmp/vae \
      --config.optim.lr=3e-4
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from gm import cli, loop

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, optionally with :arg.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (created, or resumed if it holds a run).")
flags.DEFINE_bool("allow_config_change", False, "Resume even if the config differs.")
flags.DEFINE_bool("debug", False, "Show tracebacks of user errors.")
flags.mark_flags_as_required(["config", "workdir"])


def parse_flags(argv):
  """absl flag parsing with bad --config overrides as one-line errors."""
  try:
    return FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    message = " ".join(str(e).replace("\\n", " ").replace("\\'", "'").split())
    print(f"error: bad flag or config override: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.setup_logging()
  sys.exit(cli.run_main(
      lambda: loop.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.allow_config_change),
      FLAGS.debug))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
