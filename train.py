r"""Trains a model from a config file; re-running the same command resumes.

  python train.py --config configs/vae_mnist.py --workdir runs/vae
  python train.py --config configs/vae_mnist.py:smoke --workdir /tmp/vae \
      --config.optim.lr=3e-4

Multi-host (one process per host, same command on each; see the README):
  python train.py ... --distributed --coordinator_address=host0:1234 \
      --num_processes=2 --process_id=<0 or 1>
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from gm import cli, config_utils  # gm.train.loop (JAX) is imported only once the flags are valid.

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, optionally with :arg.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (created, or resumed if it holds a run).")
flags.DEFINE_bool("allow_config_change", False, "Resume even if the config differs.")
flags.DEFINE_bool("debug", False, "Show tracebacks of errors.")
flags.DEFINE_bool("distributed", False, "Multi-host: call jax.distributed.initialize first (one "
                  "process per host; process 0 writes the run directory).")
flags.DEFINE_string("coordinator_address", None, "With --distributed: host:port of process 0 "
                    "(not needed on TPU pods or under SLURM).")
flags.DEFINE_integer("num_processes", None, "With --distributed: number of processes.")
flags.DEFINE_integer("process_id", None, "With --distributed: this process's index, 0..n-1.")
flags.mark_flags_as_required(["config", "workdir"])
SWITCHED_FIELDS = []  # (key, text) of --config.model.g/d.<field> for a switched architecture.


def parse_flags(argv):
  """absl flag parsing; a bad flag, config file or --config override is a one-line error."""
  argv, SWITCHED_FIELDS[:] = cli.defer_switched_fields(argv)  # Typed by the new architecture.
  if SWITCHED_FIELDS:
    sys.argv = argv  # config_flags reads the override names from sys.argv.
  try:
    rest = FLAGS(argv)
    FLAGS.config.keys()  # A config file that failed to load raises only when used.
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
    if any(a in ("--debug", "--debug=true", "--debug=True", "--debug=1") for a in argv):
      raise
    _exit(cli.explain_flag_error(argv, e))
  given = [n for n in ("coordinator_address", "num_processes", "process_id")
           if FLAGS[n].value is not None]
  if given and not FLAGS.distributed:
    _exit(f"--{given[0]} is for multi-host runs; add --distributed")
  if len(rest) > 1:
    _exit(f"unexpected arguments: {' '.join(rest[1:])}; flags are --name=value "
          "(python train.py --help)")
  return rest


def _exit(message: str):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def main(argv):
  del argv
  cli.setup_logging(FLAGS.debug)

  def train():
    base = config_utils.load_file(cli.config_spec(sys.argv))  # The config file's own values.
    config_utils.rebase_models(FLAGS.config, base)  # --config.model.generator=<another>
    for key, text in SWITCHED_FIELDS:
      config_utils.set_value(FLAGS.config, key, text, "--config.")
    config_utils.check_values(FLAGS.config)  # Before any JAX work.
    config_utils.check_kinds(FLAGS.config, base)
    if FLAGS.distributed:
      from gm.backend import distributed  # pylint: disable=g-import-not-at-top
      distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    from gm.train import loop  # pylint: disable=g-import-not-at-top
    loop.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.allow_config_change)

  sys.exit(cli.run_main(train, FLAGS.debug,
                        rerun="rerun the same command (it resumes from the last checkpoint)"))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
