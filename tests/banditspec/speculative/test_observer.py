import pytest
import torch

from banditspec.speculative.observer import GenerateObserver, generation_settings
from tests.banditspec.speculative.test_decoding import tiny_llama


class FakeGenerator:
    """A candidate generator that proposes ``k`` tokens, running the target once while it drafts."""

    def __init__(self, target, k):
        self.target, self.k = target, k

    def get_candidates(self, input_ids):
        self.target(input_ids)  # a draft forward by the target itself: not a target call
        return torch.cat([input_ids, torch.zeros((1, self.k), dtype=torch.long)], dim=1), None

    def update_candidate_strategy(self, input_ids, scores, num_matches):
        return num_matches


def test_counts_target_calls_outside_drafting_and_draft_tokens():
    target = tiny_llama(50, seed=0, layers=1)
    ids = torch.tensor([[1, 2, 3]])
    with GenerateObserver(target, drafter=lambda **_: FakeGenerator(target, 4)) as observer:
        target(ids)
        generator = target._get_candidate_generator(generation_config=None)
        for matches in (4, 1):
            candidates, _ = generator.get_candidates(ids)
            target(candidates)  # verification
            generator.update_candidate_strategy(ids, None, matches)
    assert (observer.target_calls, observer.proposed, observer.accepted) == (3, 8, 5)
    assert not target._forward_hooks and "_get_candidate_generator" not in vars(target)
    target(ids)
    assert observer.target_calls == 3  # nothing is counted after the block


def test_generation_settings_are_restored_even_after_an_error():
    model = tiny_llama(50, seed=0, layers=1)
    before = model.generation_config.num_assistant_tokens
    with pytest.raises(RuntimeError):
        with generation_settings(model, num_assistant_tokens=17):
            assert model.generation_config.num_assistant_tokens == 17 != before
            raise RuntimeError
    assert model.generation_config.num_assistant_tokens == before
