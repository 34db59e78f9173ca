"""Errors meant for the user: printed as one line by train.py / eval.py."""


class UserError(Exception):
  """A problem with the user's input; the message says what to do."""


class ConfigError(UserError, ValueError):
  """A config value that cannot work (unknown name, impossible size); says what to set."""
