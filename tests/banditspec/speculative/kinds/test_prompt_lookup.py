import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import GPT2Config, GPT2LMHeadModel

from banditspec.speculative.kinds import PromptLookup
from banditspec.speculative.decoding import Decoder
from banditspec.speculative.kinds.prompt_lookup import lookup_candidates, simulate_prompt_lookup


def test_lookup_takes_longest_ngram_then_leftmost():
    context = np.array([5, 6, 7, 1, 6, 8, 9, 5, 6])
    # bigram (5, 6) occurs at 0 -> continuation 7, 1, 6
    np.testing.assert_array_equal(lookup_candidates(context, 3, 2), [7, 1, 6])
    # unigram 6 first occurs at 1 -> continuation 7, 1
    np.testing.assert_array_equal(lookup_candidates(context, 2, 1), [7, 1])
    assert lookup_candidates(np.array([1, 2, 3]), 3, 2).size == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=12), st.lists(st.integers(0, 4), max_size=30),
       st.integers(1, 6), st.integers(1, 3))
def test_simulation_counts_are_consistent(prompt, output, num_tokens, max_ngram):
    sim = simulate_prompt_lookup(prompt, output, num_tokens=num_tokens, max_ngram=max_ngram)
    assert sim.new_tokens == len(output)
    assert sim.target_calls + sim.accepted_tokens == len(output)
    assert 0 <= sim.accepted_tokens <= sim.proposed_tokens
    assert sim.target_calls >= int(np.ceil(len(output) / (num_tokens + 1)))


def test_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        simulate_prompt_lookup([], [1], num_tokens=2, max_ngram=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        simulate_prompt_lookup([1], [1, 2], num_tokens=2, max_ngram=2, max_new_tokens=1)


def test_simulation_equals_real_prompt_lookup_decoding():
    torch.manual_seed(0)
    target = GPT2LMHeadModel(GPT2Config(vocab_size=12, n_positions=96, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=None))
    target.generation_config.eos_token_id = None
    target.generation_config.pad_token_id = 0
    decoder = Decoder(target, max_new_tokens=24)
    rng = np.random.default_rng(0)
    agree = 0
    for _ in range(10):
        motif = rng.integers(0, 12, 4)
        prompt = np.concatenate([np.tile(motif, 3), rng.integers(0, 12, 3)])
        arm = PromptLookup("pl", num_tokens=4, max_ngram=2)
        real = decoder.generate(arm, prompt)
        sim = simulate_prompt_lookup(prompt, real.ids, num_tokens=4, max_ngram=2, max_new_tokens=24)
        agree += (sim.target_calls, sim.proposed_tokens) == (
            real.measurement.target_calls, real.measurement.proposed_tokens)
    assert agree == 10
