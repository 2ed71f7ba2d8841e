import numpy as np
import pytest

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import ENVIRONMENTS, Environment
from banditspec.envs.logged import LoggedWorld, arm_seconds_column
from banditspec.envs.synthetic import SyntheticWorld

SOURCE = SyntheticWorld()


def logged(n: int = 200, *, full: bool = True, seconds: bool = True) -> LoggedDataset:
    """A uniformly logged dataset of the synthetic world, with or without full information."""
    q = SOURCE.queries(n, split="train", seed=0)
    actions = np.random.default_rng(1).integers(0, len(SOURCE.arms), n)
    fb = SOURCE.full_feedback(q, seed=0)
    rows = np.arange(n)
    columns = {}
    if seconds:
        columns = {arm_seconds_column(a): fb.seconds[:, k] for k, a in enumerate(SOURCE.arms.names)}
        columns.update(wall_seconds=fb.seconds[rows, actions], ar_wall_seconds=fb.ar_seconds)
    return LoggedDataset(q.ids, q.X, actions, fb.rewards[rows, actions], np.full(n, 1 / len(SOURCE.arms)),
                         arm_names=SOURCE.arms.names, all_rewards=fb.rewards if full else None,
                         groups=q.groups, columns=columns)


def test_is_a_registered_environment():
    world = LoggedWorld(logged())
    assert isinstance(world, Environment) and ENVIRONMENTS.get("logged") is LoggedWorld
    assert world.arms.names == SOURCE.arms.names


def test_splits_are_disjoint_deterministic_and_cover_the_rows():
    world = LoggedWorld(logged(), test_fraction=0.25)
    train, test = world.split_rows("train", 3), world.split_rows("test", 3)
    assert len(test) == 50 and len(train) == 150 and world.split_size("train") == 150
    assert sorted(np.concatenate([train, test])) == list(range(200))
    np.testing.assert_array_equal(train, world.split_rows("train", 3))
    assert not np.array_equal(test, world.split_rows("test", 4))
    q = world.queries(20, split="test", seed=3)
    np.testing.assert_array_equal(q.ids, test[:20])
    np.testing.assert_array_equal(q.X, world.dataset.X[test[:20]])
    np.testing.assert_array_equal(q.groups, world.dataset.groups[test[:20]])


def test_full_information_replay_round_trips_through_parquet(tmp_path):
    data = logged()
    world = LoggedWorld(LoggedDataset.load(data.save(tmp_path / "d.parquet")))
    q = world.queries(40, split="train", seed=0)
    actions = np.arange(40) % len(world.arms)
    step = world.step(q, actions)
    np.testing.assert_array_equal(step.rewards, data.all_rewards[q.ids, actions])
    full = world.full_feedback(q)
    np.testing.assert_array_equal(full.rewards, data.all_rewards[q.ids])
    np.testing.assert_array_equal(full.seconds[np.arange(40), actions], step.seconds)
    np.testing.assert_array_equal(full.ar_seconds, data.columns["ar_wall_seconds"][q.ids])
    np.testing.assert_allclose(full.rewards, full.ar_seconds[:, None] / full.seconds)


def test_bandit_only_data_replays_logged_actions_and_points_to_ope():
    data = logged(full=False)
    world = LoggedWorld(data)
    q = world.queries(30, split="test", seed=1)
    assert world.full_feedback(q) is None
    replay = world.step(q, data.actions[q.ids])
    np.testing.assert_array_equal(replay.rewards, data.rewards[q.ids])
    np.testing.assert_array_equal(replay.seconds, data.columns["wall_seconds"][q.ids])
    other = (data.actions[q.ids] + 1) % len(world.arms)
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
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 160\]"):
        world.queries(161, split="train", seed=0)
    with pytest.raises(ValueError, match="split"):
        world.queries(5, split="dev", seed=0)
    q = world.queries(5, split="train", seed=0)
    with pytest.raises(ValueError, match="actions"):
        world.step(q, np.full(5, 99))
    with pytest.raises(ValueError, match="test_fraction"):
        LoggedWorld(logged(), test_fraction=1.0)
    with pytest.raises(ValueError, match="LoggedDataset"):
        LoggedWorld({"X": []})
