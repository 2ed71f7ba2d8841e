"""Logged bandit data: :class:`LoggedDataset`, stored as Parquet.

One row per logged decision: the query id, its feature vector, the action
taken, its reward and the logging policy's propensity, optionally every arm's
reward (full information), the query's group (for reports only) and any
measurement columns (``wall_seconds``, ``align_lcs``, ...) so that other
rewards can be recomputed later. Arm names travel in the file's metadata.

On disk a dataset is one Parquet file or a folder of ``part-*.parquet``
shards written atomically (write to a temporary name, then rename), so an
interrupted writer never leaves a half-written shard behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from banditspec.bandits.validation import arm_ids, integer_array, name_list, real_array

__all__ = ["CorruptShardError", "LoggedDataset", "arm_seconds_column", "write_shard"]


def arm_seconds_column(arm: str) -> str:
    """Name of the column holding arm ``arm``'s wall seconds on every row: ``wall_seconds@<arm>``."""
    return f"wall_seconds@{arm}"

_META_KEY = b"banditspec"


class CorruptShardError(ValueError):
    """A Parquet file that cannot be read as a logged dataset."""


class LoggedDataset:
    """Logged contextual-bandit data.

    Parameters
    ----------
    query_ids : array-like of int, shape (n,)
    X : array-like, shape (n, d)
        Context features.
    actions : array-like of int, shape (n,)
        Arm ids in ``[0, K)``.
    rewards : array-like, shape (n,)
        Rewards of the logged actions, finite.
    propensities : array-like, shape (n,)
        Logging probabilities of the actions, in (0, 1].
    arm_names : Sequence[str]
        Names of the ``K`` arms, unique (a list, not one string).
    all_rewards : array-like, shape (n, K), optional
        Every arm's reward (full information), finite.
    groups : Sequence[str], optional
        A label per row for reports (the domain); never a feature.
    columns : Mapping[str, array-like], optional
        Extra per-row columns (measurements), each of length ``n``.

    Raises
    ------
    ValueError
        Naming the field that is malformed, before anything is stored.
        Booleans and strings are refused where numbers are expected, never
        cast.
    """

    def __init__(
        self,
        query_ids: np.ndarray,
        X: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
        *,
        arm_names: Sequence[str],
        all_rewards: np.ndarray | None = None,
        groups: Sequence[str] | None = None,
        columns: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        arm_names = name_list("arm_names", arm_names)
        if len(arm_names) == 0:
            raise ValueError("arm_names is empty: a dataset needs at least one arm")
        if len(set(arm_names)) != len(arm_names):
            raise ValueError(f"arm_names must be unique, got {arm_names}")
        X = real_array("X", X)
        if X.ndim != 2:
            raise ValueError(f"X must have shape (n, d), got {X.shape}")
        n = X.shape[0]
        if n == 0:
            raise ValueError("the dataset is empty: X has no rows")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values")
        query_ids = integer_array("query_ids", query_ids, (n,))
        actions = arm_ids("actions", actions, n, len(arm_names))
        rewards = _reals("rewards", rewards, (n,))
        if not np.all(np.isfinite(rewards)):
            raise ValueError("rewards contain NaN or infinite values")
        propensities = _reals("propensities", propensities, (n,))
        if not np.all((propensities > 0) & (propensities <= 1)):
            raise ValueError("propensities must lie in (0, 1]")
        if all_rewards is not None:
            all_rewards = _reals("all_rewards", all_rewards, (n, len(arm_names)))
            if not np.all(np.isfinite(all_rewards)):
                raise ValueError("all_rewards contain NaN or infinite values")
        if groups is not None:
            groups = np.asarray([str(g) for g in groups], dtype=object)
            if len(groups) != n:
                raise ValueError(f"groups must have length {n}, got {len(groups)}")
        extra = {}
        for name, values in (columns or {}).items():
            if name in _RESERVED:
                raise ValueError(f"column name {name!r} is reserved")
            values = np.asarray(values)
            if values.shape[:1] != (n,):
                raise ValueError(f"column {name!r} must have length {n}, got shape {values.shape}")
            extra[name] = values
        self.query_ids = query_ids
        self.X = X
        self.actions = actions
        self.rewards = rewards
        self.propensities = propensities
        self.arm_names = arm_names
        self.all_rewards = all_rewards
        self.groups = groups
        self.columns = extra

    # -- shape ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.actions)

    @property
    def n_arms(self) -> int:
        """Number of arms ``K``."""
        return len(self.arm_names)

    @property
    def n_features(self) -> int:
        """Feature dimension ``d``."""
        return self.X.shape[1]

    def subset(self, index: np.ndarray | slice) -> LoggedDataset:
        """Rows at ``index`` (positions, boolean mask or slice) as a new dataset."""
        rows = np.arange(len(self))[index]
        return LoggedDataset(
            self.query_ids[rows],
            self.X[rows],
            self.actions[rows],
            self.rewards[rows],
            self.propensities[rows],
            arm_names=self.arm_names,
            all_rewards=None if self.all_rewards is None else self.all_rewards[rows],
            groups=None if self.groups is None else self.groups[rows],
            columns={k: v[rows] for k, v in self.columns.items()},
        )

    @classmethod
    def concat(cls, datasets: Iterable[LoggedDataset]) -> LoggedDataset:
        """Concatenate datasets with the same arms, features and optional fields."""
        parts = list(datasets)
        if not parts:
            raise ValueError("nothing to concatenate: no datasets given")
        first = parts[0]
        for other in parts[1:]:
            if other.arm_names != first.arm_names:
                raise ValueError(f"arm_names differ: {first.arm_names} vs {other.arm_names}")
            if other.n_features != first.n_features:
                raise ValueError(f"feature dimensions differ: {first.n_features} vs {other.n_features}")
            if (other.all_rewards is None) != (first.all_rewards is None) or (other.groups is None) != (
                first.groups is None
            ) or set(other.columns) != set(first.columns):
                raise ValueError("datasets differ in their optional fields (all_rewards, groups, columns)")
        return cls(
            np.concatenate([p.query_ids for p in parts]),
            np.concatenate([p.X for p in parts]),
            np.concatenate([p.actions for p in parts]),
            np.concatenate([p.rewards for p in parts]),
            np.concatenate([p.propensities for p in parts]),
            arm_names=first.arm_names,
            all_rewards=None if first.all_rewards is None else np.concatenate([p.all_rewards for p in parts]),
            groups=None if first.groups is None else np.concatenate([p.groups for p in parts]),
            columns={k: np.concatenate([p.columns[k] for p in parts]) for k in first.columns},
        )

    # -- Parquet -------------------------------------------------------------------------
    def to_table(self) -> pa.Table:
        """The dataset as an Arrow table with the arm names in its metadata."""
        d = self.n_features
        data = {
            "query_id": pa.array(self.query_ids),
            "features": pa.FixedSizeListArray.from_arrays(pa.array(self.X.ravel()), d),
            "action": pa.array(self.actions),
            "reward": pa.array(self.rewards),
            "propensity": pa.array(self.propensities),
        }
        if self.all_rewards is not None:
            data["all_rewards"] = pa.FixedSizeListArray.from_arrays(pa.array(self.all_rewards.ravel()), self.n_arms)
        if self.groups is not None:
            data["group"] = pa.array(list(self.groups), type=pa.string())
        for name, values in self.columns.items():
            data[name] = pa.array(values.tolist() if values.dtype == object else values)
        meta = {"arm_names": self.arm_names, "version": 1}
        return pa.table(data).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})

    @classmethod
    def from_table(cls, table: pa.Table) -> LoggedDataset:
        """Inverse of :meth:`to_table`."""
        meta_raw = (table.schema.metadata or {}).get(_META_KEY)
        if meta_raw is None:
            raise ValueError("table has no banditspec metadata (arm names): not a logged dataset")
        meta = json.loads(meta_raw)
        if not isinstance(meta, dict) or "arm_names" not in meta:
            raise ValueError("the banditspec metadata of the table has no arm_names")
        missing = [c for c in ("query_id", "features", "action", "reward", "propensity") if c not in table.column_names]
        if missing:
            raise ValueError(f"table lacks the required columns {missing}")
        extra = [c for c in table.column_names if c not in _RESERVED]
        return cls(
            table.column("query_id").to_numpy(),
            _matrix(table, "features"),
            table.column("action").to_numpy(),
            table.column("reward").to_numpy(),
            table.column("propensity").to_numpy(),
            arm_names=meta["arm_names"],
            all_rewards=_matrix(table, "all_rewards") if "all_rewards" in table.column_names else None,
            groups=table.column("group").to_pylist() if "group" in table.column_names else None,
            columns={c: table.column(c).to_numpy(zero_copy_only=False) for c in extra},
        )

    def save(self, path: str | Path) -> Path:
        """Write one Parquet file atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(self.to_table(), tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LoggedDataset:
        """Read a Parquet file, or every ``part-*.parquet`` shard of a folder (in name order).

        Raises
        ------
        CorruptShardError
            Naming the file that cannot be read; other files are left untouched.
        FileNotFoundError
            If ``path`` does not exist or a folder has no shards.
        """
        path = Path(path)
        if path.is_dir():
            files = sorted(path.glob("part-*.parquet"))
            if not files:
                raise FileNotFoundError(f"no part-*.parquet shards in {path}")
            return cls.concat(_read(f) for f in files)
        if not path.exists():
            raise FileNotFoundError(f"no dataset at {path}")
        return _read(path)


_RESERVED = {"query_id", "features", "action", "reward", "propensity", "all_rewards", "group"}


def _reals(name: str, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    array = real_array(name, values)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    return array


def _matrix(table: pa.Table, name: str) -> np.ndarray:
    """The list column ``name`` as an ``(n, width)`` array; every row must hold the same number of values.

    Fixed-size lists (what :meth:`LoggedDataset.to_table` writes) and plain
    lists of equal lengths (what other writers make of a matrix) are read.
    """
    column = table.column(name).combine_chunks()
    kind = column.type
    if not (pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        raise ValueError(f"column {name!r} must hold a list of numbers per row, got type {kind}")
    if column.null_count:
        raise ValueError(f"column {name!r} is missing on {column.null_count} rows")
    if pa.types.is_fixed_size_list(kind):
        width = kind.list_size
    else:
        widths = np.unique(pc.list_value_length(column).to_numpy())
        if len(widths) > 1:
            raise ValueError(f"column {name!r} holds rows of different lengths ({widths.min()} to {widths.max()} "
                             "values): every row needs the same number of values")
        width = int(widths[0]) if len(widths) else 0
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width)


def _read(path: Path) -> LoggedDataset:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise CorruptShardError(f"cannot read shard {path}: {error}; the other shards are intact") from error
    try:
        return LoggedDataset.from_table(table)
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptShardError(f"shard {path} is not a logged dataset: {error}") from error


def write_shard(dataset: LoggedDataset, folder: str | Path, index: int) -> Path:
    """Write ``dataset`` as shard ``part-{index:05d}.parquet`` of ``folder``, atomically."""
    return dataset.save(Path(folder) / f"part-{index:05d}.parquet")
