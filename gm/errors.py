"""Errors meant for the user: printed as one line by train.py / eval.py."""


class UserError(Exception):
  """A problem with the user's input; the message says what to do."""
