"""Greedy speculative decoding as a ``generate(custom_generate=...)`` callable.

transformers' public extension point for a decoding loop is
``model.generate(..., custom_generate=<callable>)``: ``generate()`` prepares
the inputs, the cache, the logits processors and the stopping criteria (and the
encoder outputs of an encoder-decoder model) and hands them to the callable.
:func:`speculative_generate` is that callable for any candidate generator
(``get_candidates`` / ``update_candidate_strategy``, the shape of transformers'
``CandidateGenerator``)::

    counts = SpeculationCounts()
    output = target.generate(input_ids, max_new_tokens=64, do_sample=False,
                             custom_generate=speculative_generate,
                             candidate_generator=GreedyDraft(draft, block_size=4, max_length=...),
                             speculation_counts=counts)

Each round it asks the generator for candidates, runs the target once over the
tokens not yet in its cache, keeps the leading candidates that equal the
target's greedy choice plus the target's own next token, crops the cache, and
reports the number of matches back to the generator — the verification of
transformers' assisted decoding, so the output equals plain greedy decoding.
The counts (target calls, proposed and accepted tokens) are read off the loop
itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from banditspec.bandits.batching import logits_to_keep_supported
from banditspec.speculative.drafting import cache_argument, eos_token_ids

__all__ = ["SpeculationCounts", "speculative_generate"]


@dataclass
class SpeculationCounts:
    """What one speculative decode did: verification calls of the target, proposed and accepted draft tokens."""

    target_calls: int = 0
    proposed: int = 0
    accepted: int = 0


def speculative_generate(
    model: torch.nn.Module,
    input_ids: torch.LongTensor,
    logits_processor: Any,
    stopping_criteria: Any,
    generation_config: Any,
    candidate_generator: Any = None,
    speculation_counts: SpeculationCounts | None = None,
    **model_kwargs: Any,
) -> torch.LongTensor:
    """Decode greedily with ``candidate_generator``'s proposals verified by ``model`` (batch size 1).

    Parameters
    ----------
    model : transformers causal or encoder-decoder LM
        The target.
    input_ids : torch.LongTensor
        ``(1, L)``: the prompt (decoder-only) or the decoder's start (encoder-decoder).
    logits_processor, stopping_criteria, generation_config
        As ``generate()`` prepared them (greedy only: ``do_sample`` must be False).
    candidate_generator : CandidateGenerator
        Proposes candidates each round.
    speculation_counts : SpeculationCounts, optional
        Filled with this decode's counts.
    **model_kwargs
        What ``generate()`` prepared: the cache (empty, or holding the
        prompt but its last token when ``generate()`` was given
        ``past_key_values``), the attention mask, the encoder outputs.

    Returns
    -------
    torch.LongTensor
        ``input_ids`` followed by the new tokens, as ``generate()`` returns them.
    """
    if candidate_generator is None:
        raise ValueError("speculative_generate needs candidate_generator=")
    if generation_config.do_sample or input_ids.shape[0] != 1:
        raise ValueError("speculative_generate decodes greedily at batch size 1 (do_sample=False, one sequence)")
    counts = speculation_counts if speculation_counts is not None else SpeculationCounts()
    encoder_decoder = bool(model.config.is_encoder_decoder)
    cache_arg = cache_argument(model)
    cache = model_kwargs.get("cache", model_kwargs.get("past_key_values"))
    fixed: dict[str, Any] = {cache_arg: cache, "use_cache": True}
    if encoder_decoder:
        fixed |= {"encoder_outputs": model_kwargs["encoder_outputs"],
                  "attention_mask": model_kwargs.get("attention_mask")}
    keep_logits = logits_to_keep_supported(model)
    eos = set(eos_token_ids(generation_config))
    in_cache = cache.get_seq_length() if cache is not None else 0  # leading tokens of input_ids the cache holds
    while True:
        length = input_ids.shape[1]
        candidates, _ = candidate_generator.get_candidates(input_ids)
        candidates = candidates.to(input_ids.device)
        k = candidates.shape[1] - length
        feed = candidates[:, in_cache:]
        # the vocabulary projection only where the verification reads it (not over the whole prompt)
        keep = {"logits_to_keep": k + 1} if keep_logits else {}
        if encoder_decoder:
            outputs = model(decoder_input_ids=feed, **fixed, **keep)
        else:
            outputs = model(input_ids=feed, attention_mask=torch.ones_like(candidates), **fixed, **keep)
        logits = outputs.logits[:, -k - 1 :].to(torch.float32)
        for i in range(k + 1):
            logits[:, i] = logits_processor(candidates[:, : length + i], logits[:, i])
        chosen = logits.argmax(dim=-1)
        agree = (candidates[0, length:] == chosen[0, :k]).to(torch.int64)
        matches = int(agree.cumprod(0).sum())
        valid = chosen[:, : matches + 1][:, : generation_config.max_length - length]
        ends = [i for i, token in enumerate(valid[0].tolist()) if token in eos]
        valid = valid[:, : ends[0] + 1] if ends else valid
        matches = valid.shape[1] - 1
        input_ids = torch.cat([input_ids, valid], dim=1)
        counts.target_calls += 1
        counts.proposed += k
        counts.accepted += matches
        in_cache = input_ids.shape[1] - 1  # the newest token is fed next round
        surplus = candidates.shape[1] - in_cache
        if surplus > 0:
            cache.crop(-surplus)
        candidate_generator.update_candidate_strategy(input_ids, logits, matches)
        if bool(stopping_criteria(input_ids, None).all()):
            break
    return input_ids
