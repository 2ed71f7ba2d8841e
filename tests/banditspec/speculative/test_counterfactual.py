import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.utils import logging

from banditspec.speculative import counterfactual
from banditspec.speculative.counterfactual import (
    MatchVector,
    draft_matches,
    draft_matches_batch,
    simulate_calls,
    simulate_proposals,
)
from banditspec.speculative.decoding import Decoder
from banditspec.speculative.drafting import ProposalDraft
from banditspec.speculative.kinds import Autoregressive, DraftModel, EarlyExit, PromptLookup, Trace
from tests.banditspec.speculative.models import generate_ids, perturbed, prompts, speculate, tiny_llama

logging.set_verbosity_error()

match_vectors = st.lists(st.booleans(), min_size=1, max_size=60).map(lambda v: np.array(v, dtype=bool))
blocks = st.integers(1, 8)


def counts(sim):
    return sim.target_calls, sim.proposed_tokens, sim.accepted_tokens


@settings(max_examples=200, deadline=None)
@given(match_vectors, blocks, st.integers(0, 5), st.sampled_from(["constant", "heuristic"]))
def test_every_call_yields_its_accepted_tokens_plus_one(matches, g, extra, schedule):
    sim = simulate_calls(matches, g, max_new_tokens=matches.size + extra, schedule=schedule)
    assert sim.new_tokens == matches.size
    assert sim.target_calls + sim.accepted_tokens == matches.size
    assert 0 <= sim.accepted_tokens <= min(sim.proposed_tokens, int(matches.sum()))
    assert sim.target_calls <= matches.size
    if schedule == "constant":
        assert sim.target_calls >= math.ceil(matches.size / (g + 1))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 80), blocks, st.integers(0, 5))
def test_always_matching_draft_needs_ceil_t_over_g_plus_one_calls(length, g, extra):
    sim = simulate_calls(np.ones(length, dtype=bool), g, max_new_tokens=length + extra)
    assert sim.target_calls == math.ceil(length / (g + 1))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 80), blocks)
def test_never_matching_draft_needs_one_call_per_token(length, g):
    sim = simulate_calls(np.zeros(length, dtype=bool), g)
    assert (sim.target_calls, sim.accepted_tokens) == (length, 0)
    # the draft proposes min(g, T - n - 1) tokens at every n
    assert sim.proposed_tokens == sum(min(g, length - n - 1) for n in range(length))


@settings(max_examples=100, deadline=None)
@given(match_vectors, blocks)
def test_confidence_rule_off_or_never_triggered_changes_nothing(matches, g):
    plain = simulate_calls(matches, g)
    assert simulate_calls(matches, g, threshold=0.0) == plain
    confident = simulate_calls(matches, g, confidence=np.ones(matches.size), threshold=0.4)
    assert counts(confident) == counts(plain)


@settings(max_examples=100, deadline=None)
@given(match_vectors, blocks)
def test_always_unconfident_draft_proposes_one_token_per_call(matches, g):
    sim = simulate_calls(matches, g, confidence=np.zeros(matches.size), threshold=0.4)
    assert sim.target_calls == simulate_calls(matches, 1).target_calls
    assert sim.proposed_tokens <= sim.target_calls
    assert sim.proposed_exact


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 60), blocks)
def test_heuristic_schedule_grows_blocks_for_a_perfect_draft(length, g):
    ones = np.ones(length, dtype=bool)
    assert simulate_calls(ones, g, schedule="heuristic").target_calls <= simulate_calls(ones, g).target_calls


def test_known_trace():
    # g = 2, M = T = 7: n=0 proposes 2, accepts 1 (+1) -> n=2; n=2 proposes 2, accepts 2 (+1) -> n=5;
    # n=5 proposes min(2, 7-5-1)=1, accepts 0 (+1) -> n=6; n=6 proposes 0 (+1) -> n=7.
    matches = np.array([1, 0, 1, 1, 0, 0, 1], dtype=bool)
    sim = simulate_calls(matches, 2)
    assert (sim.target_calls, sim.proposed_tokens, sim.accepted_tokens) == (4, 5, 3)


def trace(match, max_new_tokens=None, prefix=(7,)):
    """The trace of a target whose output has the length of ``match``, with the arm's match vector."""
    length = len(match)
    return Trace(np.asarray(prefix), np.arange(length) % 5, length if max_new_tokens is None else max_new_tokens,
                 (), match)


@settings(max_examples=100, deadline=None)
@given(match_vectors, blocks, st.sampled_from(["constant", "heuristic"]), st.sampled_from([0.0, 0.4]),
       st.integers(0, 5), st.integers(0, 2**16))
def test_a_draft_arm_simulates_with_its_own_settings(matches, g, schedule, threshold, extra, seed):
    confidence = np.random.default_rng(seed).random(matches.size)
    arm = DraftModel("d", model="m", block_size=g, schedule=schedule, confidence_threshold=threshold)
    expected = simulate_calls(matches, g, max_new_tokens=matches.size + extra, schedule=schedule,
                              confidence=confidence, threshold=threshold, adaptive_threshold=threshold > 0)
    assert arm.simulate(trace(MatchVector(matches, confidence), matches.size + extra)) == expected


def test_arms_simulate_what_they_need():
    matches = MatchVector(np.ones(10, dtype=bool), np.full(10, 0.9))
    assert counts(Autoregressive("ar").simulate(trace(matches))) == (10, 0, 0)  # one call per token, match or not
    # prompt lookup replays its proposals along the output and needs no match vector: after x = 0 1 2 3 4,
    # y = 0 1 2 3 4 0 1 2 3 4 (M = 10) it finds nothing at n=0, copies 1 2 3 after the 0 at n=1 and 0 1 2 after
    # the bigram 3 4 at n=5 (all accepted), and proposes nothing at n=9 with one token left
    lookup = PromptLookup("pl", num_tokens=3).simulate(Trace(np.array([0, 1, 2, 3, 4]), np.arange(10) % 5, 10))
    assert counts(lookup) == (4, 6, 6)
    for arm in (DraftModel("d", model="m"), EarlyExit("e", layer=1)):
        with pytest.raises(ValueError, match=f"arm '{arm.name}': simulating .* needs its match vector"):
            arm.simulate(Trace(np.array([1]), np.arange(10), 10))
    with pytest.raises(ValueError, match="confidence_threshold"):
        DraftModel("d", model="m", confidence_threshold=2.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"matches": np.ones((2, 2), dtype=bool), "block_size": 2}, "1-d bool"),
        ({"matches": np.ones(3), "block_size": 2}, "1-d bool"),
        ({"matches": np.ones(3, dtype=bool), "block_size": 0}, "block_size"),
        ({"matches": np.ones(3, dtype=bool), "block_size": 2, "max_new_tokens": 2}, "max_new_tokens"),
        ({"matches": np.ones(3, dtype=bool), "block_size": 2, "schedule": "fast"}, "schedule"),
        ({"matches": np.ones(3, dtype=bool), "block_size": 2, "threshold": 0.4}, "needs confidence"),
    ],
)
def test_bad_simulation_input_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_calls(**kwargs)


@settings(max_examples=100, deadline=None)
@given(match_vectors, blocks, st.integers(0, 5))
def test_early_exit_drafts_at_a_constant_block_without_threshold(matches, g, extra):
    # an unconfident early exit still proposes full blocks: the decoder turns the threshold off for it
    vector = MatchVector(matches, np.zeros(matches.size))
    sim = EarlyExit("e", layer=1, block_size=g).simulate(trace(vector, matches.size + extra))
    assert sim == simulate_calls(matches, g, max_new_tokens=matches.size + extra)


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_llama(50, seed=0, layers=2)


def simulated_against_measured(decoder, arms, *, n_prompts, seed):
    """Decode random prompts with AR and ``arms``; compare each arm's simulated counts with the measured ones.

    Each arm's match vector comes from one teacher-forced pass of its
    drafting model (``arm.drafting_model``). Returns the number of decodes
    whose counts agree, the number of decodes, and the accepted and proposed
    draft tokens measured in all.
    """
    rng = np.random.default_rng(seed)
    agree = total = accepted = proposed = 0
    for _ in range(n_prompts):
        prompt = rng.integers(0, 100, size=int(rng.integers(3, 12)))
        reference, *results = decoder.measure(prompt, [Autoregressive("ar"), *arms])
        for arm, result in zip(arms, results):
            m = result.measurement
            assert m.equals_ar
            np.testing.assert_array_equal(result.ids, reference.ids)
            with arm.drafting_model(decoder) as model:
                vector = draft_matches_batch(model, [prompt], [reference.ids])[0]
            sim = arm.simulate(Trace(decoder.prefix(prompt), reference.ids, decoder.max_new_tokens,
                                     decoder.eos_token_ids, vector))
            agree += counts(sim) == (m.target_calls, m.proposed_tokens, m.accepted_tokens)
            total += 1
            accepted, proposed = accepted + m.accepted_tokens, proposed + m.proposed_tokens
    return agree, total, accepted, proposed


def test_early_exit_counts_match_real_early_exit_decoding():
    # the simulation from one teacher-forced pass of the cut target against decoding with the exit (which
    # test_drafting checks against transformers' assistant_early_exit)
    target = tiny_llama(100, seed=0, layers=3)
    decoder = Decoder(target, None, max_new_tokens=20, threads=1)
    arms = [EarlyExit("exit1", layer=1, block_size=3), EarlyExit("exit2", layer=2, block_size=4),
            EarlyExit("exit2-1", layer=2, block_size=1)]
    agree, total, accepted, proposed = simulated_against_measured(decoder, arms, n_prompts=8, seed=0)
    assert 0 < accepted < proposed  # the exits agree with the target often, not always
    assert agree >= 0.9 * total


@pytest.mark.parametrize("schedule", ["constant", "heuristic"])
def test_draft_counts_match_real_assisted_generation(schedule):
    # the simulation from one teacher-forced pass of each draft against decoding with it (which test_drafting
    # checks against transformers' assisted generation)
    target = tiny_llama(100, seed=3)
    drafts = {"close": perturbed(target, 0.003, seed=4), "far": perturbed(target, 0.05, seed=5)}
    decoder = Decoder(target, None, drafts, max_new_tokens=20, threads=1)
    arms = [DraftModel(f"{key}{g}", model=key, block_size=g, schedule=schedule) for key in drafts for g in (2, 5)]
    agree, total, accepted, proposed = simulated_against_measured(decoder, arms, n_prompts=6, seed=1)
    assert 0 < accepted < proposed  # rounds that accept and rounds that reject
    assert agree >= 0.9 * total


def test_model_matches_its_own_greedy_output_and_batches_agree(tiny_model):
    rng = np.random.default_rng(0)
    prompts = [rng.integers(0, 50, size=n) for n in (3, 7, 12)]
    outputs = []
    with torch.inference_mode():
        for p in prompts:
            out = tiny_model.generate(torch.from_numpy(p)[None], max_new_tokens=15, do_sample=False)
            outputs.append(out[0, p.size :].numpy())
    batched = draft_matches_batch(tiny_model, prompts, outputs, batch_size=2)
    for p, y, mv in zip(prompts, outputs, batched):
        assert mv.matches.all()
        assert np.all((mv.confidence > 0) & (mv.confidence <= 1))
        single = draft_matches(tiny_model, p, y)
        np.testing.assert_array_equal(single.matches, mv.matches)
        np.testing.assert_allclose(single.confidence, mv.confidence, rtol=1e-4)
    # a wrong output is detected where it is wrong
    wrong = outputs[0].copy()
    wrong[4] = (wrong[4] + 1) % 50
    assert not draft_matches(tiny_model, prompts[0], wrong).matches[4]


def test_a_logits_budget_splits_the_batches_and_changes_no_match(tiny_model, monkeypatch):
    rng = np.random.default_rng(1)
    prompts = [rng.integers(0, 50, size=n) for n in (3, 9, 5, 14, 2)]
    outputs = [rng.integers(0, 50, size=n) for n in (6, 4, 0, 8, 5)]
    whole = draft_matches_batch(tiny_model, prompts, outputs, batch_size=5)
    passes = []
    forward = tiny_model.forward
    monkeypatch.setattr(tiny_model, "forward", lambda *a, **k: passes.append(k["input_ids"].shape) or forward(*a, **k))
    monkeypatch.setattr(counterfactual, "LOGITS_PER_PASS", 2 * 17 * tiny_model.config.vocab_size)
    bounded = draft_matches_batch(tiny_model, prompts, outputs, batch_size=5)
    assert all(rows * width * tiny_model.config.vocab_size <= counterfactual.LOGITS_PER_PASS or rows == 1
               for rows, width in passes)
    assert len(passes) > 1 and sum(rows for rows, _ in passes) == len(prompts)
    for a, b in zip(whole, bounded):
        np.testing.assert_array_equal(a.matches, b.matches)
        np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-4)


def test_teacher_forcing_projects_only_the_output_positions_and_changes_no_match(tiny_model, monkeypatch):
    rng = np.random.default_rng(2)
    prompts = [rng.integers(0, 50, size=n) for n in (11, 3, 12, 4)]
    outputs = [rng.integers(0, 50, size=n) for n in (5, 6, 0, 6)]
    forward = tiny_model.forward
    shapes = []

    @functools.wraps(forward)
    def recording(*args, **kwargs):
        out = forward(*args, **kwargs)
        shapes.append((kwargs["input_ids"].shape[1], out.logits.shape[1]))
        return out

    monkeypatch.setattr(tiny_model, "forward", recording)
    kept = draft_matches_batch(tiny_model, prompts, outputs, batch_size=2)
    monkeypatch.setattr(tiny_model, "forward", lambda *a, **k: forward(*a, **k))  # no logits_to_keep in its signature
    full = draft_matches_batch(tiny_model, prompts, outputs, batch_size=2)
    # batched by prompt length: (3, 4) then (11, 12); logits from the shorter prompt's last token on
    assert shapes == [(4 + 5, 4 + 5 - 2), (11 + 4, 11 + 4 - 10)]
    for a, b in zip(kept, full):
        np.testing.assert_array_equal(a.matches, b.matches)
        np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-4)


def test_bad_match_input_raises(tiny_model):
    with pytest.raises(ValueError, match="prompts\\[0\\] must not be empty"):
        draft_matches(tiny_model, [], [1, 2])
    with pytest.raises(ValueError, match="outside the draft's vocabulary"):
        draft_matches(tiny_model, [1, 2], [60])
    with pytest.raises(ValueError, match="same length"):
        draft_matches_batch(tiny_model, [[1]], [])


def proposer(seed, output, prefix_size, most):
    """A deterministic drafter of the context alone: after ``n`` tokens it copies ``output[n:]`` for a few tokens,
    then adds random ones (how many of each, and which, drawn from ``seed`` and ``n``)."""

    def propose(context):
        n = context.size - prefix_size
        rng = np.random.default_rng([seed, n])
        right, wrong = rng.integers(0, most + 1, size=2)
        return np.concatenate([output[n : n + right], rng.integers(0, 100, size=wrong)])

    return propose


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 99), min_size=1, max_size=8), st.lists(st.integers(0, 99), max_size=40),
       st.integers(0, 2**16), st.integers(0, 6), st.integers(0, 4), st.sets(st.integers(0, 99), max_size=2))
def test_replayed_proposals_account_for_every_token(prefix, output, seed, most, extra, eos):
    y = np.array(output, dtype=np.int64)
    sim = simulate_proposals(prefix, y, proposer(seed, y, len(prefix), most), max_new_tokens=y.size + extra,
                             eos_token_ids=eos)
    assert sim.new_tokens == y.size
    assert sim.target_calls + sim.accepted_tokens == y.size
    assert sim.target_calls <= y.size and 0 <= sim.accepted_tokens <= sim.proposed_tokens
    assert sim.proposed_exact


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 60), st.integers(1, 8), st.integers(0, 4))
def test_an_oracle_of_the_context_needs_one_call_per_block_and_one_more_token(length, k, extra):
    y = np.arange(length) % 97 + 2
    sim = simulate_proposals([1], y, lambda context: y[context.size - 1 :][:k], max_new_tokens=length + extra)
    assert (sim.target_calls, sim.accepted_tokens) == (math.ceil(length / (k + 1)), length - sim.target_calls)


@pytest.fixture(scope="module")
def target():
    return tiny_llama(100, seed=12)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(0, 6), st.booleans())
def test_replayed_proposals_equal_the_decode_with_them(target, seed, most, end):
    # simulate_proposals against speculative decoding with the same drafter: exact, round by round
    prompt = prompts(1, seed=seed)[0]
    y = generate_ids(target, prompt, 16)
    eos = (int(y[5]),) if end else ()
    y = y[: int(np.flatnonzero(np.isin(y, eos))[0]) + 1] if end else y
    propose = proposer(seed, y, prompt.size, most)
    ids, counts_ = speculate(target, prompt, ProposalDraft(propose, max_length=prompt.size + 16, eos_token_ids=eos),
                             16, eos_token_id=list(eos) or None)
    np.testing.assert_array_equal(ids, y)
    sim = simulate_proposals(prompt, y, propose, max_new_tokens=16, eos_token_ids=eos)
    assert (sim.target_calls, sim.proposed_tokens, sim.accepted_tokens) == (
        counts_.target_calls, counts_.proposed, counts_.accepted)


def test_bad_replay_input_raises():
    with pytest.raises(ValueError, match="prefix must be a non-empty 1-d id sequence"):
        simulate_proposals([], [1], lambda context: context[:0])
    with pytest.raises(ValueError, match="max_new_tokens \\(1\\) must be >= the output length \\(2\\)"):
        simulate_proposals([1], [1, 2], lambda context: context[:0], max_new_tokens=1)
