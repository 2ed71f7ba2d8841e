"""Arms: named actions of a bandit, and ordered sets of them with an availability mask.

An :class:`Arm` is a name, a ``cost`` hint that cost-penalised rewards use and
free-form settings. What an arm *does* is a matter of the world it is played
in: :mod:`banditspec.speculative.kinds` gives arms that decode with a target
model. Arms hold no model weights, so they are cheap to copy and to save.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from banditspec.bandits.validation import check_real

__all__ = ["Arm", "ArmSet"]


@dataclass(frozen=True)
class Arm:
    """A named decoding strategy.

    Parameters
    ----------
    name : str
        Unique name within an :class:`ArmSet`.
    cost : float, default 0.0
        Non-negative, finite cost hint (for instance the draft's parameter
        count relative to the target's), used by cost-penalised rewards; a
        real number, not a bool or a string.
    settings : Mapping[str, Any]
        Free-form settings of user-defined kinds.

    Raises
    ------
    ValueError
        If the name is not a non-empty string, or the cost is not a finite
        non-negative real number (the message names the arm).
    """

    kind: ClassVar[str] = "custom"

    name: str
    cost: float = 0.0
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Arm.name must be a non-empty string, got {self.name!r}")
        check_real(f"Arm.cost of arm {self.name!r}", self.cost, 0.0)

    def describe(self) -> dict[str, Any]:
        """Return a JSON-serialisable description of the arm."""
        fields = {k: v for k, v in self.__dict__.items() if k != "settings"}
        return {"kind": self.kind, **fields, "settings": dict(self.settings)}

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the arm in a collection's manifest: its description, unless a kind says otherwise."""
        return self.describe()


class ArmSet:
    """An ordered set of uniquely named arms with an availability mask.

    Arms are addressed by position (the action id a policy returns) or by
    name. Arms can be added and removed at run time; each arm can be marked
    unavailable (for instance a draft server that is down) without changing
    the action ids of the others.

    Parameters
    ----------
    arms : Iterable[Arm]
        The arms, in action-id order.

    Raises
    ------
    ValueError
        If two arms share a name.
    """

    def __init__(self, arms: Iterable[Arm] = ()) -> None:
        self._arms: list[Arm] = []
        self._available: dict[str, bool] = {}
        for arm in arms:
            self.add(arm)

    def add(self, arm: Arm) -> int:
        """Append ``arm`` and return its action id."""
        if not isinstance(arm, Arm):
            raise TypeError(f"ArmSet.add expects an Arm, got {type(arm).__name__}")
        if arm.name in self._available:
            raise ValueError(f"duplicate arm name {arm.name!r}: arm names must be unique within an ArmSet")
        self._arms.append(arm)
        self._available[arm.name] = True
        return len(self._arms) - 1

    def remove(self, name: str) -> Arm:
        """Remove the arm called ``name``; later arms shift down by one id."""
        index = self.index(name)
        del self._available[name]
        return self._arms.pop(index)

    def index(self, name: str) -> int:
        """Action id of the arm called ``name``."""
        for i, arm in enumerate(self._arms):
            if arm.name == name:
                return i
        raise KeyError(f"no arm named {name!r}; arms are {self.names}")

    def set_available(self, name: str, available: bool) -> None:
        """Mark the arm called ``name`` (un)available without removing it."""
        self.index(name)
        self._available[name] = bool(available)

    def mask(self) -> np.ndarray:
        """Boolean availability mask, shape ``(K,)``."""
        return np.array([self._available[a.name] for a in self._arms], dtype=bool)

    @property
    def names(self) -> list[str]:
        """Arm names in action-id order."""
        return [a.name for a in self._arms]

    @property
    def costs(self) -> np.ndarray:
        """Cost hints in action-id order, shape ``(K,)``."""
        return np.array([a.cost for a in self._arms], dtype=float)

    def __len__(self) -> int:
        return len(self._arms)

    def __iter__(self) -> Iterator[Arm]:
        return iter(self._arms)

    def __getitem__(self, key: int | str) -> Arm:
        return self._arms[self.index(key)] if isinstance(key, str) else self._arms[key]

    def __contains__(self, name: object) -> bool:
        return name in self._available

    def __repr__(self) -> str:
        return f"ArmSet({self.names})"

    def describe(self) -> list[dict[str, Any]]:
        """JSON-serialisable description of every arm, in order."""
        return [arm.describe() for arm in self._arms]

    def fingerprint(self) -> list[dict[str, Any]]:
        """Every arm's :meth:`Arm.fingerprint`, in order."""
        return [arm.fingerprint() for arm in self._arms]
