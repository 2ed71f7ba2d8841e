"""Arm kinds: the ways a target can decode a query, found by name through the ``banditspec.arms`` entry points.

A kind is a :class:`~banditspec.speculative.kinds.base.DecodingArm` subclass
(the protocol every kind implements: its parameters, how it decodes, how its
greedy run is simulated) registered under its ``kind`` name; the built-in ones
(``ar``, ``draft``, ``prompt_lookup``, ``early_exit``, ``ngram_table``) register exactly as a
user's own do, in ``setup.cfg``::

    [options.entry_points]
    banditspec.arms =
        corpus = my_package.corpus:CorpusLookup

:func:`arm_from_config` builds an arm from one ``[[arms]]`` table of a world
config and names the offending key when a value is wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from banditspec.bandits.registry import Registry
from banditspec.speculative.counterfactual import SCHEDULES, SimulatedDecode
from banditspec.speculative.kinds.ar import Autoregressive
from banditspec.speculative.kinds.base import DecodeRequest, DecodingArm, Models, TargetLayerHead, Trace
from banditspec.speculative.kinds.draft import DraftModel
from banditspec.speculative.kinds.early_exit import EarlyExit
from banditspec.speculative.kinds.ngram_table import NgramDraft
from banditspec.speculative.kinds.prompt_lookup import PromptLookup
from banditspec.speculative.kinds.proposal import ProposalArm

__all__ = [
    "ARM_KINDS",
    "SCHEDULES",
    "Autoregressive",
    "DecodeRequest",
    "DecodingArm",
    "DraftModel",
    "EarlyExit",
    "Models",
    "NgramDraft",
    "PromptLookup",
    "ProposalArm",
    "SimulatedDecode",
    "TargetLayerHead",
    "Trace",
    "arm_from_config",
]

#: Arm kinds by name, from the ``banditspec.arms`` entry points (and :meth:`Registry.register`).
ARM_KINDS: Registry[DecodingArm] = Registry("banditspec.arms", "arm kind")


def arm_from_config(table: Mapping[str, Any], *, where: str = "arms", base: str | Path | None = None) -> DecodingArm:
    """Build the arm one ``[[arms]]`` table describes.

    Parameters
    ----------
    table : mapping
        ``kind`` (a registered kind name), ``name``, optional ``cost``, and the
        kind's own parameters (for ``draft``: ``model``, ``block_size``, ...).
    where : str
        Where the table comes from, for error messages (``"world.toml: arms[2]"``).
    base : str or Path, optional
        The folder the kind's file fields (:attr:`DecodingArm.path_fields`)
        resolve against; they must exist. None: taken as given.

    Raises
    ------
    ValueError
        Naming ``where`` and the key: a missing ``kind`` or ``name``, an
        unknown kind (listing the known ones), a key the kind does not take
        (listing those it does), a file field naming no file, or a value the
        kind refuses.
    """
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: an arm must be a table of keys, got {type(table).__name__}")
    for key in ("kind", "name"):
        if key not in table:
            raise ValueError(f"{where}: missing key {key!r}")
    try:
        cls = ARM_KINDS.get(str(table["kind"]))
    except KeyError as error:
        raise ValueError(f"{where}: {error.args[0]}") from None
    accepted = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(table) - accepted - {"kind"})
    if unknown:
        raise ValueError(f"{where}: arm kind {table['kind']!r} takes no key {unknown[0]!r}; "
                         f"its keys are {sorted(accepted)}")
    options = {k: v for k, v in table.items() if k != "kind"}
    if base is not None:
        for key in set(cls.path_fields) & set(options):
            if not isinstance(options[key], str) or not options[key].strip():
                raise ValueError(f"{where}: {key} must be a path (a non-empty string), got {options[key]!r}")
            path = Path(base) / Path(options[key]).expanduser()
            if not path.exists():
                raise ValueError(f"{where}: {key}: no such file or folder {str(path)!r}")
            options[key] = str(path.resolve())
    try:
        return cls(**options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None
