"""Candidate generators: greedy drafting with a model, and drafting from the context alone.

Both are transformers ``CandidateGenerator`` objects (``get_candidates`` /
``update_candidate_strategy``) that :mod:`banditspec.speculative.loop` verifies
with the target.

:class:`GreedyDraft` proposes what transformers' ``AssistedCandidateGenerator``
would, with a plain loop: one cached forward of the draft per token, argmax
(transformers drafts each round with a full ``generate()`` call, whose
machinery, not the draft's arithmetic, is most of a round for small models on
a CPU). It keeps the draft's key/value cache across rounds and crops it to the
prefix still valid after verification. It follows transformers' draft-length
rules: a constant block, or the "heuristic" schedule (two more tokens after a
round whose every proposal was accepted, one fewer, down to one, after any
other round), and the confidence threshold (a round stops right after a
proposal the draft is less sure of than the threshold; the threshold adapts
after every round on the ROC curve of past proposals).

The draft may be a view of another model: ``view`` wraps each round's draft
forwards. An early exit drafts with the target itself inside
:func:`~banditspec.speculative.kinds.early_exit.early_exit`, active only while
the round drafts, so the target's verification sees every layer.

:class:`ProposalDraft` wraps a function of the context (prompt lookup, a
corpus lookup): whatever it returns is proposed, cut as
:func:`~banditspec.speculative.counterfactual.cut_proposal` says.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.generation import CandidateGenerator

from banditspec.bandits.batching import logits_to_keep_supported
from banditspec.bandits.validation import check_integer
from banditspec.speculative.counterfactual import SCHEDULES, cut_proposal, roc_threshold

__all__ = ["GreedyDraft", "ProposalDraft", "cache_argument", "context_length", "eos_token_ids"]


def cache_argument(model: torch.nn.Module) -> str:
    """The keyword ``model.forward`` takes its key/value cache by (transformers renamed it to ``cache`` in 5.x)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def eos_token_ids(generation_config: Any) -> tuple[int, ...]:
    """The end-of-sequence ids of a generation config (none, one or several)."""
    eos = generation_config.eos_token_id
    return () if eos is None else (int(eos),) if isinstance(eos, int) else tuple(int(t) for t in eos)


def context_length(model: torch.nn.Module) -> int | None:
    """The model's context (maximum positions), or None where its config has no limit."""
    config = model.config.get_text_config()
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return None if value is None else int(value)


class GreedyDraft(CandidateGenerator):
    """Propose up to ``block_size`` greedy draft tokens per round.

    Parameters
    ----------
    draft : transformers causal or encoder-decoder LM
        The model that drafts (the target's vocabulary): a draft, or the target
        itself under an early-exit ``view``.
    block_size : int
        Draft tokens in the first round (in every round with
        ``schedule="constant"``). Under ``"heuristic"`` the attribute
        ``block_size`` then changes round by round.
    max_length : int
        Length of the decoder's sequence at which the target stops; a round
        never proposes past ``max_length - 1``, as transformers' generator does.
    eos_token_ids : collection of int, optional
        A proposal ends after any of these tokens.
    view : callable returning a context manager, optional
        Entered around every round's draft forwards (and the cache's
        creation); it must restore the model on exit. Default: the model as it is.
    schedule : {"constant", "heuristic"}, default "constant"
        How the block size changes between rounds (transformers'
        ``num_assistant_tokens_schedule``); every new generator starts again
        from ``block_size``.
    confidence_threshold : float, default 0.0
        transformers' ``assistant_confidence_threshold`` (0 turns it off).
    encoder_input_ids : np.ndarray, optional
        The prompt, for an encoder-decoder draft (encoded once).
    """

    def __init__(self, draft: torch.nn.Module, *, block_size: int, max_length: int,
                 eos_token_ids: Collection[int] = (),
                 view: Callable[[], AbstractContextManager[Any]] = nullcontext,
                 schedule: str = "constant", confidence_threshold: float = 0.0,
                 encoder_input_ids: np.ndarray | None = None) -> None:
        check_integer("block_size", block_size, low=1)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.draft = draft
        self.block_size = block_size
        self.max_length = max_length
        self.eos_token_ids = frozenset(int(t) for t in eos_token_ids)
        self.view = view
        self.schedule = schedule
        self.confidence_threshold = float(confidence_threshold)
        self._round_confidence: list[float] = []
        self._seen_confidence: list[float] = []
        self._seen_outcomes: list[int] = []
        self._inputs: dict[str, Any] = {}
        with view():  # a cache shaped for the model as it drafts
            if encoder_input_ids is None:
                self._cache: Any = DynamicCache(config=draft.config)
            else:
                self._cache = EncoderDecoderCache(DynamicCache(config=draft.config), DynamicCache(config=draft.config))
                prompt = torch.as_tensor(np.asarray(encoder_input_ids, dtype=np.int64))[None].to(draft.device)
                with torch.inference_mode():
                    self._inputs["encoder_outputs"] = draft.get_encoder()(input_ids=prompt)
        self._cache_arg = cache_argument(draft)
        if logits_to_keep_supported(draft):
            self._inputs["logits_to_keep"] = 1
        self._ids_arg = "decoder_input_ids" if encoder_input_ids is not None else "input_ids"
        self._cached_ids = torch.empty((1, 0), dtype=torch.long, device=draft.device)

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
        self._round_confidence = []
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
                logits = self.draft(**{self._ids_arg: feed, self._cache_arg: self._cache}, use_cache=True,
                                    **self._inputs).logits
                probability, token = torch.softmax(logits[:, -1].float(), dim=-1).max(dim=-1, keepdim=True)
                proposal.append(token)
                self._round_confidence.append(float(probability))
                if int(token) in self.eos_token_ids or float(probability) < self.confidence_threshold:
                    break
                feed = token
        candidates = torch.cat([input_ids, *proposal], dim=1)
        self._cached_ids = candidates[:, :-1]
        return candidates, None

    def update_candidate_strategy(self, input_ids: torch.LongTensor, scores: torch.Tensor, num_matches: int) -> None:
        """Adapt the block size and the confidence threshold after a round, as transformers does.

        ``scores`` holds the target's logits at every proposed position and
        one more, so ``scores.shape[1] - 1`` tokens were proposed.
        """
        proposed = scores.shape[1] - 1
        if self.schedule == "heuristic":
            self.block_size = self.block_size + 2 if num_matches == proposed else max(1, self.block_size - 1)
        if self.confidence_threshold > 0 and proposed:
            seen = num_matches + (1 if proposed > num_matches else 0)
            self._seen_confidence += self._round_confidence[:seen]
            self._seen_outcomes += [1] * num_matches + [0] * (seen - num_matches)
            updated = roc_threshold(self._seen_outcomes, self._seen_confidence)
            self.confidence_threshold = self.confidence_threshold if updated is None else updated


class ProposalDraft(CandidateGenerator):
    """Propose whatever a function of the context returns (no model).

    Parameters
    ----------
    propose : callable
        ``propose(context) -> token ids``: the decoder's ids so far (1-d
        ``np.int64``) to the proposed continuation, deterministic.
    max_length : int
        Length of the decoder's sequence at which the target stops.
    eos_token_ids : collection of int, optional
        A proposal ends after any of these tokens.
    """

    def __init__(self, propose: Callable[[np.ndarray], np.ndarray], *, max_length: int,
                 eos_token_ids: Collection[int] = ()) -> None:
        self.propose = propose
        self.max_length = max_length
        self.eos_token_ids = tuple(int(t) for t in eos_token_ids)

    def get_candidates(self, input_ids: torch.LongTensor, **kwargs: object) -> tuple[torch.LongTensor, None]:
        """``input_ids`` followed by the proposal for them."""
        context = input_ids[0].cpu().numpy()
        proposal = np.asarray(self.propose(context), dtype=np.int64)
        proposal = cut_proposal(proposal, self.eos_token_ids, self.max_length - input_ids.shape[1])
        tail = torch.from_numpy(proposal)[None].to(input_ids.device)
        return torch.cat([input_ids, tail], dim=1), None

    def update_candidate_strategy(self, input_ids: torch.LongTensor, scores: torch.Tensor, num_matches: int) -> None:
        """Nothing to adapt: the proposal depends on the context alone."""
