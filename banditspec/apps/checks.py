"""Checks of command-line input that run before any work: counts, output paths, and the engine's commands.

Every check raises :class:`ValueError` (or, as an argparse ``type``,
:class:`argparse.ArgumentTypeError`) with a message naming the option and the
fix, and creates nothing. ``banditspec collect`` and ``banditspec merge`` live
in the engine (:mod:`banditspec.speculative.collect`); their checks are here,
with the other commands' helpers.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from banditspec.bandits.env import ENVIRONMENTS
from banditspec.bandits.shards import parse_shard

__all__ = ["check_collect_arguments", "check_merge_arguments", "environment_class", "non_negative_int",
           "output_file", "output_folder", "positive_int"]


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse ``type``: an integer >= 0 (a seed)."""
    return _integer(text, 0)


def _writable_in(start: Path, path: Path, option: str) -> None:
    """Raise unless the nearest existing folder at or above ``start`` may be written in (``path`` names the input)."""
    existing = start
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, not a folder; choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: no permission to write in {existing}; choose another {option}")


def output_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` if it is a folder this process can write in, or can create; creates nothing.

    Raises
    ------
    ValueError
        If ``path`` or a folder above it is a file, or the nearest existing
        folder is not writable.
    """
    path = Path(path)
    _writable_in(path, path, option)
    return path


def output_file(path: str | Path, option: str = "--out") -> Path:
    """``path`` if this process can write the file (its folder is created if missing); creates nothing.

    Raises
    ------
    ValueError
        If ``path`` is a folder or not writable, or its folder cannot be created or written in.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file name, e.g. {path / 'data.parquet'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{option} {path}: no permission to overwrite it; choose another {option}")
    _writable_in(path.parent, path, option)
    return path


def environment_class(name: str) -> type:
    """The environment registered as ``name``.

    Raises
    ------
    ValueError
        For an unknown name (listing the known ones) or one whose module cannot be imported.
    """
    try:
        return ENVIRONMENTS.get(name)
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; known environments: {', '.join(ENVIRONMENTS.names())}") from None
    except ImportError as error:
        raise ValueError(f"environment {name!r} is registered but cannot be imported ({error})") from error


def _at_least(args: argparse.Namespace, minimum: int, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {minimum}, got {value}")


def check_collect_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec collect``'s options: the environment, the counts, ``--shard`` and ``--out``."""
    environment_class(args.env)
    _at_least(args, 1, "n", "calibration", "chunk_size", "threads")
    _at_least(args, 0, "seed")
    parse_shard(args.shard)
    output_folder(args.out)


def check_merge_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec merge``'s options: every input exists, ``--out`` can be written."""
    for folder in args.folders:
        if not Path(folder).exists():
            raise ValueError(f"no collection folder or Parquet file at {folder}")
    output_file(args.out)
