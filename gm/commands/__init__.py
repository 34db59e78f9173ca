"""eval.py commands: each loads what it needs from a run directory and writes files.

A command is a function (ctx: RunContext, args) -> list of written paths,
registered with its argparse options. Commands are thin: figures live in
`gm.plots`, model logic in the families.
"""

from gm.commands.base import COMMANDS, Command, RunContext
# Imported to register their commands.
from gm.commands import autoencoders, cvae, data, gan, generic, invert, verify  # noqa: F401

__all__ = ["COMMANDS", "Command", "RunContext"]
