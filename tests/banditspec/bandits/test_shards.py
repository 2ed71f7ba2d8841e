import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.shards import in_order, merge, parse_shard, write_chunks

K = 3


def rows(positions: np.ndarray) -> LoggedDataset:
    """Deterministic full-information rows: K per item."""
    ids = np.repeat(positions, K)
    actions = np.tile(np.arange(K), len(positions))
    X = np.stack([ids, ids % 7], axis=1).astype(float)
    return LoggedDataset(ids, X, actions, np.sin(ids + actions), np.full(len(ids), 1 / K), arm_names=["a", "b", "c"])


SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_shards import rows
    from banditspec.bandits.shards import in_order, write_chunks

    def slow(positions):
        time.sleep(0.3)
        return rows(positions)

    write_chunks(40, in_order(slow), {folder!r}, config={{"job": "t"}}, chunk_size=2, progress=False)
    """
)


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    folder = tmp_path / "killed"
    script = SCRIPT.format(tests=os.path.dirname(__file__), folder=str(folder))
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while len(list(folder.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(folder.glob("part-*.parquet")))
    assert 3 <= done_before < 20
    write_chunks(40, in_order(rows), folder, config={"job": "t"}, chunk_size=2, progress=False)
    clean = tmp_path / "clean"
    write_chunks(40, in_order(rows), clean, config={"job": "t"}, chunk_size=2, progress=False)
    resumed, reference = LoggedDataset.load(folder), LoggedDataset.load(clean)
    assert len(resumed) == 40 * K
    np.testing.assert_array_equal(resumed.query_ids, reference.query_ids)
    np.testing.assert_array_equal(resumed.rewards, reference.rewards)
    assert not list(folder.glob("*.tmp"))


def test_shards_partition_the_work_and_merge(tmp_path):
    for i in range(3):
        write_chunks(10, in_order(rows), tmp_path / f"s{i}", config={}, chunk_size=2, shard=(i, 3), progress=False)
    merged = merge([tmp_path / f"s{i}" for i in range(3)], tmp_path / "all.parquet")
    np.testing.assert_array_equal(np.unique(merged.query_ids), np.arange(10))
    assert len(merged) == 10 * K
    with pytest.raises(ValueError, match="duplicate"):
        merge([tmp_path / "s0", tmp_path / "s0"], tmp_path / "dup.parquet")


def test_resume_with_other_config_is_refused(tmp_path):
    write_chunks(4, in_order(rows), tmp_path, config={"n": 1}, chunk_size=2, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        write_chunks(4, in_order(rows), tmp_path, config={"n": 2}, chunk_size=2, progress=False)


@pytest.mark.parametrize("text", ["1", "2/2", "a/b", "-1/3", "0/0"])
def test_parse_shard_rejects(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


def test_parse_shard():
    assert parse_shard("1/4") == (1, 4)
