"""Argument checks shared by learners, datasets, arms and estimators.

One exception policy holds across banditspec: a malformed argument, whether
of the wrong type or of the wrong value, raises :class:`ValueError` whose
message names the parameter (or field, or column) and says what is expected,
before any state changes. Errors about files are subclasses of
:class:`ValueError` that also name the file
(:class:`~banditspec.bandits.policy.PolicyFileError`,
:class:`~banditspec.bandits.data.CorruptShardError`).

Booleans are never accepted as numbers (``True`` is not an arm id, a cost
or an epoch count), and strings are never parsed into numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = [
    "arm_ids",
    "availability_mask",
    "check_instance",
    "check_integer",
    "check_real",
    "integer_array",
    "name_list",
    "real_array",
]


def _is_number(value: object, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_))


def check_integer(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[low, high]`` (ends left as None are open).

    Raises
    ------
    ValueError
        Naming ``name`` if ``value`` is not an integer (a float such as
        ``2.0``, a bool or a string is not) or lies outside the range.
    """
    if not _is_number(value, Integral) or (low is not None and value < low) or (high is not None and value > high):
        bounds = "" if low is None and high is None else \
            f" in [{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must be an integer{bounds}, got {value!r}")
    return int(value)


def check_real(name: str, value: object, low: float = -math.inf, high: float = math.inf, *,
               open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a ``float`` if it is a finite real number in the interval from ``low`` to ``high``.

    The interval is closed unless ``open_low`` / ``open_high`` say otherwise.

    Raises
    ------
    ValueError
        Naming ``name`` if ``value`` is not a real number (a bool or a
        string is not), is NaN or infinite, or lies outside the interval.
    """
    try:
        ok = _is_number(value, Real) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        ok = False
    ok = ok and (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be a finite real number in {interval}, got {value!r}")
    return float(value)


def check_instance(name: str, value: object, cls: type) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is an instance of ``cls``."""
    if not isinstance(value, cls):
        raise ValueError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")


def integer_array(name: str, values: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``values`` as an int64 array of ``shape``.

    Integer arrays are taken as they are; float arrays only if every entry is
    a whole number (``1.0``, not ``1.5`` or NaN).

    Raises
    ------
    ValueError
        Naming ``name`` for another shape, booleans, strings, objects or
        fractional values.
    """
    array = _as_array(name, values)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array) & (np.mod(array, 1) == 0)):
            raise ValueError(f"{name} must be integers (whole numbers), got fractional, NaN or infinite values")
        if array.size and np.abs(array).max() >= 2.0**63:
            raise ValueError(f"{name} has values beyond the int64 range")
    elif array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got an array of dtype {array.dtype} ({_kind(array)})")
    return array.astype(np.int64)


def real_array(name: str, values: Any) -> np.ndarray:
    """``values`` as a float64 array of any shape, from integers or floats only.

    Raises
    ------
    ValueError
        Naming ``name`` for booleans, strings, complex numbers or objects
        that are not numbers (numeric strings are not parsed).
    """
    array = _as_array(name, values)
    if array.dtype.kind == "O":
        if not all(_is_number(v, Real) for v in array.ravel()):
            raise ValueError(f"{name} must hold real numbers only, got an array of objects")
    elif array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be real numbers, got an array of dtype {array.dtype} ({_kind(array)})")
    return array.astype(float)


def arm_ids(name: str, values: Any, n: int, n_arms: int) -> np.ndarray:
    """``values`` as ``n`` int64 arm ids in ``[0, n_arms)`` (see :func:`integer_array` for the dtypes taken).

    Raises
    ------
    ValueError
        Naming ``name`` for another shape or dtype, or an id out of range.
    """
    ids = integer_array(name, values, (n,))
    if ids.size and (ids.min() < 0 or ids.max() >= n_arms):
        raise ValueError(f"{name} must be arm ids in [0, {n_arms}), got values in [{ids.min()}, {ids.max()}]")
    return ids


def availability_mask(available: Any, n: int, n_arms: int) -> np.ndarray:
    """The ``(n, n_arms)`` boolean availability mask of ``available`` (all True if None).

    ``available`` must be booleans of shape ``(n_arms,)`` (the same arms for
    every row) or ``(n, n_arms)``; integers (arm indices or 0/1 flags),
    fractions and NaN are refused rather than cast, because a cast would
    silently change which arms may be chosen.

    Raises
    ------
    ValueError
        For another dtype or shape, or a row with no available arm.
    """
    if available is None:
        return np.ones((n, n_arms), dtype=bool)
    mask = np.asarray(available)
    if mask.dtype != bool:
        raise ValueError(f"available must be booleans (True where the arm may be chosen), got dtype {mask.dtype}; "
                         "for arm indices build a mask: mask = np.zeros(n_arms, bool); mask[indices] = True")
    if mask.shape == (n_arms,):
        mask = np.broadcast_to(mask, (n, n_arms))
    if mask.shape != (n, n_arms):
        raise ValueError(f"available must have shape ({n_arms},) or ({n}, {n_arms}), got {mask.shape}")
    if not mask.any(axis=1).all():
        raise ValueError("available leaves some query with no arm: at least one arm per row must be available")
    return mask


def name_list(name: str, values: Any) -> list[str]:
    """``values`` as a list of strings, one per item.

    Raises
    ------
    ValueError
        Naming ``name`` if ``values`` is a bare string (``"abcd"`` would
        become four one-letter names) or bytes, not iterable, or holds
        something other than strings.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a sequence of strings such as ['ar', 'draft'], got {values!r}")
    names = list(values)
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{name} must hold strings only, got {bad[0]!r} ({type(bad[0]).__name__})")
    return [str(v) for v in names]


def _as_array(name: str, values: Any) -> np.ndarray:
    try:
        return np.asarray(values)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name} is not a rectangular array: {error}") from error


def _kind(array: np.ndarray) -> str:
    return {"b": "booleans", "U": "strings", "S": "bytes", "O": "objects", "c": "complex numbers"}.get(
        array.dtype.kind, "not integers")
