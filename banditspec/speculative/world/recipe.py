"""How to open a world again elsewhere: a ``world.toml`` path or a registered world's name and arguments.

A :class:`WorldRecipe` is small and picklable, so worker processes and the
actors of a cluster can each open the same world the driver opened
(:mod:`banditspec.speculative.backends`). Its :meth:`~WorldRecipe.describe`
is the world's entry in a collection's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banditspec.bandits.env import ENVIRONMENTS
from banditspec.speculative.world.world import open_world

__all__ = ["WorldRecipe"]


@dataclass(frozen=True)
class WorldRecipe:
    """A world to open: the ``world.toml`` at ``config``, or the world registered as ``env``.

    Parameters
    ----------
    config : str, optional
        Path of a ``world.toml`` (resolved to an absolute path).
    env : str, optional
        Name of a world in the ``banditspec.envs`` entry points; exactly one
        of ``config`` and ``env``.
    env_args : dict
        Keyword arguments of the ``env`` world (JSON values).
    options : dict
        Keyword arguments every opening passes to the world's constructor
        (``threads``, ``featurizer``, ...), not recorded by :meth:`describe`.
    arms : tuple of str, optional
        Keep only these arms of the opened world (a world narrowed after
        opening, as ``banditspec reproduce`` narrows the toy world), at
        least one; default all.

    Raises
    ------
    ValueError
        Unless exactly one of ``config`` and ``env`` is given, for
        ``env_args`` with ``config``, or for an empty ``arms``.
    """

    config: str | None = None
    env: str | None = None
    env_args: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    arms: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.config is None) == (self.env is None):
            raise ValueError("a world recipe names a world.toml (config=) or a registered world (env=), exactly one")
        if self.arms is not None and not self.arms:
            raise ValueError("arms=() keeps no arm, so no world: name at least one arm, or give None for all")
        if self.config is not None and self.env_args:
            raise ValueError("env_args belong to a registered world (env=); a world.toml holds its own settings")
        if self.config is not None:
            object.__setattr__(self, "config", str(Path(self.config).resolve()))

    def open(self, **overrides: Any) -> Any:
        """The world, opened with :attr:`options` updated by ``overrides``, with only :attr:`arms` if given.

        Options and overrides take precedence over :attr:`env_args` of the
        same name (an actor's ``threads`` and ``progress`` over the user's).

        Raises
        ------
        ValueError
            If the world lacks one of :attr:`arms`.
        """
        options = {**self.options, **overrides}
        if self.config is not None:
            world = open_world(self.config, **options)
        else:
            world = ENVIRONMENTS.create(self.env, **{**self.env_args, **options})
        if self.arms is not None:
            missing = [name for name in self.arms if name not in world.arms]
            if missing:
                raise ValueError(f"the world has no arms {missing}; it has {world.arms.names}")
            for name in [name for name in world.arms.names if name not in self.arms]:
                world.arms.remove(name)
        return world

    def describe(self) -> dict[str, Any]:
        """The world as JSON: ``{"config": path}`` or ``{"env": name, "env_args": {...}}``."""
        if self.config is not None:
            return {"config": self.config}
        return {"env": self.env, "env_args": dict(self.env_args)}
