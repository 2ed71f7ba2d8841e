import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.utils import logging

from banditspec.speculative.drafting import GreedyDraft
from banditspec.speculative.loop import speculative_generate
from tests.banditspec.speculative import models
from tests.banditspec.speculative.models import forwards, generate_ids, perturbed, prompts, tiny_llama

logging.set_verbosity_error()
MAX_NEW = 16


class Scripted:
    """A candidate generator that proposes ``script(n)`` after ``n`` new tokens, whatever the limits."""

    def __init__(self, prompt_length, script):
        self.prompt_length = prompt_length
        self.script = script

    def get_candidates(self, input_ids, **kwargs):
        tail = torch.as_tensor(np.asarray(self.script(input_ids.shape[1] - self.prompt_length), dtype=np.int64))
        return torch.cat([input_ids, tail[None]], dim=1), None

    def update_candidate_strategy(self, input_ids, scores, num_matches):
        pass


def greedy(model, prompt, max_new_tokens=MAX_NEW, **kwargs):
    return generate_ids(model, prompt, max_new_tokens, **kwargs)


def speculate(model, prompt, generator, max_new_tokens=MAX_NEW, **kwargs):
    """New tokens and counts of ``speculative_generate``, and the target's forwards as a hook saw them."""
    with forwards(model) as seen:
        new, counts = models.speculate(model, prompt, generator, max_new_tokens, **kwargs)
    return new, counts, seen


def assert_consistent(new, counts, seen, prompt):
    # every verification call yields the tokens it accepted and one of its own; the hook saw exactly those calls,
    # fed the proposals and the newest accepted token
    assert new.size == counts.target_calls + counts.accepted
    assert 0 <= counts.accepted <= counts.proposed
    assert seen.calls == counts.target_calls and seen.proposed(prompt.size) == counts.proposed


@pytest.fixture(scope="module")
def target():
    return tiny_llama(100, seed=11)


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 6), st.sampled_from([0.0, 0.01, 0.05, 1.0]))
def test_drafted_output_equals_plain_greedy_for_random_models(seed, block_size, scale):
    target = tiny_llama(100, seed=seed)
    draft = perturbed(target, scale, seed=seed + 1)
    prompt = prompts(1, seed=seed)[0]
    generator = GreedyDraft(draft, block_size=block_size, max_length=prompt.size + MAX_NEW)
    new, counts, seen = speculate(target, prompt, generator)
    np.testing.assert_array_equal(new, greedy(target, prompt))
    assert new.size == MAX_NEW
    assert_consistent(new, counts, seen, prompt)
    if scale == 0.0:  # the target's own copy: every proposal accepted up to float ties
        assert counts.target_calls <= math.ceil(MAX_NEW / (block_size + 1)) + 2


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.integers(0, 8))
def test_garbage_proposals_still_yield_the_greedy_output(target, seed, most):
    # random tokens of random lengths, past max_length too: verification alone decides the output
    prompt = prompts(1, seed=seed)[0]

    def script(n):
        rng = np.random.default_rng([seed, n])
        return rng.integers(0, 100, size=int(rng.integers(0, most + 1)))

    new, counts, seen = speculate(target, prompt, Scripted(prompt.size, script))
    np.testing.assert_array_equal(new, greedy(target, prompt))
    assert_consistent(new, counts, seen, prompt)


@pytest.mark.parametrize("block_size", [1, 3, 5, 20])
def test_an_oracle_needs_one_call_per_block_and_one_more_token(target, block_size):
    prompt = prompts(1, seed=3)[0]
    y = greedy(target, prompt, max_new_tokens=MAX_NEW + 30)
    new, counts, seen = speculate(target, prompt, Scripted(prompt.size, lambda n: y[n : n + block_size]))
    np.testing.assert_array_equal(new, y[:MAX_NEW])
    assert counts.target_calls == math.ceil(MAX_NEW / (block_size + 1))
    assert_consistent(new, counts, seen, prompt)


@pytest.mark.parametrize("block_size", [1, 3])
def test_each_call_projects_onto_the_vocabulary_only_the_positions_it_verifies(target, block_size):
    prompt = np.arange(2, 30) % 100  # a long prompt: the first call feeds it whole
    with forwards(target.lm_head) as projected:
        new, counts, seen = speculate(target, prompt, Scripted(prompt.size, lambda n: [7] * block_size))
    assert seen.lengths[0] == prompt.size + block_size
    assert projected.lengths == [block_size + 1] * counts.target_calls
    np.testing.assert_array_equal(new, greedy(target, prompt))


def test_stops_at_an_end_token_in_the_middle_of_a_block(target):
    prompt = prompts(1, seed=4)[0]
    y = greedy(target, prompt, max_new_tokens=MAX_NEW)
    end = next(i for i in range(2, 8) if y[i] not in y[:i])  # a token that first appears at position end
    eos = int(y[end])
    # the oracle proposes 10 tokens of the run without an end token: the end token lies inside the first block
    new, counts, seen = speculate(target, prompt, Scripted(prompt.size, lambda n: y[n : n + 10]), eos_token_id=eos)
    np.testing.assert_array_equal(new, y[: end + 1])
    np.testing.assert_array_equal(new, greedy(target, prompt, eos_token_id=eos))
    assert (counts.target_calls, counts.accepted, counts.proposed) == (1, end, 10)
    assert_consistent(new, counts, seen, prompt)


@pytest.mark.parametrize(
    "kwargs, batch, message",
    [
        ({"do_sample": True}, 1, "decodes greedily"),
        ({}, 2, "batch size 1"),
        ({"candidate_generator": None}, 1, "needs candidate_generator"),
    ],
)
def test_refuses_what_it_cannot_verify_greedily(target, kwargs, batch, message):
    ids = torch.arange(1, 5)[None].repeat(batch, 1)
    call = {"max_new_tokens": 4, "do_sample": False, "custom_generate": speculative_generate,
            "candidate_generator": Scripted(4, lambda n: [1, 2]), **kwargs}
    with pytest.raises(ValueError, match=message), torch.inference_mode():
        target.generate(ids, attention_mask=torch.ones_like(ids), **call)
