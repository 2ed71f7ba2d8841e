"""Saved policies on disk: ``policy.json`` and ``state.safetensors`` in one folder, never pickle.

``policy.json`` holds the format version, the learner's registered name and
its hyper-parameters; ``state.safetensors`` its fitted arrays, including
``n_features_``. Both files are written to a temporary name and renamed, so an
interrupted save never leaves half a file under the real name.

Reading checks everything before a learner is built, and every problem is a
:class:`PolicyFileError` naming the file and the field: the format version,
the required keys and their types, the readability of the state file,
``n_features_``, and then (:func:`check_state`) the name, shape, dtype and
finiteness of every array against what the learner expects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from safetensors.numpy import load_file, save_file

__all__ = ["FORMAT", "PolicyFileError", "SavedPolicy", "StateShapes", "check_state", "read_policy", "write_policy"]

#: Version of the on-disk layout; files of another version are refused.
FORMAT = "banditspec-policy/2"
META_FILE = "policy.json"
STATE_FILE = "state.safetensors"
#: Name -> (shape, dtype) of every fitted array a learner saves.
StateShapes = Mapping[str, tuple[tuple[int, ...], np.dtype]]

_META_KEYS = {"format": str, "policy": str, "params": dict}
T = TypeVar("T")


class PolicyFileError(ValueError):
    """A file or folder that is not a valid saved banditspec policy; the message names the file and the field."""

    @classmethod
    def field(cls, file: Path, field: str, problem: str) -> PolicyFileError:
        """The error for ``field`` of ``file``: ``"<file>: field '<field>': <problem>"``."""
        return cls(f"{file}: field {field!r}: {problem}")


@dataclass(frozen=True)
class SavedPolicy:
    """The checked content of a saved policy folder (arrays not yet checked against a learner).

    Parameters
    ----------
    folder : Path
    name : str
        Registered name of the learner.
    params : dict
        Hyper-parameters, as passed to ``__init__``.
    n_features : int
        Feature dimension the learner was fitted with, ``>= 1``.
    state : dict[str, np.ndarray]
        Fitted arrays by name, without ``n_features_``.
    """

    folder: Path
    name: str
    params: dict[str, Any]
    n_features: int
    state: dict[str, np.ndarray]

    @property
    def meta_file(self) -> Path:
        """Path of ``policy.json``."""
        return self.folder / META_FILE

    @property
    def state_file(self) -> Path:
        """Path of ``state.safetensors``."""
        return self.folder / STATE_FILE

    def construct(self, cls: Callable[..., T], names: Sequence[str]) -> T:
        """``cls(**params)``, once the saved parameters are exactly ``names``.

        Raises
        ------
        PolicyFileError
            Naming ``policy.json`` and its ``params`` if a parameter is
            missing or unexpected, or ``cls`` refuses a value.
        """
        missing, unexpected = sorted(set(names) - set(self.params)), sorted(set(self.params) - set(names))
        if missing or unexpected:
            raise PolicyFileError.field(self.meta_file, "params", f"missing {missing}, unexpected {unexpected}; "
                                        f"the learner takes {list(names)}")
        try:
            return cls(**self.params)
        except (TypeError, ValueError) as error:
            raise PolicyFileError.field(self.meta_file, "params", str(error)) from error


def write_policy(path: str | Path, name: str, params: Mapping[str, Any], n_features: int,
                 state: Mapping[str, np.ndarray]) -> Path:
    """Write a policy folder at ``path`` (created if needed) and return it.

    Raises
    ------
    ValueError
        If a hyper-parameter cannot be written as JSON or a fitted array is
        not finite (a diverged learner); nothing is written then.
    """
    arrays = {key: np.asarray(value, order="C") for key, value in state.items()}
    for key, value in arrays.items():
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise ValueError(f"cannot save policy {name!r}: state field {key!r} has NaN or infinite values")
    arrays["n_features_"] = np.array(n_features, dtype=np.int64)
    meta = {"format": FORMAT, "policy": name, "params": {key: _json_value(key, v) for key, v in params.items()}}
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state_tmp, meta_tmp = folder / (STATE_FILE + ".tmp"), folder / (META_FILE + ".tmp")
    save_file(arrays, str(state_tmp))
    meta_tmp.write_text(json.dumps(meta, indent=2))
    state_tmp.replace(folder / STATE_FILE)
    meta_tmp.replace(folder / META_FILE)
    return folder


def read_policy(path: str | Path) -> SavedPolicy:
    """Read and check the policy folder ``path`` (everything that does not depend on the learner).

    Raises
    ------
    PolicyFileError
        Naming the file, and the field where one is at fault.
    """
    folder = Path(path)
    meta_file = folder / META_FILE
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PolicyFileError(f"{folder} is not a saved banditspec policy: cannot read {meta_file} ({error})") from error
    if not isinstance(meta, dict):
        raise PolicyFileError(f"{meta_file} is not a banditspec policy file: expected a JSON object")
    if meta.get("format") != FORMAT:
        raise PolicyFileError.field(meta_file, "format", f"expected {FORMAT!r}, got {meta.get('format')!r} "
                                    "(not a banditspec policy, or saved by another version: fit and save again)")
    for key, kind in _META_KEYS.items():
        if not isinstance(meta.get(key), kind):
            raise PolicyFileError.field(meta_file, key, f"expected a JSON {kind.__name__}, got {meta.get(key)!r}")
    unexpected = sorted(set(meta) - set(_META_KEYS))
    if unexpected:
        raise PolicyFileError.field(meta_file, unexpected[0], f"unexpected key; the keys are {sorted(_META_KEYS)}")
    state_file = folder / STATE_FILE
    try:
        state = load_file(str(state_file))
    except Exception as error:  # safetensors raises several unrelated types
        raise PolicyFileError(f"{state_file}: cannot read the fitted state ({error})") from error
    n_features = state.pop("n_features_", None)
    if n_features is None:
        raise PolicyFileError.field(state_file, "n_features_", "missing")
    if n_features.shape != () or n_features.dtype != np.int64 or int(n_features) < 1:
        raise PolicyFileError.field(state_file, "n_features_", "expected a positive int64 scalar, got "
                                    f"{n_features.dtype} of shape {n_features.shape} = {n_features.ravel()[:3]}")
    return SavedPolicy(folder, meta["policy"], meta["params"], int(n_features), state)


def check_state(file: Path, state: Mapping[str, np.ndarray], expected: StateShapes) -> None:
    """Check saved arrays against the names, shapes and dtypes a learner expects; floats must be finite.

    Raises
    ------
    PolicyFileError
        Naming ``file`` and the first field that is missing, unexpected,
        of another shape or dtype, or not finite.
    """
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing:
        raise PolicyFileError.field(file, missing[0], "missing")
    if unexpected:
        raise PolicyFileError.field(file, unexpected[0], f"unexpected; the learner saves {sorted(expected)}")
    for key, (shape, dtype) in expected.items():
        value = state[key]
        if value.shape != tuple(shape) or value.dtype != dtype:
            raise PolicyFileError.field(file, key, f"expected {np.dtype(dtype)} of shape {tuple(shape)}, "
                                        f"got {value.dtype} of shape {value.shape}")
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise PolicyFileError.field(file, key, "has NaN or infinite values")


def _json_value(key: str, value: Any) -> Any:
    """A hyper-parameter as JSON can hold it (numpy scalars become Python numbers)."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"parameter {key}={value!r} cannot be saved as JSON ({error})") from error
    return value
