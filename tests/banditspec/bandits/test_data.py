import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from banditspec.bandits.data import CorruptShardError, LoggedDataset, write_shard


def make(n: int = 6, k: int = 3, seed: int = 0, full: bool = True) -> LoggedDataset:
    rng = np.random.default_rng(seed)
    return LoggedDataset(
        np.arange(n) + 100 * seed,
        rng.normal(size=(n, 4)),
        rng.integers(0, k, n),
        rng.normal(size=n),
        np.full(n, 1 / k),
        arm_names=[f"a{i}" for i in range(k)],
        all_rewards=rng.normal(size=(n, k)) if full else None,
        groups=["x", "y"] * (n // 2),
        columns={"wall_seconds": rng.random(n), "arm": np.array([f"a{i}" for i in rng.integers(0, k, n)])},
    )


def assert_same(a: LoggedDataset, b: LoggedDataset) -> None:
    assert a.arm_names == b.arm_names
    for name in ("query_ids", "X", "actions", "rewards", "propensities", "all_rewards"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert list(a.groups) == list(b.groups)
    assert set(a.columns) == set(b.columns)
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name])


def test_parquet_round_trip(tmp_path):
    data = make()
    path = data.save(tmp_path / "d.parquet")
    assert_same(data, LoggedDataset.load(path))
    assert not list(tmp_path.glob("*.tmp"))


def test_shards_merge_in_order(tmp_path):
    parts = [make(seed=s) for s in range(3)]
    for i, part in enumerate(parts):
        write_shard(part, tmp_path, i)
    assert_same(LoggedDataset.concat(parts), LoggedDataset.load(tmp_path))


def test_corrupt_shard_is_named_and_others_kept(tmp_path):
    write_shard(make(seed=0), tmp_path, 0)
    bad = tmp_path / "part-00001.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(CorruptShardError, match="part-00001.parquet"):
        LoggedDataset.load(tmp_path)
    assert (tmp_path / "part-00000.parquet").exists()
    assert_same(make(seed=0), LoggedDataset.load(tmp_path / "part-00000.parquet"))


def test_subset_and_concat_checks():
    data = make(n=8)
    sub = data.subset(np.array([1, 3]))
    np.testing.assert_array_equal(sub.query_ids, [1, 3])
    with pytest.raises(ValueError, match="optional fields"):
        LoggedDataset.concat([make(full=True), make(full=False)])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rewards": np.array([np.nan, 0, 0])}, "rewards contain NaN"),
        ({"actions": np.array([0, 1, 5])}, "actions must be arm ids"),
        ({"propensities": np.array([0.5, 0.0, 1.0])}, "propensities"),
        ({"X": np.zeros((0, 2))}, "empty"),
        ({"arm_names": ["a", "a"]}, "unique"),
        ({"all_rewards": np.ones((3, 1))}, "all_rewards must have shape"),
        ({"query_ids": np.array([0.5, 1, 2])}, "query_ids must be integers"),
        ({"arm_names": "ab"}, "arm_names must be a sequence of strings"),
        ({"arm_names": ["a", 2]}, "arm_names must hold strings only"),
        ({"actions": np.array([True, False, True])}, "actions must be integers"),
        ({"actions": np.array(["0", "1", "1"])}, "actions must be integers"),
        ({"rewards": np.array([True, False, True])}, "rewards must be real numbers"),
        ({"propensities": np.array(["0.5", "0.5", "0.5"])}, "propensities must be real numbers"),
    ],
)
def test_bad_input_names_the_field(change, message):
    args = dict(
        query_ids=np.arange(3),
        X=np.zeros((3, 2)),
        actions=np.array([0, 1, 1]),
        rewards=np.zeros(3),
        propensities=np.full(3, 0.5),
        arm_names=["a", "b"],
    )
    args.update(change)
    names = args.pop("arm_names")
    extra = {"all_rewards": args.pop("all_rewards")} if "all_rewards" in args else {}
    with pytest.raises(ValueError, match=message):
        LoggedDataset(**args, arm_names=names, **extra)


def test_missing_folder_or_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        LoggedDataset.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        LoggedDataset.load(tmp_path / "nope.parquet")


def _with_features(data: LoggedDataset, features: pa.Array) -> pa.Table:
    table = data.to_table()
    return table.set_column(table.schema.get_field_index("features"), "features", features)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (lambda X: pa.array([row[: 3 + i % 2].tolist() for i, row in enumerate(X)]), "different lengths"),
        (lambda X: pa.array(X[:, 0]), "must hold a list of numbers per row"),
        (lambda X: pa.array([None] + X[1:].tolist()), "missing on 1 rows"),
    ],
    ids=["ragged", "not lists", "a missing row"],
)
def test_a_malformed_features_column_is_a_corrupt_shard_named_with_its_column(features, message, tmp_path):
    data = make()
    pq.write_table(_with_features(data, features(data.X)), tmp_path / "part-00000.parquet")
    with pytest.raises(CorruptShardError, match=f"part-00000.parquet is not a logged dataset: column 'features' "
                                                f".*{message}"):
        LoggedDataset.load(tmp_path)


def test_a_features_column_of_plain_lists_of_equal_length_is_read(tmp_path):
    data = make()
    pq.write_table(_with_features(data, pa.array(data.X.tolist())), tmp_path / "d.parquet")
    assert_same(data, LoggedDataset.load(tmp_path / "d.parquet"))
