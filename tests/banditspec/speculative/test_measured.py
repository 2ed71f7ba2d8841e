import numpy as np
import pytest

from banditspec.bandits.arms import ArmSet
from banditspec.speculative.kinds import Autoregressive, DraftModel
from banditspec.bandits.env import Measurement, Queries
from banditspec.speculative.measured import full_feedback, measure_arms, measure_every_arm
from banditspec.bandits.rewards import SpeedupOverAR


class FakeWorld:
    """Deterministic 'measurements' from the query ids; counts the queries it measures; may fail."""

    def __init__(self, fail_after: int | None = None):
        self.arms = ArmSet([Autoregressive("ar", cost=1.0), DraftModel("d", model="d", cost=0.1)])
        self.reward = SpeedupOverAR()
        self.measured = 0
        self.fail_after = fail_after

    def measure(self, queries, arm_sets=None):
        if self.fail_after is not None and self.measured >= self.fail_after:
            raise KeyboardInterrupt
        self.measured += len(queries)
        rows = []
        for i, ids in zip(queries.ids, arm_sets or [[0, 1]] * len(queries)):
            ar = 1.0 + i % 3
            every = [Measurement("ar", 8, ar, 8, ar_wall_seconds=ar, cost=1.0),
                     Measurement("d", 8, ar / (1 + i % 4), 3, 5, 7, equals_ar=bool(i % 5), ar_wall_seconds=ar, cost=0.1)]
            rows.append([every[k] for k in ids])
        return rows


def queries(n):
    ids = np.arange(100, 100 + n)
    return Queries(ids=ids, X=ids[:, None].astype(float), texts=[f"q{i}" for i in ids], groups=ids % 2)


def test_an_interrupted_measurement_resumes_to_the_uninterrupted_result(tmp_path):
    test = queries(23)
    with pytest.raises(KeyboardInterrupt):
        measure_every_arm(FakeWorld(fail_after=10), test, tmp_path / "resumed", chunk_size=5, progress=False)
    assert len(list((tmp_path / "resumed").glob("part-*.parquet"))) == 2
    world = FakeWorld()
    resumed, rows = measure_every_arm(world, test, tmp_path / "resumed", chunk_size=5, progress=False)
    assert world.measured == 13  # only the missing chunks were measured again
    reference, _ = measure_every_arm(FakeWorld(), test, tmp_path / "clean", chunk_size=5, progress=False)
    assert resumed.measurements == reference.measurements
    np.testing.assert_array_equal(resumed.rewards, reference.rewards)
    np.testing.assert_array_equal(resumed.seconds, reference.seconds)
    np.testing.assert_array_equal(resumed.ar_seconds, 1.0 + test.ids % 3)
    assert resumed.rewards.shape == (23, 2) and len(rows) == 46
    np.testing.assert_array_equal(rows.query_ids[::2], test.ids)


def test_a_folder_of_other_queries_is_refused(tmp_path):
    measure_every_arm(FakeWorld(), queries(4), tmp_path / "m", chunk_size=2, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        measure_every_arm(FakeWorld(), queries(5), tmp_path / "m", chunk_size=2, progress=False)


def test_a_set_of_arms_per_query_is_measured_and_the_rest_is_nan(tmp_path):
    test = queries(7)
    sets = [[1], [0, 1], [0], [1, 0], [1], [0], [0, 1]]
    partial, rows = measure_arms(FakeWorld(), test, sets, tmp_path / "some", chunk_size=3, progress=False)
    full, _ = measure_every_arm(FakeWorld(), test, tmp_path / "every", chunk_size=3, progress=False)
    measured = np.zeros((7, 2), dtype=bool)
    for i, ids in enumerate(sets):
        measured[i, ids] = True
    np.testing.assert_array_equal(~np.isnan(partial.seconds), measured)
    np.testing.assert_array_equal(partial.seconds[measured], full.seconds[measured])
    np.testing.assert_array_equal(partial.rewards[measured], full.rewards[measured])
    np.testing.assert_array_equal(partial.ar_seconds, full.ar_seconds)  # AR is the reference of every query
    np.testing.assert_array_equal(rows.actions, [k for ids in sets for k in ids])
    assert list(rows.columns["prompt"]) == [t for t, ids in zip(test.texts, sets) for _ in ids]
    assert len(partial.measurements) == len(rows) == sum(map(len, sets))
    with pytest.raises(ValueError, match="another configuration"):  # other arm sets, same folder
        measure_arms(FakeWorld(), test, [[0]] * 7, tmp_path / "some", chunk_size=3, progress=False)


@pytest.mark.parametrize("sets", [[[0]] * 6, [[0], [], [1], [0], [1], [0]], [[0, 0]] * 7, [[2]] * 7])
def test_bad_arm_sets_are_refused_before_any_decode(tmp_path, sets):
    world = FakeWorld()
    with pytest.raises(ValueError, match="arm_sets"):
        measure_arms(world, queries(7), sets, tmp_path / "m", progress=False)
    assert world.measured == 0


def test_full_feedback_needs_whole_queries():
    world = FakeWorld()
    one = [m for row in world.measure(queries(1)) for m in row]
    with pytest.raises(ValueError, match="do not split"):
        full_feedback(one[:1], 2, world.reward)


def test_measure_every_arm_takes_the_same_typed_keywords_as_measure_arms():
    import inspect

    def keywords(function):
        return {name: (p.annotation, p.default) for name, p in inspect.signature(function).parameters.items()
                if p.kind is p.KEYWORD_ONLY}

    assert keywords(measure_every_arm) == keywords(measure_arms) and "backend_options" in keywords(measure_arms)
