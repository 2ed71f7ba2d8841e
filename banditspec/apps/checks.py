"""Checks of command-line input that run before any work: counts, output paths, world names.

Every check raises :class:`ValueError` (or, as an argparse ``type``,
:class:`argparse.ArgumentTypeError`) with a message naming the option and the
fix, and creates nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from banditspec.bandits.env import ENVIRONMENTS
from banditspec.speculative.latency import MIN_CALIBRATION

__all__ = ["calibration_count", "environment_class", "non_negative_int", "output_file", "output_folder",
           "positive_int"]


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


def calibration_count(text: str) -> int:
    """An argparse ``type``: queries to calibrate the latency model on (every arm needs a few)."""
    return _integer(text, MIN_CALIBRATION)


def _writable_in(start: Path, path: Path, option: str) -> None:
    """Raise unless the nearest existing folder at or above ``start`` may be written in (``path`` names the input)."""
    existing = start
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, not a folder; choose another {option}")
    try:  # a real write: os.access says yes to root everywhere, /proc and the like included
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"{option} {path}: cannot write in {existing} ({error.strerror or error}); "
                         f"choose another {option}") from None


def output_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` if it is a folder this process can write in, or can create; leaves nothing behind.

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
    """``path`` if this process can write the file (its folder is created if missing); leaves nothing behind.

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
