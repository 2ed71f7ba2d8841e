"""Lean greedy drafting for transformers' assisted generation.

transformers' ``AssistedCandidateGenerator`` drafts each round with a full
``assistant_model.generate()`` call: configuration copies, logits processors
and stopping criteria around every draft token. With small models on a CPU
that machinery, not the draft's arithmetic, is most of a round; it inflates
the cost ratio ``c`` = draft step / target step and hides speed-ups that a
serving system would see.

:class:`GreedyDraft` is a ``CandidateGenerator`` that proposes the same tokens
with a plain loop: one cached forward of the draft per token, argmax. It keeps
the draft's key/value cache across rounds and crops it to the prefix that is
still valid after the target's verification, as transformers does. The target's
own assisted-decoding loop (verification, acceptance, cache cropping) is
unchanged. It serves drafts that share the target's vocabulary, at a constant
block size or with transformers' "heuristic" schedule (two more tokens after a
round whose every proposal was accepted, one fewer, down to one, after any
other round); the decoder uses transformers' generator for everything else.

The draft may be a view of another model: ``view`` wraps each round's draft
forwards. An early exit drafts with the target itself inside
:func:`~banditspec.speculative.early_exit.early_exit`, the truncation that
transformers' ``EarlyExitCandidateGenerator`` applies around its per-round
``generate()``; it is active only while the round drafts, so the target's
verification forward, which follows ``get_candidates``, sees every layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from transformers import DynamicCache
from transformers.generation.candidate_generator import CandidateGenerator

from banditspec.speculative.kinds import SCHEDULES

__all__ = ["GreedyDraft"]


class GreedyDraft(CandidateGenerator):
    """Propose up to ``block_size`` greedy draft tokens per round.

    Parameters
    ----------
    draft : transformers causal LM
        The model that drafts (same vocabulary as the target): a draft, or the
        target itself under an early-exit ``view``.
    block_size : int
        Draft tokens in the first round (in every round with
        ``schedule="constant"``). Under ``"heuristic"`` the attribute
        ``block_size`` then changes round by round.
    max_length : int
        Length (prompt + new tokens) at which the target stops; a round never
        proposes past ``max_length - 1``, as transformers' generator does.
    eos_token_ids : collection of int, optional
        A proposal ends after any of these tokens.
    view : callable returning a context manager, optional
        Entered around every round's draft forwards (and the cache's
        creation), e.g. ``functools.partial(early_exit, target, k)`` to draft
        with the target's first ``k`` layers; it must restore the model on
        exit. Default: the model as it is.
    schedule : {"constant", "heuristic"}, default "constant"
        How the block size changes between rounds, as transformers'
        ``num_assistant_tokens_schedule``: "heuristic" adds two tokens after a
        round whose every proposal was accepted and removes one (down to one)
        after any other round. A new generator, i.e. every ``generate()``
        call, starts again from ``block_size``.
    """

    def __init__(self, draft: torch.nn.Module, *, block_size: int, max_length: int,
                 eos_token_ids: Collection[int] = (),
                 view: Callable[[], AbstractContextManager[Any]] = nullcontext,
                 schedule: str = "constant") -> None:
        if not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.schedule = schedule
        self.draft = draft
        self.block_size = block_size
        self.max_length = max_length
        self.eos_token_ids = frozenset(int(t) for t in eos_token_ids)
        self.view = view
        with view():  # a cache shaped for the model as it drafts
            self._cache = DynamicCache(config=draft.config)
        # transformers renamed ``past_key_values`` to ``cache`` (5.x); use what this model's forward takes
        self._cache_arg = "cache" if "cache" in inspect.signature(draft.forward).parameters else "past_key_values"
        self._cached_ids = torch.empty((1, 0), dtype=torch.long)

    def _valid_prefix(self, input_ids: torch.Tensor) -> int:
        """Length of the common prefix of the cached tokens and ``input_ids`` (at most ``len(input_ids) - 1``)."""
        n = min(self._cached_ids.shape[1], input_ids.shape[1] - 1)
        same = (self._cached_ids[0, :n] == input_ids[0, :n]).to(torch.int8)
        return int(same.cumprod(0).sum())

    def get_candidates(self, input_ids: torch.LongTensor, **kwargs: object) -> tuple[torch.LongTensor, None]:
        """``input_ids`` followed by the draft's greedy proposal; no logits (greedy verification needs none)."""
        if input_ids.shape[0] != 1:
            raise ValueError(f"GreedyDraft drafts for batch size 1, got {input_ids.shape[0]} sequences")
        n_new = min(self.block_size, self.max_length - input_ids.shape[1] - 1)
        if n_new <= 0:
            return input_ids, None
        keep = self._valid_prefix(input_ids)
        stale = self._cache.get_seq_length() - keep
        if stale > 0:
            self._cache.crop(-stale)
        feed = input_ids[:, keep:]
        proposal = []
        with self.view():
            for _ in range(n_new):
                step = {self._cache_arg: self._cache}
                logits = self.draft(input_ids=feed, use_cache=True, logits_to_keep=1, **step).logits
                token = logits[:, -1].argmax(-1, keepdim=True)
                proposal.append(token)
                if int(token) in self.eos_token_ids:
                    break
                feed = token
        candidates = torch.cat([input_ids, *proposal], dim=1)
        self._cached_ids = candidates[:, :-1]
        return candidates, None

    def update_candidate_strategy(self, input_ids: torch.LongTensor, scores: torch.Tensor, num_matches: int) -> None:
        """Adapt the block size after a round, as transformers' "heuristic" schedule does.

        ``scores`` holds the target's logits at every proposed position and
        one more, so ``scores.shape[1] - 1`` tokens were proposed.
        """
        if self.schedule == "heuristic":
            proposed = scores.shape[1] - 1
            self.block_size = self.block_size + 2 if num_matches == proposed else max(1, self.block_size - 1)
