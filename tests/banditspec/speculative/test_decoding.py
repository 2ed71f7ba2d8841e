import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging

from banditspec.bandits.arms import Arm
from banditspec.speculative.kinds import Autoregressive, DraftModel, EarlyExit, PromptLookup
from banditspec.speculative.counterfactual import draft_matches_batch
from banditspec.speculative.decoding import Decoder

logging.set_verbosity_error()
MAX_NEW = 20


def tiny_llama(vocab: int, seed: int, layers: int = 2, **overrides) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, bos_token_id=None, eos_token_id=None,
        pad_token_id=None, **overrides,
    )
    return LlamaForCausalLM(config).eval()


def perturbed(model: LlamaForCausalLM, scale: float, seed: int) -> LlamaForCausalLM:
    copy = LlamaForCausalLM(model.config).eval()
    copy.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in copy.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return copy


@pytest.fixture(scope="module")
def models():
    target = tiny_llama(100, seed=0)
    return target, perturbed(target, 0.004, seed=1)


@pytest.fixture(scope="module")
def decoder(models):
    target, draft = models
    return Decoder(target, None, {"noisy": draft, "self": target}, max_new_tokens=MAX_NEW, threads=1)


def prompts(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 100, size=int(rng.integers(3, 12))) for _ in range(n)]


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


def test_measured_calls_match_counterfactual_simulation(decoder, models):
    target, draft = models
    arms = [a for a in ARMS if isinstance(a, DraftModel)]
    arms.append(DraftModel("noisy6t", model="noisy", block_size=6, settings={"confidence_threshold": 0.4}))
    queries = prompts(6, seed=1)
    agree = total = 0
    for prompt in queries:
        results = decoder.measure(prompt, arms)
        output = decoder.generate(Autoregressive("ar"), prompt).ids
        vectors = {key: draft_matches_batch(model, [prompt], [output])[0] for key, model in decoder.drafts.items()}
        for arm, result in zip(arms, results):
            m = result.measurement
            sim = simulate_arm(arm, vectors[arm.model], max_new_tokens=MAX_NEW)
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
                DraftModel("t", model="noisy", block_size=5, settings={"confidence_threshold": 0.4})):
        first = decoder.generate(arm, prompt).measurement
        second = decoder.generate(arm, prompt).measurement
        key = lambda m: (m.target_calls, m.accepted_tokens, m.proposed_tokens)  # noqa: E731
        assert key(first) == key(second)
    after = (draft.generation_config.num_assistant_tokens, draft.generation_config.assistant_confidence_threshold)
    assert after == before
    # no hook or shadowing method is left on the target
    assert not decoder.target._forward_hooks
    assert "_get_candidate_generator" not in vars(decoder.target)


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
    with pytest.raises(ValueError, match="'missing' .* is not a draft key"):
        decoder.measure([1, 2, 3], [Autoregressive("ar"), DraftModel("d", model="missing")])
    with pytest.raises(ValueError, match="EarlyExit.layer must be < the target's 2 layers"):
        decoder.generate(EarlyExit("e", layer=2), [1, 2, 3])
    with pytest.raises(ValueError, match="'e': EarlyExit.layer .* got True"):
        decoder.generate(EarlyExit("e", layer=True), [1, 2, 3])
    with pytest.raises(ValueError, match="has kind 'custom'"):
        decoder.generate(Arm("mine"), [1, 2, 3])
    other = tiny_llama(80, seed=5)
    with pytest.raises(ValueError, match="vocabulary size 80 but the target has 100"):
        Decoder(target, None, {"other": other})
    with pytest.raises(ValueError, match="max_new_tokens"):
        Decoder(target, None, max_new_tokens=0)
    with pytest.raises(ValueError, match="not in drafts"):
        Decoder(target, None, draft_tokenizers={"x": None})


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
    core = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")


def test_draft_with_another_tokenizer(models):
    words = [f"w{i}" for i in range(60)]
    target_tok = word_tokenizer(words)
    draft_tok = word_tokenizer(list(reversed(words))[:50])  # other ids, fewer words
    target = tiny_llama(len(target_tok), seed=7)
    draft = tiny_llama(len(draft_tok), seed=8)
    decoder = Decoder(target, target_tok, {"other": draft}, draft_tokenizers={"other": draft_tok}, max_new_tokens=12)
    results = decoder.measure("w1 w2 w3 w4", [DraftModel("other", model="other", block_size=3)])
    m = results[0].measurement
    assert m.equals_ar and m.new_tokens == 12 == m.target_calls + m.accepted_tokens
    assert results[0].text.split() == [target_tok.convert_ids_to_tokens(int(i)) for i in results[0].ids]
    with pytest.raises(ValueError, match="different tokenizer"):
        Decoder(target, target_tok, {"same": tiny_llama(len(target_tok), seed=9)},
                draft_tokenizers={"same": word_tokenizer(list(reversed(words)))})


def test_early_exit_on_a_gpt2_target_is_refused():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    target = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=32, n_embd=16, n_layer=2, n_head=2))
    with pytest.raises(ValueError, match="ignore transformers' assistant_early_exit"):
        Decoder(target, max_new_tokens=4).generate(EarlyExit("e", layer=1), [1, 2, 3])
