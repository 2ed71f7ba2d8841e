"""Name registries filled from entry points.

The framework never imports ``envs/`` or ``baselines/``: learners and worlds
reach it through the ``banditspec.policies`` and ``banditspec.envs`` entry
points (declared in ``setup.cfg``), exactly as a user's own package would plug
in. :meth:`Registry.register` adds one at run time (for a notebook or a test).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes by name: those registered at run time, then the entry-point group.

    Parameters
    ----------
    group : str
        Entry-point group, for instance ``"banditspec.policies"``.
    what : str
        What the classes are, for error messages ("policy", "environment").
    """

    def __init__(self, group: str, what: str) -> None:
        self.group = group
        self.what = what
        self._runtime: dict[str, type[T]] = {}

    def register(self, name: str, cls: type[T]) -> type[T]:
        """Register ``cls`` under ``name`` for this process; returns ``cls``."""
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.what} name must be a non-empty string, got {name!r}")
        self._runtime[name] = cls
        return cls

    def names(self) -> list[str]:
        """All names, sorted."""
        return sorted(set(self._runtime) | {ep.name for ep in entry_points(group=self.group)})

    def get(self, name: str) -> type[T]:
        """The class registered under ``name``.

        Raises
        ------
        KeyError
            If no class has that name; the message lists the known names.
        """
        if name in self._runtime:
            return self._runtime[name]
        for ep in entry_points(group=self.group):
            if ep.name == name:
                return ep.load()
        raise KeyError(f"unknown {self.what} {name!r}; known: {', '.join(self.names()) or '(none installed)'}")

    def create(self, name: str, **params: Any) -> T:
        """Instantiate the class registered under ``name`` with ``params``."""
        return self.get(name)(**params)

    def name_of(self, cls: type) -> str | None:
        """The name ``cls`` is registered under, or ``None``."""
        for name, registered in self._runtime.items():
            if registered is cls:
                return name
        target = f"{cls.__module__}:{cls.__qualname__}"
        for ep in entry_points(group=self.group):
            if ep.value == target:
                return ep.name
        return None
