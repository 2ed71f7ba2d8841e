"""Our drafting against transformers' own assisted generation, through its public API only.

transformers drafts with ``generate(assistant_model=draft)`` (the draft's
``generation_config`` holds ``num_assistant_tokens``,
``num_assistant_tokens_schedule`` and ``assistant_confidence_threshold``, set
for the call and restored: transformers keeps a heuristic block size on the
draft between calls) and ``generate(assistant_early_exit=k)`` (the same fields
on the target's config). A forward pre-hook on the target, or on its top layer
where the target drafts for itself, sees every verification call and the
tokens it was fed; a hook on the draft counts draft forwards (one per proposed
token, in both implementations).
"""

from functools import partial

import numpy as np
import pytest
import torch
from transformers.utils import logging

from banditspec.speculative.decoding import Decoder
from banditspec.speculative.drafting import GreedyDraft
from banditspec.speculative.kinds import Autoregressive, DraftModel, EarlyExit
from banditspec.speculative.kinds.early_exit import early_exit
from tests.banditspec.speculative.models import (
    forwards,
    generate_ids,
    generation_settings,
    perturbed,
    prompts,
    tiny_llama,
)

logging.set_verbosity_error()
MAX_NEW = 20


@pytest.fixture(autouse=True)
def no_grad():
    """Draft as generate() does, without building autograd graphs (also for direct get_candidates calls)."""
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def models():
    target = tiny_llama(100, seed=3)
    return target, {"close": perturbed(target, 0.003, seed=4), "far": perturbed(target, 0.05, seed=5)}


@pytest.fixture(scope="module")
def three_layers():
    return tiny_llama(100, seed=6, layers=3)


def with_and_without_an_end_token(target, queries):
    """``(prompt, eos)`` pairs: every other prompt ends at the token its greedy output first has at position 8."""
    for i, prompt in enumerate(queries):
        y = generate_ids(target, prompt, MAX_NEW)
        yield prompt, (int(y[8]) if i % 2 else None)


def ended_early(ids):
    return ids.size < MAX_NEW


@pytest.mark.parametrize(
    "block_size, schedule, threshold",
    [(1, "constant", 0.0), (4, "constant", 0.0), (2, "heuristic", 0.0), (6, "constant", 0.4), (3, "heuristic", 0.4)],
)
def test_drafts_decode_as_transformers_assisted_generation_does(models, block_size, schedule, threshold):
    target, drafts = models
    accepted = rejected = early = 0
    for prompt, eos in with_and_without_an_end_token(target, prompts(3, seed=block_size)):
        with generation_settings(target, eos_token_id=eos):
            decoder = Decoder(target, None, drafts, max_new_tokens=MAX_NEW, threads=1)
            for key, draft in drafts.items():
                arm = DraftModel(key, model=key, block_size=block_size, schedule=schedule,
                                 confidence_threshold=threshold)
                with forwards(target) as ours, forwards(draft) as our_draft:
                    result = decoder.generate(arm, prompt)
                with generation_settings(draft, num_assistant_tokens=block_size,
                                         num_assistant_tokens_schedule=schedule,
                                         assistant_confidence_threshold=threshold):
                    with forwards(target) as theirs, forwards(draft) as their_draft:
                        expected = generate_ids(target, prompt, MAX_NEW, assistant_model=draft)
                m = result.measurement
                np.testing.assert_array_equal(result.ids, expected)
                assert m.target_calls == ours.calls == theirs.calls
                assert m.proposed_tokens == ours.proposed(prompt.size) == theirs.proposed(prompt.size)
                assert m.proposed_tokens == our_draft.calls == their_draft.calls
                accepted += m.accepted_tokens
                rejected += m.proposed_tokens - m.accepted_tokens
                early += ended_early(result.ids)
    assert accepted > 0 and rejected > 0  # rounds that grow and rounds that shrink a heuristic block
    assert early > 0  # an end token inside the output


@pytest.mark.parametrize("block_size", [1, 4])
@pytest.mark.parametrize("layer", [1, 2])
def test_early_exits_decode_as_transformers_assistant_early_exit_does(three_layers, layer, block_size):
    target, top = three_layers, three_layers.model.layers[-1]  # only the full target's forwards reach its top layer
    decoder = Decoder(target, max_new_tokens=MAX_NEW, threads=1)
    arm = EarlyExit(f"exit{layer}", layer=layer, block_size=block_size)
    accepted = rejected = 0
    for prompt in prompts(3, seed=10 + block_size):
        ar = decoder.generate(Autoregressive("ar"), prompt)
        with forwards(top) as ours, forwards(target) as our_all:
            result = decoder.generate(arm, prompt, reference=ar)
        with generation_settings(target, num_assistant_tokens=block_size, num_assistant_tokens_schedule="constant",
                                 assistant_confidence_threshold=0.0):
            with forwards(top) as theirs, forwards(target) as their_all:
                expected = generate_ids(target, prompt, MAX_NEW, assistant_early_exit=layer)
        m = result.measurement
        assert m.equals_ar
        np.testing.assert_array_equal(result.ids, expected)
        assert m.target_calls == ours.calls == theirs.calls
        assert m.proposed_tokens == ours.proposed(prompt.size) == theirs.proposed(prompt.size)
        # every other forward of the target is one draft step of the exit
        assert our_all.calls - ours.calls == their_all.calls - theirs.calls == m.proposed_tokens
        assert target.config.num_hidden_layers == 3
        accepted += m.accepted_tokens
        rejected += m.proposed_tokens - m.accepted_tokens
    assert accepted > 0 and rejected > 0  # rounds that accept and rounds that crop the draft's cache


def test_greedy_draft_refuses_an_unknown_schedule(models):
    target, drafts = models
    with pytest.raises(ValueError, match="schedule must be one of"):
        GreedyDraft(drafts["close"], block_size=2, max_length=40, schedule="dynamic")


def test_early_exit_truncates_only_the_draft_forwards(three_layers):
    layers_seen, top_layer_calls = [], []
    hooks = [
        three_layers.register_forward_hook(lambda *_: layers_seen.append(three_layers.model.config.num_hidden_layers)),
        three_layers.model.layers[-1].register_forward_hook(lambda *_: top_layer_calls.append(1)),
    ]
    try:
        result = Decoder(three_layers, max_new_tokens=MAX_NEW, threads=1).generate(
            EarlyExit("exit1", layer=1, block_size=3), prompts(1, seed=20)[0]
        )
    finally:
        for hook in hooks:
            hook.remove()
    m = result.measurement
    # the target verifies with all its layers, up to the top one; every other forward is a draft step through
    # layer 1 alone, which never reaches the top layer
    assert layers_seen.count(3) == len(top_layer_calls) == m.target_calls > 0
    assert set(layers_seen) == {1, 3} and layers_seen.count(1) == m.proposed_tokens > 0
    assert three_layers.config.num_hidden_layers == 3


def test_early_exit_is_restored_after_an_error_while_drafting(three_layers):
    def fail(*_):
        raise RuntimeError("draft")

    generator = GreedyDraft(three_layers, block_size=2, max_length=64, view=partial(early_exit, three_layers, 1))
    hook = three_layers.model.norm.register_forward_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="draft"):
            generator.get_candidates(torch.tensor([[1, 2, 3]]))
    finally:
        hook.remove()
    assert three_layers.config.num_hidden_layers == 3


def test_cache_is_cropped_to_the_verified_prefix(models):
    target, drafts = models
    draft = drafts["far"]
    generator = GreedyDraft(draft, block_size=4, max_length=64)
    ids = torch.tensor([[5, 6, 7, 8]])
    first = generator.get_candidates(ids)[0]
    # the target rejects every proposal and appends its own token
    corrected = torch.cat([ids, torch.tensor([[(int(first[0, 4]) + 1) % 100]])], dim=1)
    second = generator.get_candidates(corrected)[0]
    with torch.inference_mode():
        expected = corrected
        for _ in range(4):
            nxt = draft(expected).logits[:, -1].argmax(-1, keepdim=True)
            expected = torch.cat([expected, nxt], dim=1)
    np.testing.assert_array_equal(second.numpy(), expected.numpy())


def test_proposals_stop_at_max_length_and_after_an_end_token(models):
    _, drafts = models
    draft = drafts["close"]
    ids = torch.tensor([[1, 2, 3]])
    assert GreedyDraft(draft, block_size=5, max_length=6).get_candidates(ids)[0].shape[1] == 5
    assert GreedyDraft(draft, block_size=5, max_length=4).get_candidates(ids)[0] is ids
    with torch.inference_mode():
        first = int(draft(ids).logits[0, -1].argmax())
    stopped = GreedyDraft(draft, block_size=5, max_length=64, eos_token_ids=[first]).get_candidates(ids)[0]
    assert stopped[0].tolist() == [1, 2, 3, first]


def test_bad_settings_are_refused(models):
    _, drafts = models
    with pytest.raises(ValueError, match="block_size"):
        GreedyDraft(drafts["close"], block_size=0, max_length=10)
    with pytest.raises(ValueError, match="batch size 1"):
        GreedyDraft(drafts["close"], block_size=2, max_length=10).get_candidates(torch.zeros((2, 3), dtype=torch.long))
