"""Tiny models, prompts and tokenizers shared by the engine's tests, and what they observe of a target's forwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

from banditspec.speculative.loop import SpeculationCounts, speculative_generate


def tiny_llama(vocab: int, seed: int, layers: int = 2, **overrides: Any) -> LlamaForCausalLM:
    """A random Llama with ``layers`` layers, hidden size 32 and a context of 64 positions, in eval mode."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, bos_token_id=None, eos_token_id=None,
        pad_token_id=None, **overrides,
    )
    return LlamaForCausalLM(config).eval()


def tiny_t5(vocab: int, seed: int) -> T5ForConditionalGeneration:
    """A random two-layer T5 (``d_model`` 32; start and pad token 0, end-of-sequence 1), in eval mode.

    ``initializer_factor=3`` makes its greedy outputs vary with the prompt (at
    T5's default scale a random model repeats one token whatever it reads).
    """
    torch.manual_seed(seed)
    config = T5Config(vocab_size=vocab, d_model=32, d_ff=64, d_kv=8, num_layers=2, num_decoder_layers=2, num_heads=4,
                      decoder_start_token_id=0, eos_token_id=1, pad_token_id=0, initializer_factor=3.0)
    return T5ForConditionalGeneration(config).eval()


def perturbed(model: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with Gaussian noise of standard deviation ``scale`` added to every weight: a draft."""
    copy = type(model)(model.config).eval()
    copy.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in copy.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return copy


def prompts(n: int, seed: int = 0, vocab: int = 100) -> list[np.ndarray]:
    """``n`` random prompts of 3 to 11 token ids below ``vocab``."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=int(rng.integers(3, 12))) for _ in range(n)]


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """A whitespace tokenizer: ``[PAD]`` is 0, ``[UNK]`` 1, then ``words`` in order."""
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    core = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]")


@dataclass
class Forwards:
    """The lengths of the sequences a module was fed, one per forward call.

    A target verifies ``k`` proposals in one forward of the ``k`` tokens and
    the newest accepted one (the first forward: the whole prefix and ``k``),
    so over a decode whose decoder starts from ``prefix`` tokens::

        calls = len(lengths),    proposed = sum(lengths) - prefix - calls + 1
    """

    lengths: list[int] = field(default_factory=list)

    @property
    def calls(self) -> int:
        """Forward calls."""
        return len(self.lengths)

    def proposed(self, prefix: int) -> int:
        """Draft tokens the calls verified, for a decoder that starts from ``prefix`` tokens."""
        return sum(self.lengths) - prefix - self.calls + 1


@contextmanager
def forwards(module: torch.nn.Module) -> Iterator[Forwards]:
    """Record the sequence length of every forward of ``module`` (its first tensor input) within the block."""
    seen = Forwards()

    def record(_: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        for key in ("input_ids", "decoder_input_ids", "hidden_states"):
            if isinstance(kwargs.get(key), torch.Tensor):
                tensors = [kwargs[key]]
                break
        seen.lengths.append(int(tensors[0].shape[1]))

    hook = module.register_forward_pre_hook(record, with_kwargs=True)
    try:
        yield seen
    finally:
        hook.remove()


@contextmanager
def generation_settings(model: torch.nn.Module, **values: Any) -> Iterator[None]:
    """Set fields of ``model.generation_config`` for the block, then restore them (transformers persists some)."""
    config = model.generation_config
    before = {key: getattr(config, key) for key in values}
    for key, value in values.items():
        setattr(config, key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            setattr(config, key, value)


def generate_ids(model: torch.nn.Module, prompt: np.ndarray, max_new_tokens: int, **kwargs: Any) -> np.ndarray:
    """The new token ids of transformers' own greedy ``generate()`` (``kwargs``: ``assistant_model=``, ...).

    An encoder-decoder model's output leaves out the decoder's start token.
    """
    ids = torch.from_numpy(np.asarray(prompt, dtype=np.int64))[None]
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, num_beams=1, **kwargs)
    return out[0, 1 if model.config.is_encoder_decoder else ids.shape[1] :].numpy()


def speculate(model: torch.nn.Module, prompt: np.ndarray, generator: Any, max_new_tokens: int,
              **kwargs: Any) -> tuple[np.ndarray, SpeculationCounts]:
    """New token ids and counts of ``generate(custom_generate=speculative_generate)`` with ``generator``."""
    counts = SpeculationCounts()
    ids = generate_ids(model, prompt, max_new_tokens, custom_generate=speculative_generate,
                       candidate_generator=generator, speculation_counts=counts, **kwargs)
    return ids, counts
