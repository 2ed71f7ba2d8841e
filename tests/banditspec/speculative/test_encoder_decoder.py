"""An encoder-decoder target (T5): every kind that can run on it decodes losslessly and is simulated exactly."""

import numpy as np
import pytest
from transformers.utils import logging

from banditspec.speculative.counterfactual import draft_matches_batch
from banditspec.speculative.decoding import Decoder, greedy_outputs, greedy_pass
from banditspec.speculative.kinds import Autoregressive, DraftModel, EarlyExit, PromptLookup, Trace
from tests.banditspec.speculative.models import perturbed, prompts, tiny_llama, tiny_t5

logging.set_verbosity_error()
MAX_NEW = 16
ARMS = [
    Autoregressive("ar"),
    DraftModel("constant", model="noisy", block_size=3),
    DraftModel("heuristic", model="noisy", block_size=2, schedule="heuristic"),
    PromptLookup("lookup", num_tokens=3),
]


@pytest.fixture(scope="module")
def t5():
    target = tiny_t5(100, seed=1)
    return target, perturbed(target, 0.02, seed=2)


@pytest.fixture(scope="module")
def decoder(t5):
    target, draft = t5
    return Decoder(target, None, {"noisy": draft}, max_new_tokens=MAX_NEW, threads=1)


def test_every_arm_equals_ar_and_its_simulation(decoder, t5):
    _, draft = t5
    queries = prompts(5, seed=0)
    batched = greedy_outputs(decoder.target, queries, max_new_tokens=MAX_NEW, pad_id=0,
                             eos_token_ids=decoder.eos_token_ids)
    accepted = {arm.name: 0 for arm in ARMS}
    rejected = dict(accepted)
    for prompt, output in zip(queries, batched):
        results = decoder.measure(prompt, ARMS)
        reference = results[0]
        np.testing.assert_array_equal(output, reference.ids)  # batched with left padding, start token left out
        assert decoder.prefix(prompt).tolist() == [0]
        match = draft_matches_batch(draft, [prompt], [reference.ids])[0]
        for arm, result in zip(ARMS, results):
            m = result.measurement
            assert m.equals_ar and m.new_tokens == m.target_calls + m.accepted_tokens
            np.testing.assert_array_equal(result.ids, reference.ids)
            trace = Trace(decoder.prefix(prompt), reference.ids, MAX_NEW, decoder.eos_token_ids,
                          match if arm.drafter() is not None else None)
            simulated = arm.simulate(trace)
            assert (simulated.target_calls, simulated.accepted_tokens, simulated.proposed_tokens) == (
                m.target_calls, m.accepted_tokens, m.proposed_tokens)
            accepted[arm.name] += m.accepted_tokens
            rejected[arm.name] += m.proposed_tokens - m.accepted_tokens
    assert all(accepted[arm.name] > 0 for arm in ARMS[1:])  # every drafting arm drafts and is sometimes right
    assert rejected["constant"] > 0 and rejected["heuristic"] > 0  # ... and sometimes wrong


def test_an_early_exit_and_a_decoder_only_draft_are_refused(t5):
    target, _ = t5
    decoder = Decoder(target, None, {"llama": tiny_llama(100, seed=0)}, max_new_tokens=4)
    with pytest.raises(ValueError, match="arm 'e': t5 is an encoder-decoder model; an early exit needs a "
                                         "decoder-only target"):
        decoder.generate(EarlyExit("e", layer=1), [5, 6, 7])
    with pytest.raises(ValueError, match="draft 'llama' must be an encoder-decoder model like the target"):
        decoder.generate(DraftModel("d", model="llama"), [5, 6, 7])


def test_the_prefill_and_the_states_of_an_encoder_decoder_are_not_kept(decoder):
    with pytest.raises(ValueError, match="features from the prefill need a decoder-only model"):
        greedy_pass(decoder.target, prompts(2, seed=0), max_new_tokens=2, pad_id=0, pool=lambda states, mask: None)
    with pytest.raises(ValueError, match="hidden states along the outputs are kept for a decoder-only model only"):
        greedy_pass(decoder.target, prompts(2, seed=0), max_new_tokens=2, pad_id=0, layers=(1,))
