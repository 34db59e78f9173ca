r"""Draws plots and computes metrics from a run directory.

  python eval.py <command> --workdir <dir> [--step N|latest] [options]
  python eval.py all --workdir runs/quickstart      # every plot for the run's family
  python eval.py --help                             # lists the commands

Files go into <dir>/eval/; their paths are printed.
"""

import argparse
import sys

from gm import cli, config_utils
from gm.api import Run
from gm.commands import COMMANDS, RunContext
from gm.commands.base import check_flags
from gm.errors import UserError

# What `all` runs, per family (each command's own defaults).
ALL = {"ae": ["latent-space", "latent-grid", "interpolate", "reconstructions", "loss-curves",
              "evolution", "elbo"],
       "vae": ["latent-space", "latent-grid", "interpolate", "reconstructions", "samples",
               "loss-curves", "evolution", "elbo"],
       "cvae": ["cvae-positions", "cvae-prior", "loss-curves", "evolution", "elbo", "cvae-score"],
       "gan": ["samples", "digits", "loss-curves", "evolution", "gan-score", "data-grid",
               "spectrum"],
       "classifier": ["loss-curves"]}


def parser() -> argparse.ArgumentParser:
  p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = p.add_subparsers(dest="command", metavar="command", required=True)
  for name in COMMANDS.names() + ["all"]:
    cmd = COMMANDS.get(name) if name != "all" else None
    sp = sub.add_parser(name, help=cmd.help if cmd else "every command for the run's family")
    if cmd is not None and cmd.config_ok:
      sp.add_argument("--workdir", help="a run directory, or instead:")
      sp.add_argument("--config", help="a config file[:arg], to look before training")
      sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override with --config (repeatable)")
      sp.add_argument("--out", default="runs/preview", help="output directory with --config")
      sp.add_argument("--step", default="latest", help=argparse.SUPPRESS)
    elif cmd is None or cmd.needs_run:
      sp.add_argument("--workdir", required=True)
      sp.add_argument("--step", default="latest",
                      help="checkpoint step, 'latest' or 'best' (by the logged quality number)")
      sp.add_argument("--raw", action="store_true",
                      help="GAN runs with generator EMA (train.ema_decay > 0): use the trained "
                      "weights, not their moving average (the default)")
    sp.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    if cmd:
      cmd.add_args(sp)
  return p


def run(args) -> None:
  check_flags(args)  # Numeric flags finite and in range, before anything is loaded or written.
  cmd = COMMANDS.get(args.command) if args.command != "all" else None
  if cmd and not cmd.needs_run:
    _run_one(None, args.command, args)
    return
  if cmd and cmd.config_ok and not args.workdir:
    if not args.config:
      raise UserError(f"{args.command} needs --workdir <run> or --config <file>")
    _run_one(RunContext.from_config(config_utils.load_file(args.config, args.set), args.out),
             args.command, args)
    return
  ctx = Run(args.workdir, args.step, getattr(args, "raw", False))  # Python API run (data-grid has no --raw)
  if args.command == "all":
    names = [n for n in ALL.get(ctx.config.family, ["loss-curves", "evolution"])
             if COMMANDS.get(n).applies(ctx)]
    defaults = {n: parser().parse_args([n, "--workdir", args.workdir, "--step", args.step]
                                       + (["--raw"] if args.raw else [])) for n in names}
    for n in names:
      _run_one(ctx, n, defaults[n])
  else:
    _run_one(ctx, args.command, args)


def _run_one(ctx, name, args):
  cmd = COMMANDS.get(name)
  if cmd.families:
    ctx.require(*cmd.families)
  for path in cmd.run(ctx, args):
    print(path)


if __name__ == "__main__":
  a = parser().parse_args()
  cli.setup_logging(a.debug)
  sys.exit(cli.run_main(lambda: run(a), a.debug))
