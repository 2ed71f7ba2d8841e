"""Snapshots of a policy that learns while serving, each a complete saved selector, written atomically.

Snapshot ``n`` is the folder ``snapshot-<n>`` (the policy files and
``selector.json``): it is written under a temporary name and renamed into
place with ``os.replace``, so a reader (or a server restarted from it) never
sees half a snapshot. ``LATEST`` names the newest one and is replaced the same
way. The ``keep`` newest snapshots are kept.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from banditspec.apps.training import write_selector_description
from banditspec.bandits.policy import Policy
from banditspec.bandits.validation import check_integer

__all__ = ["LATEST", "Snapshots"]

#: The file naming the newest snapshot folder.
LATEST = "LATEST"
_NAME = re.compile(r"snapshot-(\d+)")


class Snapshots:
    """Write policy snapshots into ``folder``.

    Parameters
    ----------
    folder : str or Path
        Created if missing; numbering continues after the snapshots there.
    description : dict
        The ``selector.json`` of the served selector; each snapshot's copy
        adds ``source.online_updates`` and ``source.served_from``.
    keep : int, default 3
        Snapshots kept (older ones are removed).
    """

    def __init__(self, folder: str | Path, description: dict[str, Any], *, keep: int = 3) -> None:
        check_integer("keep", keep, low=1)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.description = description
        self.keep = keep
        self._next = max(self._numbers(), default=-1) + 1

    def _numbers(self) -> list[int]:
        return sorted(int(m.group(1)) for p in self.folder.iterdir() if p.is_dir() and (m := _NAME.fullmatch(p.name)))

    def save(self, policy: Policy, *, updates: int, served_from: str) -> Path:
        """Write the next snapshot of ``policy`` (after ``updates`` online updates) and point ``LATEST`` at it."""
        final = self.folder / f"snapshot-{self._next:06d}"
        tmp = self.folder / f".{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted save
        policy.save(tmp)
        source = {**self.description.get("source", {}), "served_from": served_from, "online_updates": updates}
        write_selector_description(tmp, {**self.description, "source": source})
        os.replace(tmp, final)
        latest = self.folder / (LATEST + ".tmp")
        latest.write_text(final.name + "\n")
        os.replace(latest, self.folder / LATEST)
        self._next += 1
        for number in self._numbers()[: -self.keep]:
            shutil.rmtree(self.folder / f"snapshot-{number:06d}")
        return final
