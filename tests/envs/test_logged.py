import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import ENVIRONMENTS, Environment, Queries
from banditspec.bandits.splits import split_of
from banditspec.envs.logged import LoggedWorld, arm_seconds_column
from banditspec.envs.synthetic import SyntheticWorld

SOURCE = SyntheticWorld()
K = len(SOURCE.arms)


def logged(n: int = 200, *, full: bool = True, seconds: bool = True) -> LoggedDataset:
    """A uniformly logged dataset of the synthetic world, one row per query, with or without full information."""
    q = SOURCE.queries(n, split="train", seed=0)
    actions = np.random.default_rng(1).integers(0, K, n)
    fb = SOURCE.full_feedback(q, seed=0)
    rows = np.arange(n)
    columns = {}
    if seconds:
        columns = {arm_seconds_column(a): fb.seconds[:, k] for k, a in enumerate(SOURCE.arms.names)}
        columns.update(wall_seconds=fb.seconds[rows, actions], ar_wall_seconds=fb.ar_seconds)
    return LoggedDataset(q.ids, q.X, actions, fb.rewards[rows, actions], np.full(n, 1 / K),
                         arm_names=SOURCE.arms.names, all_rewards=fb.rewards if full else None,
                         groups=q.groups, columns=columns)


def collected(n: int = 400, *, full: bool = True) -> LoggedDataset:
    """Full information as a collection writes it: K rows per query (one per arm), the query's rows together."""
    q = SOURCE.queries(n, split="train", seed=5)
    fb = SOURCE.full_feedback(q, seed=5)
    columns = {arm_seconds_column(a): np.repeat(fb.seconds[:, k], K) for k, a in enumerate(SOURCE.arms.names)}
    columns.update(wall_seconds=fb.seconds.ravel(), ar_wall_seconds=np.repeat(fb.ar_seconds, K))
    return LoggedDataset(np.repeat(q.ids, K), np.repeat(q.X, K, axis=0), np.tile(np.arange(K), n), fb.rewards.ravel(),
                         np.full(n * K, 1 / K), arm_names=SOURCE.arms.names,
                         all_rewards=np.repeat(fb.rewards, K, axis=0) if full else None,
                         groups=np.repeat(q.groups, K), columns=columns)


def first_rows(data: LoggedDataset, ids: np.ndarray) -> np.ndarray:
    """The first row of each query id in ``ids``."""
    first = {}
    for row, query in enumerate(data.query_ids):
        first.setdefault(int(query), row)
    return np.array([first[int(i)] for i in ids])


COLLECTED = LoggedWorld(collected(), test_fraction=0.25)


def test_is_a_registered_environment():
    world = LoggedWorld(logged())
    assert isinstance(world, Environment) and ENVIRONMENTS.get("logged") is LoggedWorld
    assert world.arms.names == SOURCE.arms.names


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32))
def test_no_query_is_in_both_splits_for_any_seed(seed):
    train, test = COLLECTED.split_ids("train", seed), COLLECTED.split_ids("test", seed)
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(np.concatenate([train, test])) == sorted(set(COLLECTED.dataset.query_ids.tolist()))
    # membership follows the hash of the id alone: the seed only reorders
    np.testing.assert_array_equal(np.sort(test), np.sort(COLLECTED.split_ids("test", 0)))
    assert {split_of(int(i), 0.25) for i in test} == {"test"} and {split_of(int(i), 0.25) for i in train} == {"train"}


def test_the_seed_shuffles_the_order_within_a_split():
    assert not np.array_equal(COLLECTED.split_ids("test", 3), COLLECTED.split_ids("test", 4))
    np.testing.assert_array_equal(COLLECTED.split_ids("test", 3), COLLECTED.split_ids("test", 3))


def test_split_sizes_are_close_to_the_fraction():
    n_test = COLLECTED.split_size("test")
    assert n_test + COLLECTED.split_size("train") == 400
    assert abs(n_test / 400 - 0.25) < 0.06  # 2.8 binomial standard deviations


def test_queries_are_distinct_query_ids_with_every_arms_reward_and_seconds():
    data = COLLECTED.dataset
    q = COLLECTED.queries(60, split="test", seed=2)
    assert len(set(q.ids.tolist())) == 60
    np.testing.assert_array_equal(q.ids, COLLECTED.split_ids("test", 2)[:60])
    rows = first_rows(data, q.ids)
    np.testing.assert_array_equal(q.X, data.X[rows])
    np.testing.assert_array_equal(q.groups, data.groups[rows])
    full = COLLECTED.full_feedback(q)
    np.testing.assert_array_equal(full.rewards, data.all_rewards[rows])
    for k, arm in enumerate(data.arm_names):
        np.testing.assert_array_equal(full.seconds[:, k], data.columns[arm_seconds_column(arm)][rows])
    actions = np.arange(60) % K
    step = COLLECTED.step(q, actions)
    np.testing.assert_array_equal(step.rewards, full.rewards[np.arange(60), actions])
    np.testing.assert_array_equal(step.seconds, full.seconds[np.arange(60), actions])


def test_one_row_per_arm_gives_full_information_without_all_rewards():
    data = collected(full=False)
    world = LoggedWorld(data, test_fraction=0.25)
    q = world.queries(30, split="train", seed=0)
    full = world.full_feedback(q)
    np.testing.assert_array_equal(full.rewards, COLLECTED.full_feedback(q).rewards)
    np.testing.assert_array_equal(world.step(q, np.full(30, 2)).rewards, full.rewards[:, 2])


def test_full_information_replay_round_trips_through_parquet(tmp_path):
    data = logged()
    world = LoggedWorld(LoggedDataset.load(data.save(tmp_path / "d.parquet")))
    q = world.queries(40, split="train", seed=0)
    rows = first_rows(data, q.ids)
    actions = np.arange(40) % K
    step = world.step(q, actions)
    np.testing.assert_array_equal(step.rewards, data.all_rewards[rows, actions])
    full = world.full_feedback(q)
    np.testing.assert_array_equal(full.rewards, data.all_rewards[rows])
    np.testing.assert_array_equal(full.seconds[np.arange(40), actions], step.seconds)
    np.testing.assert_array_equal(full.ar_seconds, data.columns["ar_wall_seconds"][rows])
    np.testing.assert_allclose(full.rewards, full.ar_seconds[:, None] / full.seconds)


def test_bandit_only_data_replays_logged_actions_and_points_to_ope():
    data = logged(full=False)
    world = LoggedWorld(data)
    q = world.queries(30, split="test", seed=1)
    rows = first_rows(data, q.ids)
    assert world.full_feedback(q) is None
    replay = world.step(q, data.actions[rows])
    np.testing.assert_array_equal(replay.rewards, data.rewards[rows])
    np.testing.assert_array_equal(replay.seconds, data.columns["wall_seconds"][rows])
    other = (data.actions[rows] + 1) % K
    with pytest.raises(ValueError, match="banditspec.bandits.ope"):
        world.step(q, other)


def test_missing_seconds_are_nan():
    world = LoggedWorld(logged(seconds=False))
    q = world.queries(10, split="train", seed=0)
    full = world.full_feedback(q)
    assert np.all(np.isnan(full.seconds)) and np.all(np.isnan(full.ar_seconds))
    assert np.all(np.isfinite(full.rewards))


def test_rejects_bad_input():
    world = LoggedWorld(logged())
    n_train = world.split_size("train")
    with pytest.raises(ValueError, match=rf"n must be an integer in \[1, {n_train}\]"):
        world.queries(n_train + 1, split="train", seed=0)
    with pytest.raises(ValueError, match="split"):
        world.queries(5, split="dev", seed=0)
    q = world.queries(5, split="train", seed=0)
    with pytest.raises(ValueError, match="actions"):
        world.step(q, np.full(5, 99))
    with pytest.raises(ValueError, match="query ids of this dataset"):
        world.step(Queries(ids=np.array([-7]), X=q.X[:1]), np.zeros(1, dtype=int))
    with pytest.raises(ValueError, match="test_fraction"):
        LoggedWorld(logged(), test_fraction=1.0)
    with pytest.raises(ValueError, match="LoggedDataset"):
        LoggedWorld({"X": []})
    data = collected(20)
    data.X[1] += 1.0  # the second row of the first query
    with pytest.raises(ValueError, match=f"query id {data.query_ids[0]} have different features"):
        LoggedWorld(data)
