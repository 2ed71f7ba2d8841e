import time

import numpy as np
import pytest
import torch
from transformers.utils import logging

from banditspec.bandits.arms import Arm
from banditspec.bandits.features import TargetHiddenStates
from banditspec.speculative.counterfactual import draft_matches_batch
from banditspec.speculative.decoding import WARMUP_NEW_TOKENS, DecodeTimeout, Decoder, greedy_outputs, greedy_pass
from banditspec.speculative.kinds import Autoregressive, DraftModel, EarlyExit, PromptLookup, Trace
from tests.banditspec.speculative.models import perturbed, prompts, tiny_llama, word_tokenizer

logging.set_verbosity_error()
MAX_NEW = 20


@pytest.fixture(scope="module")
def models():
    target = tiny_llama(100, seed=0)
    return target, perturbed(target, 0.004, seed=1)


@pytest.fixture(scope="module")
def decoder(models):
    target, draft = models
    return Decoder(target, None, {"noisy": draft, "self": target}, max_new_tokens=MAX_NEW, threads=1)


ARMS = [
    Autoregressive("ar"),
    DraftModel("noisy4", model="noisy", block_size=4, cost=0.2),
    DraftModel("noisy2h", model="noisy", block_size=2, schedule="heuristic"),
    DraftModel("self3", model="self", block_size=3),
    PromptLookup("lookup", num_tokens=3),
    EarlyExit("exit1", layer=1, block_size=3),
]


def test_every_arm_is_lossless_and_counts_add_up(decoder):
    totals = {arm.name: np.zeros(2, dtype=int) for arm in ARMS}
    for prompt in prompts(3):
        results = decoder.measure(prompt, ARMS)
        reference = results[0]
        assert reference.measurement.target_calls == reference.measurement.new_tokens == MAX_NEW
        for arm, result in zip(ARMS, results):
            m = result.measurement
            assert m.arm == arm.name and m.cost == arm.cost
            assert m.equals_ar
            np.testing.assert_array_equal(result.ids, reference.ids)
            assert m.ar_wall_seconds == reference.measurement.wall_seconds
            # every target call yields the tokens it accepted plus one of its own
            assert m.new_tokens == MAX_NEW == m.target_calls + m.accepted_tokens
            totals[arm.name] += (m.accepted_tokens, m.proposed_tokens)
    accepted, proposed = totals["noisy4"]
    assert 0 < accepted < proposed  # some but not all proposals accepted
    accepted, proposed = totals["self3"]
    assert accepted > 0.9 * proposed  # the target agrees with itself (up to float ties)
    assert totals["ar"].sum() == 0


def test_a_smaller_max_new_tokens_is_a_prefix_of_the_full_output_and_a_larger_one_is_refused(decoder):
    prompt = prompts(1)[0]
    full = decoder.generate(Autoregressive("ar"), prompt).ids
    for arm in (ARMS[0], ARMS[1]):
        np.testing.assert_array_equal(decoder.generate(arm, prompt, max_new_tokens=5).ids, full[:5])
    with pytest.raises(ValueError, match="max_new_tokens"):
        decoder.generate(ARMS[1], prompt, max_new_tokens=MAX_NEW + 1)



def test_the_warm_up_decodes_ar_every_draft_and_every_arm_briefly(decoder, monkeypatch):
    decodes = []
    generate = decoder.generate

    def recorded(arm, prompt, **options):
        result = generate(arm, prompt, **options)
        decodes.append((arm.name, len(result.ids)))
        return result

    monkeypatch.setattr(decoder, "generate", recorded)
    decoder.warmup(prompts(1)[0], ARMS[1:3])
    assert [name for name, _ in decodes] == ["warmup-ar", "warmup-0", "warmup-1", "noisy4", "noisy2h"]
    assert {n for _, n in decodes} == {WARMUP_NEW_TOKENS} and WARMUP_NEW_TOKENS < MAX_NEW
    decodes.clear()
    decoder.warmup(prompts(1)[0], max_new_tokens=MAX_NEW + 5)  # at most the decoder's own
    assert {n for _, n in decodes} == {MAX_NEW}
    with pytest.raises(ValueError, match="max_new_tokens"):
        decoder.warmup(max_new_tokens=0)

def test_a_speculative_decode_past_its_deadline_raises_and_ar_has_none(decoder):
    prompt = prompts(1)[0]
    with pytest.raises(DecodeTimeout, match="noisy4"):
        decoder.generate(ARMS[1], prompt, deadline=time.perf_counter())  # already passed
    ar = decoder.generate(ARMS[0], prompt, deadline=time.perf_counter())
    assert ar.ids.size == MAX_NEW
    later = decoder.generate(ARMS[1], prompt, deadline=time.perf_counter() + 3600)
    np.testing.assert_array_equal(later.ids, ar.ids)


def test_measured_calls_match_counterfactual_simulation(decoder, models):
    target, draft = models
    arms = [a for a in ARMS if isinstance(a, DraftModel)]
    arms.append(DraftModel("noisy6t", model="noisy", block_size=6, confidence_threshold=0.4))
    queries = prompts(6, seed=1)
    agree = total = 0
    for prompt in queries:
        results = decoder.measure(prompt, arms)
        output = decoder.generate(Autoregressive("ar"), prompt).ids
        vectors = {key: draft_matches_batch(model, [prompt], [output])[0] for key, model in decoder.drafts.items()}
        for arm, result in zip(arms, results):
            m = result.measurement
            sim = arm.simulate(Trace(decoder.prefix(prompt), output, MAX_NEW, decoder.eos_token_ids,
                                     vectors[arm.model]))
            same = (sim.target_calls, sim.accepted_tokens) == (m.target_calls, m.accepted_tokens)
            same &= not sim.proposed_exact or sim.proposed_tokens == m.proposed_tokens
            agree += same
            total += 1
    assert agree >= 0.95 * total


def test_schedule_state_is_reset_between_calls(decoder, models):
    _, draft = models
    before = (draft.generation_config.num_assistant_tokens, draft.generation_config.assistant_confidence_threshold)
    prompt = prompts(1, seed=2)[0]
    for arm in (DraftModel("h", model="noisy", block_size=2, schedule="heuristic"),
                DraftModel("t", model="noisy", block_size=5, confidence_threshold=0.4)):
        first = decoder.generate(arm, prompt).measurement
        second = decoder.generate(arm, prompt).measurement
        key = lambda m: (m.target_calls, m.accepted_tokens, m.proposed_tokens)  # noqa: E731
        assert key(first) == key(second)
    after = (draft.generation_config.num_assistant_tokens, draft.generation_config.assistant_confidence_threshold)
    assert after == before
    # no hook or shadowing method is left on the target
    assert not decoder.target._forward_hooks
    assert not {"generate", "_get_candidate_generator"} & set(vars(decoder.target))


def test_unverified_output_is_not_claimed_equal(decoder):
    prompt = prompts(1, seed=3)[0]
    result = decoder.generate(DraftModel("d", model="noisy"), prompt)
    assert not result.measurement.equals_ar and result.measurement.ar_wall_seconds is None
    assert decoder.generate(Autoregressive("ar"), prompt).measurement.equals_ar


def test_bad_inputs_raise_before_decoding(decoder, models):
    target, _ = models
    with pytest.raises(ValueError, match="prompt must not be empty"):
        decoder.generate(Autoregressive("ar"), [])
    with pytest.raises(ValueError, match="at most 44 tokens"):
        decoder.generate(Autoregressive("ar"), np.ones(45, dtype=int))
    with pytest.raises(ValueError, match="needs the target's tokenizer"):
        decoder.generate(Autoregressive("ar"), "hello")
    with pytest.raises(ValueError, match="prompt token ids must be in \\[0, 100\\)"):
        decoder.generate(Autoregressive("ar"), [1, 100])
    with pytest.raises(ValueError, match="arm 'd' needs draft 'missing'; loaded drafts are \\['noisy', 'self'\\]"):
        decoder.measure([1, 2, 3], [Autoregressive("ar"), DraftModel("d", model="missing")])
    with pytest.raises(ValueError, match=r"EarlyExit.layer \(the target has 2 layers\) must be an integer in \[1, 1\]"):
        decoder.generate(EarlyExit("e", layer=2), [1, 2, 3])
    with pytest.raises(ValueError, match=r"EarlyExit.layer of arm 'e' must be an integer in \[1, inf\], got True"):
        EarlyExit("e", layer=True)
    with pytest.raises(ValueError, match="arm 'mine' of kind 'custom' does not decode with a target model"):
        decoder.generate(Arm("mine"), [1, 2, 3])
    other = tiny_llama(80, seed=5)
    with pytest.raises(ValueError, match="draft 'other' has vocabulary size 80 but the target has 100"):
        Decoder(target, None, {"other": other})
    with pytest.raises(ValueError, match="max_new_tokens"):
        Decoder(target, None, max_new_tokens=0)
    with pytest.raises(ValueError, match="threads"):
        Decoder(target, None, threads=0)


def test_text_prompts_use_the_targets_tokenizer_and_drafts_must_share_its_vocabulary():
    words = [f"w{i}" for i in range(60)]
    tokenizer = word_tokenizer(words)
    target = tiny_llama(len(tokenizer), seed=7)
    decoder = Decoder(target, tokenizer, {"same": perturbed(target, 0.01, seed=8)}, max_new_tokens=12)
    results = decoder.measure("w1 w2 w3 w4", [DraftModel("same", model="same", block_size=3)])
    m = results[0].measurement
    assert m.equals_ar and m.new_tokens == 12 == m.target_calls + m.accepted_tokens
    assert results[0].text.split() == [tokenizer.convert_ids_to_tokens(int(i)) for i in results[0].ids]
    np.testing.assert_array_equal(decoder.encode("w1 w2 w3 w4"), tokenizer("w1 w2 w3 w4")["input_ids"])
    other = word_tokenizer(list(reversed(words))[:50])  # other ids, fewer words
    with pytest.raises(ValueError, match="draft 'other' has vocabulary size 52 but the target has 62: drafts must "
                                         "share the target's tokenizer"):
        Decoder(target, tokenizer, {"other": tiny_llama(len(other), seed=9)})


def test_early_exit_on_a_gpt2_target_is_refused():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    target = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=32, n_embd=16, n_layer=2, n_head=2))
    with pytest.raises(ValueError, match="ignore transformers' assistant_early_exit"):
        Decoder(target, max_new_tokens=4).generate(EarlyExit("e", layer=1), [1, 2, 3])


@pytest.mark.parametrize("world_name", ["tiny_toy", "self_draft"])  # a GPT-2 and a Llama target (early exit)
def test_a_decode_from_the_featurizers_prefill_equals_ar_with_the_same_counts(world_name, request):
    world = request.getfixturevalue(world_name)
    decoder = world.decoder
    featurizer = TargetHiddenStates(decoder.target, decoder.tokenizer)
    for text in world.queries(3, split="test", seed=5).texts:
        features, cache = featurizer.prefill(text)
        np.testing.assert_array_equal(features, featurizer.transform([text])[0])
        np.testing.assert_array_equal(cache.ids, decoder.encode(text)[:-1])
        ar = decoder.generate(Autoregressive("ar"), text)
        for arm in world.arms:
            _, cache = featurizer.prefill(text)
            assert cache.past_key_values.get_seq_length() == decoder.encode(text).size - 1
            continued = decoder.generate(arm, text, prompt_cache=cache, reference=ar)
            plain = decoder.generate(arm, text)
            np.testing.assert_array_equal(continued.ids, ar.ids)
            assert continued.measurement.equals_ar
            assert continued.measurement.target_calls == plain.measurement.target_calls
            assert continued.measurement.accepted_tokens == plain.measurement.accepted_tokens


REFUSED = "prompt_cache must hold the target's keys and values of exactly this prompt's first"


def test_a_cache_of_another_prompt_of_the_same_length_is_refused(tiny_toy):
    decoder = tiny_toy.decoder
    featurizer = TargetHiddenStates(decoder.target, decoder.tokenizer)
    text = tiny_toy.queries(1, split="test", seed=6).texts[0]
    ids = decoder.encode(text)
    other = ids.copy()
    other[0] = (other[0] + 1) % decoder.tokenizer.vocab_size  # another prompt, as long
    _, cache = featurizer.prefill(text)
    with pytest.raises(ValueError, match=REFUSED + f" {ids.size - 1} tokens .*: it was made from other token ids"):
        decoder.generate(Autoregressive("ar"), other, prompt_cache=cache)


def test_a_cache_a_decode_has_extended_is_refused(tiny_toy):
    decoder = tiny_toy.decoder
    featurizer = TargetHiddenStates(decoder.target, decoder.tokenizer)
    text = tiny_toy.queries(1, split="test", seed=6).texts[0]
    _, cache = featurizer.prefill(text)
    decoder.generate(Autoregressive("ar"), text, prompt_cache=cache)
    with pytest.raises(ValueError, match=REFUSED + ".*: it was made from these token ids and holds"):
        decoder.generate(Autoregressive("ar"), text, prompt_cache=cache)


def test_the_greedy_pass_keeps_the_states_along_each_output_as_a_teacher_forced_pass_computes_them(models):
    target, _ = models
    queries = prompts(7, seed=3)
    eos = (int(greedy_outputs(target, queries[:1], max_new_tokens=MAX_NEW, pad_id=0)[0][3]),)  # cuts some outputs
    greedy = greedy_pass(target, queries, max_new_tokens=MAX_NEW, pad_id=0, eos_token_ids=eos, batch_size=3,
                         layers=(0, 1))
    plain = greedy_outputs(target, queries, max_new_tokens=MAX_NEW, pad_id=0, eos_token_ids=eos, batch_size=3)
    assert all(np.array_equal(a, b) for a, b in zip(greedy.outputs, plain, strict=True))
    assert min(y.size for y in greedy.outputs) < MAX_NEW  # some output ended at its end-of-sequence token
    with torch.inference_mode():
        for x, y, *states in zip(queries, greedy.outputs, greedy.states[0], greedy.states[1]):
            ids = torch.from_numpy(np.concatenate([x, y[:-1]]))[None]
            hidden = target(input_ids=ids, output_hidden_states=True).hidden_states
            for layer, kept in enumerate(states):
                assert kept.shape == (y.size, 32)
                torch.testing.assert_close(kept, hidden[layer][0, x.size - 1 :], atol=1e-5, rtol=1e-4)


def test_the_greedy_pass_refuses_a_layer_the_model_does_not_have(models):
    target, _ = models
    for layer in (-1, 2, 1.0):
        with pytest.raises(ValueError, match=r"greedy_pass layer \(the model has 2 layers\)"):
            greedy_pass(target, prompts(1), max_new_tokens=2, pad_id=0, layers=(layer,))
