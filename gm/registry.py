"""Explicit name -> object registries whose errors list the valid names."""

from typing import Any, Callable, Dict

from gm.errors import ConfigError


class Registry:
  """A named mapping filled with the `register` decorator.

  Example:
    LOSSES = Registry("loss")

    @LOSSES.register("mse")
    def mse(...): ...

    LOSSES.get("mse")
  """

  def __init__(self, kind: str):
    self.kind = kind
    self._items: Dict[str, Any] = {}

  def register(self, name: str) -> Callable[[Any], Any]:
    def wrap(obj):
      if name in self._items:
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._items[name] = obj
      return obj
    return wrap

  def get(self, name: str) -> Any:
    if name not in self._items:
      raise ConfigError(
          f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}")
    return self._items[name]

  def names(self):
    return sorted(self._items)

  def __contains__(self, name: str) -> bool:
    return name in self._items
