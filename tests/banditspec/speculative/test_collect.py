import numpy as np
import pytest
import torch

from banditspec.speculative.kinds import Autoregressive, EarlyExit
from banditspec.apps.cli import main
from banditspec.speculative import collect as collect_module
from banditspec.speculative.collect import Collector, calibrate, collect, draw_queries, featurized, torch_threads
from banditspec.speculative.decoding import greedy_outputs
from banditspec.bandits.data import LoggedDataset


@pytest.fixture(scope="module")
def latency(tiny_toy):
    return calibrate(tiny_toy, tiny_toy.queries(3, split="train", seed=99))


def test_batched_greedy_outputs_equal_batch_one_decoding(tiny_toy):
    queries = tiny_toy.queries(6, split="test", seed=1)
    prompts = [tiny_toy.decoder.encode(t) for t in queries.texts]
    tok = tiny_toy.decoder.tokenizer
    batched = greedy_outputs(tiny_toy.decoder.target, prompts, max_new_tokens=24, pad_id=tok.pad_token_id,
                             eos_token_ids=(tok.eos_token_id,), batch_size=4)
    single = [tiny_toy.decoder.generate(Autoregressive("ar"), p).ids for p in prompts]
    for b, s in zip(batched, single):
        np.testing.assert_array_equal(b, s)


def test_counterfactual_calls_match_real_assisted_generation(tiny_toy, latency):
    queries = tiny_toy.queries(12, split="test", seed=2)
    rows = Collector(tiny_toy, latency=latency).rows(queries)
    K = len(tiny_toy.arms)
    predicted = rows.columns["target_calls"].reshape(-1, K)
    measured = np.array([[r.measurement.target_calls for r in tiny_toy.decoder.measure(t, tiny_toy.arms)]
                         for t in queries.texts])
    assert np.mean(predicted == measured) >= 0.95


def test_early_exit_counterfactual_matches_real_early_exit_decoding(self_draft):
    queries = self_draft.queries(8, split="test", seed=5)
    latency = calibrate(self_draft, self_draft.queries(3, split="train", seed=98))
    rows = Collector(self_draft, latency=latency).rows(queries)
    K, exit1 = len(self_draft.arms), self_draft.arms.index("exit-1")
    columns = ("target_calls", "proposed_tokens", "accepted_tokens")
    predicted = np.stack([rows.columns[c].reshape(-1, K)[:, exit1] for c in columns], axis=1)
    measured = np.array([[getattr(r.measurement, c) for c in columns]
                         for r in (self_draft.decoder.measure(t, [self_draft.arms[exit1]])[0] for t in queries.texts)])
    assert np.mean((predicted == measured).all(axis=1)) >= 0.85
    assert predicted[:, 2].sum() > 0  # the exit drafts some accepted tokens
    # alignment: the cut target's own greedy output against the target's
    aligned = rows.columns["align_token_match"].reshape(-1, K)[:, exit1]
    assert np.all((aligned >= 0) & (aligned <= 1)) and aligned.max() > 0
    assert self_draft.decoder.target.config.num_hidden_layers == self_draft.config.target.n_layer


def test_the_early_exit_s_matches_are_read_off_the_target_s_greedy_pass(self_draft, monkeypatch):
    queries = self_draft.queries(8, split="test", seed=6)
    collector = Collector(self_draft, latency=calibrate(self_draft, self_draft.queries(3, split="train", seed=97)))
    prompts = [self_draft.decoder.encode(t) for t in queries.texts]
    outputs = [self_draft.decoder.generate(Autoregressive("ar"), p).ids for p in prompts]
    along_outputs = collector.counterfactual(prompts, outputs)  # the exit's own teacher-forced pass
    passes = []
    real = collect_module.draft_matches_batch
    monkeypatch.setattr(collect_module, "draft_matches_batch",
                        lambda model, *args, **kwargs: passes.append(model) or real(model, *args, **kwargs))
    rows = collector.rows(queries, alignment=False)
    assert self_draft.decoder.target not in passes
    K, exit1 = len(self_draft.arms), self_draft.arms.index("exit-1")
    for column in ("target_calls", "proposed_tokens", "accepted_tokens"):
        np.testing.assert_array_equal(rows.columns[column].reshape(-1, K)[:, exit1],
                                      [getattr(row[exit1], column) for row in along_outputs])


def test_rows_layout_and_rewards(tiny_toy, latency):
    queries = tiny_toy.queries(5, split="train", seed=3)
    data = Collector(tiny_toy, latency=latency).rows(queries)
    K = len(tiny_toy.arms)
    assert len(data) == 5 * K
    np.testing.assert_array_equal(data.actions, np.tile(np.arange(K), 5))
    np.testing.assert_allclose(data.propensities, 1 / K)
    np.testing.assert_allclose(data.rewards, data.all_rewards[np.arange(len(data)), data.actions])
    ar = tiny_toy.arms.index("ar")
    np.testing.assert_allclose(data.rewards[data.actions == ar], 1.0)
    np.testing.assert_allclose(data.columns["align_lcs"][data.actions == ar], 1.0)
    assert np.all((data.columns["align_token_match"] >= 0) & (data.columns["align_token_match"] <= 1))
    calls, accepted = data.columns["target_calls"], data.columns["accepted_tokens"]
    np.testing.assert_array_equal(calls + accepted, data.columns["new_tokens"])
    assert list(data.groups[::K]) == list(queries.groups)


def test_rows_without_alignment_keep_the_counts_and_skip_the_own_outputs(tiny_toy, latency, monkeypatch):
    queries = tiny_toy.queries(4, split="train", seed=3)
    collector = Collector(tiny_toy, latency=latency)
    full = collector.rows(queries)
    monkeypatch.setattr(collector, "_own_outputs", lambda prompts: pytest.fail("own outputs computed"))
    counts = collector.rows(queries, alignment=False)
    assert not [c for c in counts.columns if c.startswith("align_")]
    for column in ("target_calls", "accepted_tokens", "proposed_tokens", "wall_seconds"):
        np.testing.assert_array_equal(counts.columns[column], full.columns[column])
    np.testing.assert_array_equal(counts.rewards, full.rewards)


def test_queries_without_features_get_the_target_s_own_from_its_greedy_pass(tiny_toy, latency, monkeypatch):
    featurized_queries = tiny_toy.queries(6, split="train", seed=5)
    reference = Collector(tiny_toy, latency=latency).rows(featurized_queries)
    monkeypatch.setattr(tiny_toy.featurizer, "transform", lambda texts: pytest.fail("a second forward featurized"))
    queries = draw_queries(tiny_toy, 6, split="train", seed=5)
    assert queries.X.shape == (6, 0) and queries.texts == featurized_queries.texts
    rows = Collector(tiny_toy, latency=latency).rows(queries)
    np.testing.assert_allclose(rows.X, reference.X, rtol=1e-4, atol=1e-5)  # left padding here, right there
    for column in ("target_calls", "accepted_tokens", "proposed_tokens", "wall_seconds", "align_lcs"):
        np.testing.assert_array_equal(rows.columns[column], reference.columns[column])
    np.testing.assert_array_equal(featurized(queries, rows).X, rows.X[:: len(tiny_toy.arms)])
    with pytest.raises(ValueError, match="not Collector.rows of these queries"):
        featurized(queries.subset(np.arange(1, 6)), rows)


def test_queries_without_features_need_a_world_that_pools_the_prefill(tiny_toy, latency):
    class TextsOnly:  # the same arms and decoder, no prefill_pooling
        arms, decoder = tiny_toy.arms, tiny_toy.decoder

        def queries(self, n, *, split, seed):
            return tiny_toy.queries(n, split=split, seed=seed, featurize=False)

    world = TextsOnly()
    assert draw_queries(world, 2, split="train", seed=0).X.shape == (2, 0)  # the world's own queries, as they are
    with pytest.raises(ValueError, match=r"queries without features need a world that pools them .*prefill_pooling"):
        Collector(world, latency=latency).rows(world.queries(2, split="train", seed=0))

def test_counterfactual_prices_every_arm_along_a_given_output_as_the_rows_do(tiny_toy, latency):
    queries = tiny_toy.queries(4, split="train", seed=4)
    collector = Collector(tiny_toy, latency=latency)
    rows = collector.rows(queries)
    K = len(tiny_toy.arms)
    prompts = [tiny_toy.decoder.encode(t) for t in queries.texts]
    outputs = [tiny_toy.decoder.generate(Autoregressive("ar"), p).ids for p in prompts]  # e.g. a server's outputs
    table = collector.counterfactual(prompts, outputs)
    for column in ("target_calls", "accepted_tokens", "proposed_tokens", "wall_seconds", "ar_wall_seconds"):
        expected = rows.columns[column].reshape(-1, K)
        np.testing.assert_allclose([[getattr(m, column) for m in row] for row in table], expected)
    short = collector.counterfactual(prompts[:1], [outputs[0][:5]], max_new_tokens=5)[0]
    assert all(m.new_tokens == 5 and m.target_calls + m.accepted_tokens == 5 for m in short)


def test_batched_passes_use_the_asked_threads_and_restore_them(tiny_toy, latency, monkeypatch):
    queries = tiny_toy.queries(3, split="train", seed=3)
    before = torch.get_num_threads()
    seen = []
    real = Collector._outputs
    monkeypatch.setattr(Collector, "_outputs", lambda self, *a: seen.append(torch.get_num_threads()) or real(self, *a))
    rows = Collector(tiny_toy, latency=latency, threads=before + 1).rows(queries)
    assert seen and set(seen) == {before + 1} and torch.get_num_threads() == before
    np.testing.assert_array_equal(rows.query_ids, np.repeat(queries.ids, len(tiny_toy.arms)))
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        Collector(tiny_toy, latency=latency, threads=0)
    with pytest.raises(RuntimeError), torch_threads(before + 1):
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_collect_resumes_to_the_same_rows_and_merges(tiny_toy, tmp_path):
    out = tmp_path / "run"
    collect(tiny_toy, out, n=12, seed=4, calibration_queries=3, chunk_size=4)
    first = LoggedDataset.load(out)
    (out / "part-000001.parquet").unlink()
    collect(tiny_toy, out, n=12, seed=4, calibration_queries=3, chunk_size=4)
    again = LoggedDataset.load(out)
    np.testing.assert_array_equal(first.query_ids, again.query_ids)
    np.testing.assert_array_equal(first.all_rewards, again.all_rewards)
    assert main(["merge", str(out), "--out", str(tmp_path / "all.parquet")]) == 0
    assert len(LoggedDataset.load(tmp_path / "all.parquet")) == len(first)


def test_collect_prices_with_a_given_latency_model_without_calibrating(tiny_toy, latency, tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_toy, "measure", lambda *a, **k: pytest.fail("a given latency model needs no calibration"))
    out = collect(tiny_toy, tmp_path / "priced", n=4, split="test", seed=1, chunk_size=4, latency=latency)
    assert (out / "latency.json").exists()
    expected = Collector(tiny_toy, latency=latency).rows(tiny_toy.queries(4, split="test", seed=1))
    np.testing.assert_array_equal(LoggedDataset.load(out).all_rewards, expected.all_rewards)


def test_needs_an_ar_arm_and_a_latency_model(tiny_toy, latency):
    with pytest.raises(ValueError, match="LatencyModel"):
        Collector(tiny_toy)
    arms = tiny_toy.arms
    arms.set_available("ar", False)  # availability does not remove the arm: still collectable
    Collector(tiny_toy, latency=latency)
    arms.set_available("ar", True)


def test_early_exit_needs_a_target_that_can_exit(tiny_toy, latency):
    tiny_toy.arms.add(EarlyExit("exit-1", layer=1))  # the tiny world's target is GPT-2
    try:
        with pytest.raises(ValueError, match="Llama-style"):
            Collector(tiny_toy, measure=True)
    finally:
        tiny_toy.arms.remove("exit-1")
