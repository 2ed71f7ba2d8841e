from functools import partial

import numpy as np
import pytest
import torch
from transformers.generation.candidate_generator import EarlyExitCandidateGenerator
from transformers.utils import logging

from banditspec.speculative.kinds import Autoregressive, DraftModel, EarlyExit
from banditspec.speculative.decoding import Decoder
from banditspec.speculative.drafting import GreedyDraft
from banditspec.speculative.kinds.early_exit import early_exit
from tests.banditspec.speculative.test_decoding import perturbed, prompts, tiny_llama

logging.set_verbosity_error()
MAX_NEW = 20


@pytest.fixture(scope="module")
def models():
    target = tiny_llama(100, seed=3)
    return target, {"close": perturbed(target, 0.003, seed=4), "far": perturbed(target, 0.05, seed=5)}


@pytest.fixture(scope="module")
def three_layers():
    return tiny_llama(100, seed=6, layers=3)


def counts(result):
    m = result.measurement
    return result.ids.tolist(), m.target_calls, m.proposed_tokens, m.accepted_tokens


@pytest.mark.parametrize("schedule", ["constant", "heuristic"])
@pytest.mark.parametrize("block_size", [1, 3, 7])
def test_lean_drafting_proposes_exactly_what_transformers_does(models, block_size, schedule):
    target, drafts = models
    lean = Decoder(target, None, drafts, max_new_tokens=MAX_NEW, threads=1)
    reference = Decoder(target, None, drafts, max_new_tokens=MAX_NEW, threads=1, lean_drafting=False)
    accepted = rejected = 0
    for key in drafts:
        arm = DraftModel(key, model=key, block_size=block_size, schedule=schedule)
        for prompt in prompts(4, seed=block_size):
            fast, slow = lean.generate(arm, prompt), reference.generate(arm, prompt)
            assert counts(fast) == counts(slow)
            accepted += fast.measurement.accepted_tokens
            rejected += fast.measurement.proposed_tokens - fast.measurement.accepted_tokens
    assert accepted > 0 and rejected > 0  # rounds that grow and rounds that shrink a heuristic block


def test_greedy_draft_refuses_an_unknown_schedule(models):
    target, drafts = models
    with pytest.raises(ValueError, match="schedule must be one of"):
        GreedyDraft(drafts["close"], block_size=2, max_length=40, schedule="dynamic")


def test_lean_drafting_is_used_only_where_it_proposes_the_same_tokens(models):
    target, drafts = models
    decoder = Decoder(target, None, drafts, max_new_tokens=MAX_NEW)
    settings = {"num_assistant_tokens_schedule": "constant", "assistant_confidence_threshold": 0.0}
    assert decoder._drafter(DraftModel("c", model="close", block_size=4), settings) is not None
    heuristic = {**settings, "num_assistant_tokens_schedule": "heuristic"}
    assert decoder._drafter(DraftModel("c", model="close", schedule="heuristic"), heuristic) is not None
    assert decoder._drafter(DraftModel("c", model="close"), {**settings, "assistant_confidence_threshold": 0.4}) is None
    off = Decoder(target, None, drafts, max_new_tokens=MAX_NEW, lean_drafting=False)
    assert off._drafter(DraftModel("c", model="close", block_size=4), settings) is None


@pytest.mark.parametrize("block_size", [1, 3, 6])
def test_lean_early_exit_proposes_exactly_what_transformers_does(three_layers, block_size):
    lean = Decoder(three_layers, max_new_tokens=MAX_NEW, threads=1)
    reference = Decoder(three_layers, max_new_tokens=MAX_NEW, threads=1, lean_drafting=False)
    for layer in (1, 2):
        arm = EarlyExit(f"exit{layer}", layer=layer, block_size=block_size)
        accepted = rejected = 0
        for prompt in prompts(3, seed=10 + block_size):
            ar = lean.generate(Autoregressive("ar"), prompt)
            fast, slow = lean.generate(arm, prompt, reference=ar), reference.generate(arm, prompt, reference=ar)
            assert counts(fast) == counts(slow)
            assert fast.measurement.equals_ar and slow.measurement.equals_ar
            assert three_layers.config.num_hidden_layers == 3
            accepted += fast.measurement.accepted_tokens
            rejected += fast.measurement.proposed_tokens - fast.measurement.accepted_tokens
        assert accepted > 0 and rejected > 0  # rounds that accept and rounds that crop the draft's cache


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


def test_transformers_drafts_early_exits_without_lean_drafting(three_layers, monkeypatch):
    rounds = []
    original = EarlyExitCandidateGenerator.get_candidates

    def counted(self, *args, **kwargs):
        rounds.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EarlyExitCandidateGenerator, "get_candidates", counted)
    arm, prompt = EarlyExit("exit1", layer=1, block_size=3), prompts(1, seed=21)[0]
    Decoder(three_layers, max_new_tokens=MAX_NEW, threads=1).generate(arm, prompt)
    assert not rounds
    Decoder(three_layers, max_new_tokens=MAX_NEW, threads=1, lean_drafting=False).generate(arm, prompt)
    assert rounds


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
