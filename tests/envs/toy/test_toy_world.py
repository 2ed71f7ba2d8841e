import numpy as np
import pytest

from banditspec.speculative.kinds import DraftModel, EarlyExit
from banditspec.envs.toy.world import ToyWorld


def test_arms_and_costs(tiny_toy):
    names = tiny_toy.arms.names
    assert names[0] == "ar" and names[-1] == "prompt-lookup"
    assert all(n in names for n in tiny_toy.models.drafts)
    costs = dict(zip(names, tiny_toy.arms.costs))
    assert costs["ar"] == 1.0 and all(0 < costs[n] < 1 for n in tiny_toy.models.drafts)


def test_early_exit_arms_come_after_the_drafts(self_draft):
    assert self_draft.arms.names == ["ar", "generalist", "exit-1", "prompt-lookup"]
    exit1 = self_draft.arms["exit-1"]
    assert isinstance(exit1, EarlyExit) and (exit1.layer, exit1.block_size, exit1.cost) == (1, 4, 0.5)
    assert self_draft.queries(2, split="test", seed=0).X.shape == (2, self_draft.config.target.n_embd)


def test_early_exit_arms_decode_losslessly_in_workers_too(self_draft, toy_cache):
    queries = self_draft.queries(9, split="test", seed=2)  # more than one chunk of queries
    parallel = ToyWorld("tiny-self-draft", max_new_tokens=24, block_size=4, cache_dir=str(toy_cache), progress=False,
                        workers=2)
    counts = []
    for world in (parallel, self_draft):
        full = world.full_feedback(queries)
        assert all(m.equals_ar for m in full.measurements)
        counts.append([(m.arm, m.new_tokens, m.target_calls, m.accepted_tokens) for m in full.measurements])
    assert counts[0] == counts[1]
    exits = [c for c in counts[0] if c[0] == "exit-1"]
    assert len(exits) == 9 and sum(c[3] for c in exits) > 0


def test_draft_arms_take_the_schedule_and_a_bad_one_is_refused_before_loading(toy_cache, tmp_path):
    world = ToyWorld("tiny-self-draft", block_size=3, schedule="heuristic", cache_dir=str(toy_cache), progress=False)
    drafts = [a for a in world.arms if isinstance(a, DraftModel)]
    assert drafts and all((a.schedule, a.block_size) == ("heuristic", 3) for a in drafts)
    assert world.arms["exit-1"].block_size == 3  # early exits keep a constant block
    with pytest.raises(ValueError, match="schedule must be one of"):
        ToyWorld("tiny", schedule="dynamic", cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()


def test_queries_are_deterministic_featurized_and_labelled(tiny_toy):
    a = tiny_toy.queries(6, split="test", seed=0)
    b = tiny_toy.queries(6, split="test", seed=0)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X.shape == (6, tiny_toy.models.target.config.n_embd)
    assert set(a.groups) <= set(tiny_toy.config.domains)
    assert not set(a.ids) & set(tiny_toy.queries(6, split="train", seed=0).ids)


def test_step_and_full_feedback_are_measured_and_lossless(tiny_toy):
    queries = tiny_toy.queries(2, split="test", seed=1)
    full = tiny_toy.full_feedback(queries)
    assert full.rewards.shape == (2, len(tiny_toy.arms))
    np.testing.assert_allclose(full.rewards[:, 0], 1.0)
    assert all(m.equals_ar for m in full.measurements)
    np.testing.assert_allclose(full.rewards, full.ar_seconds[:, None] / full.seconds)
    step = tiny_toy.step(queries, np.array([1, 0]))
    assert step.rewards.shape == (2,) and step.rewards[1] == 1.0
    with pytest.raises(ValueError, match="actions"):
        tiny_toy.step(queries, np.array([0, 99]))


def test_worker_processes_measure_the_same_decodes_in_query_order(tiny_toy, toy_cache):
    queries = tiny_toy.queries(9, split="test", seed=2)  # more than one chunk of queries
    parallel = ToyWorld("tiny", max_new_tokens=24, block_size=4, cache_dir=str(toy_cache), progress=False, workers=2)
    full = parallel.full_feedback(queries)
    assert full.rewards.shape == (9, len(tiny_toy.arms)) and all(m.equals_ar for m in full.measurements)
    serial = tiny_toy.full_feedback(queries)
    counts = [[(m.arm, m.new_tokens, m.target_calls, m.accepted_tokens) for m in f.measurements] for f in (full, serial)]
    assert counts[0] == counts[1]
    sets = [[k % 3, 3 + k % 2] if k % 2 else [0] for k in range(9)]  # a set of arms per query, in that order
    rows = [parallel.measure(queries, sets), tiny_toy.measure(queries, sets)]
    for row in rows:
        assert [[m.arm for m in r] for r in row] == [[tiny_toy.arms.names[k] for k in ids] for ids in sets]
        assert all(m.equals_ar and m.ar_wall_seconds > 0 for r in row for m in r)
    assert [[(m.target_calls, m.accepted_tokens) for m in r] for r in rows[0]] == \
        [[(m.target_calls, m.accepted_tokens) for m in r] for r in rows[1]]
    with pytest.raises(ValueError, match="arm_sets"):
        parallel.measure(queries, [[0]] * 8)
    with pytest.raises(ValueError, match="arm_sets"):
        parallel.measure(queries, [[len(tiny_toy.arms)]] * 9)
    parallel.arms.remove("misaligned")  # the workers decode the arms as they are now
    names = parallel.arms.names
    step = parallel.step(queries, np.arange(9) % len(names))
    assert [m.arm for m in step.measurements] == [names[i % len(names)] for i in range(9)]


def test_bad_arguments(toy_cache):
    with pytest.raises(ValueError, match="config"):
        ToyWorld("huge", cache_dir=str(toy_cache))
    with pytest.raises(ValueError, match="featurizer"):
        ToyWorld("tiny", featurizer="bert", cache_dir=str(toy_cache))
    with pytest.raises(ValueError, match="workers"):
        ToyWorld("tiny", workers=0, cache_dir=str(toy_cache))
