import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging

from banditspec.speculative.decoding import Decoder
from banditspec.speculative.kinds import PromptLookup, Trace
from banditspec.speculative.kinds.prompt_lookup import lookup_candidates
from tests.banditspec.speculative.models import forwards, generate_ids, generation_settings, tiny_llama

logging.set_verbosity_error()
MAX_NEW = 24


def test_lookup_takes_longest_ngram_then_leftmost():
    context = np.array([5, 6, 7, 1, 6, 8, 9, 5, 6])
    # bigram (5, 6) occurs at 0 -> continuation 7, 1, 6
    np.testing.assert_array_equal(lookup_candidates(context, 3, 2), [7, 1, 6])
    # unigram 6 first occurs at 1 -> continuation 7, 1
    np.testing.assert_array_equal(lookup_candidates(context, 2, 1), [7, 1])
    assert lookup_candidates(np.array([1, 2, 3]), 3, 2).size == 0


def test_lookup_stops_before_an_end_token_as_transformers_does():
    context = np.array([5, 6, 7, 1, 6, 8, 9, 5, 6])
    np.testing.assert_array_equal(lookup_candidates(context, 3, 2, eos_token_ids=(1,)), [7])
    # a continuation that starts with an end token proposes nothing (no later occurrence is tried)
    assert lookup_candidates(context, 3, 2, eos_token_ids=(9, 7)).size == 0


def simulate(prompt, output, num_tokens, max_ngram, max_new_tokens=None, eos_token_ids=()):
    limit = len(output) if max_new_tokens is None else max_new_tokens
    arm = PromptLookup("pl", num_tokens=num_tokens, max_ngram=max_ngram)
    return arm.simulate(Trace(np.asarray(prompt), np.asarray(output, dtype=np.int64), limit, tuple(eos_token_ids)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=12), st.lists(st.integers(0, 4), max_size=30),
       st.integers(1, 6), st.integers(1, 3), st.sets(st.integers(0, 4), max_size=1))
def test_simulation_counts_are_consistent(prompt, output, num_tokens, max_ngram, eos):
    sim = simulate(prompt, output, num_tokens, max_ngram, eos_token_ids=eos)
    assert sim.new_tokens == len(output)
    assert sim.target_calls + sim.accepted_tokens == len(output)
    assert 0 <= sim.accepted_tokens <= sim.proposed_tokens
    assert sim.target_calls >= int(np.ceil(len(output) / (num_tokens + 1)))


def test_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        simulate([], [1], num_tokens=2, max_ngram=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        simulate([1], [1, 2], num_tokens=2, max_ngram=2, max_new_tokens=1)


def test_simulation_equals_real_prompt_lookup_decoding():
    torch.manual_seed(0)
    target = GPT2LMHeadModel(GPT2Config(vocab_size=12, n_positions=96, n_embd=32, n_layer=2, n_head=2,
                                        bos_token_id=0, eos_token_id=None))
    target.generation_config.eos_token_id = None
    target.generation_config.pad_token_id = 0
    decoder = Decoder(target, max_new_tokens=24)
    rng = np.random.default_rng(0)
    agree = accepted = 0
    for _ in range(10):
        motif = rng.integers(0, 12, 4)
        prompt = np.concatenate([np.tile(motif, 3), rng.integers(0, 12, 3)])
        real = decoder.generate(PromptLookup("pl", num_tokens=4, max_ngram=2), prompt)
        sim = simulate(prompt, real.ids, num_tokens=4, max_ngram=2, max_new_tokens=24)
        m = real.measurement
        agree += (sim.target_calls, sim.proposed_tokens, sim.accepted_tokens) == (
            m.target_calls, m.proposed_tokens, m.accepted_tokens)
        accepted += m.accepted_tokens
    assert agree == 10 and accepted > 0



@pytest.mark.parametrize("num_tokens, max_ngram", [(4, 2), (2, 1), (6, 3)])
def test_decodes_as_transformers_prompt_lookup_does(num_tokens, max_ngram):
    # transformers' prompt_lookup_num_tokens / max_matching_ngram_size: the same output, target calls and
    # verified proposals (counted from the tokens the target was fed), with and without an end token (one of the
    # prompt's, so lookups copy it). Some transformers releases (5.17) return no tokens from their prompt lookup on
    # such a prompt: where theirs is not their own AR output, only ours is checked, against AR.
    target = tiny_llama(12, seed=0)
    arm = PromptLookup("pl", num_tokens=num_tokens, max_ngram=max_ngram)
    rng = np.random.default_rng(num_tokens)
    accepted = compared = 0
    for i in range(6):
        motif = rng.integers(0, 12, 4)
        prompt = np.concatenate([np.tile(motif, 3), rng.integers(0, 12, 3)])
        eos = int(motif[2]) if i % 2 else None
        with generation_settings(target, eos_token_id=eos):
            decoder = Decoder(target, max_new_tokens=MAX_NEW, threads=1)
            with forwards(target) as ours:
                result = decoder.generate(arm, prompt)
            with forwards(target) as theirs:
                expected = generate_ids(target, prompt, MAX_NEW, prompt_lookup_num_tokens=num_tokens,
                                        max_matching_ngram_size=max_ngram)
            ar = generate_ids(target, prompt, MAX_NEW)
        m = result.measurement
        np.testing.assert_array_equal(result.ids, ar)
        accepted += m.accepted_tokens
        if not np.array_equal(expected, ar):
            continue
        compared += 1
        assert m.target_calls == ours.calls == theirs.calls
        assert m.proposed_tokens == ours.proposed(prompt.size) == theirs.proposed(prompt.size)
    assert accepted > 0 and compared >= 5
