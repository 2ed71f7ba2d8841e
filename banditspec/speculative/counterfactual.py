"""Counterfactual acceptance: what a draft would have done, from one teacher-forced pass.

Under greedy decoding a draft's proposals are a deterministic function of the
prefix it drafts from. Once the target's output ``y = (y_0, ..., y_{T-1})`` for a
prompt ``x`` is known, every prefix the target ever verifies is a prefix of
``(x, y)``, so one teacher-forced forward pass of the draft over ``(x, y)``
gives, at every position ``t``,

* ``matches[t] = [argmax_v p_draft(v | x, y_<t) == y_t]`` and
* ``confidence[t] = max_v p_draft(v | x, y_<t)``,

and from these the number of target calls, proposed and accepted tokens of
transformers' assisted generation follow exactly (:func:`simulate_calls`): a
target call at ``n`` generated tokens verifies a block of ``k`` proposals at
positions ``n .. n+k-1``, accepts the leading run of matches ``a`` and adds one
token of its own, so ``n <- n + a + 1``.

An early exit of the target (:class:`~banditspec.speculative.kinds.EarlyExit`) is a draft
like any other: its first ``k`` layers, the final norm and the output head.
A drafter without a model whose proposal is a function of the context alone
(prompt lookup, a corpus lookup) is replayed round by round along ``y``
(:func:`simulate_proposals`).

Floating-point ties between a batched and an incremental forward can flip an
argmax now and then; expect the simulation to agree with a measured decode on
almost every query, not on all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from banditspec.bandits.batching import length_batches, logits_to_keep_supported

__all__ = [
    "SCHEDULES",
    "MatchVector",
    "SimulatedDecode",
    "cut_proposal",
    "draft_matches",
    "draft_matches_batch",
    "match_vector",
    "roc_threshold",
    "simulate_calls",
    "simulate_proposals",
]

#: Draft-length schedules of transformers' assisted generation that a drafting arm may use.
SCHEDULES = ("constant", "heuristic")

@dataclass(frozen=True)
class MatchVector:
    """A draft's teacher-forced behaviour along the target's output.

    Parameters
    ----------
    matches : np.ndarray
        ``bool (T,)``: whether the draft's argmax equals the target's token ``y_t``.
    confidence : np.ndarray
        ``float (T,)``: the draft's largest next-token probability at ``t``.
    """

    matches: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        if self.matches.ndim != 1 or self.matches.dtype != bool:
            raise ValueError(
                f"MatchVector.matches must be a 1-d bool array, got {self.matches.dtype} {self.matches.shape}"
            )
        if self.confidence.shape != self.matches.shape:
            raise ValueError(
                f"MatchVector.confidence must have the shape of matches {self.matches.shape}, "
                f"got {self.confidence.shape}"
            )

    def __len__(self) -> int:
        return int(self.matches.size)


def match_vector(logits: torch.Tensor, output: np.ndarray) -> MatchVector:
    """The match vector of a model's logits ``(len(output), vocab)`` at the positions that predict ``output``."""
    confidence, best = torch.softmax(logits.float(), dim=-1).max(dim=-1)
    return MatchVector(best.cpu().numpy() == output, confidence.cpu().numpy().astype(float))


@dataclass(frozen=True)
class SimulatedDecode:
    """Counts of one simulated assisted decode.

    ``target_calls`` and ``accepted_tokens`` are exact given the match vector.
    ``proposed_tokens`` is exact without a confidence threshold; with one, the
    length of a block that runs past its first rejected position depends on the
    draft's confidence along its own (unseen) continuation, and the count uses
    the confidence along ``y`` there instead (``proposed_exact`` is then False).
    """

    target_calls: int
    proposed_tokens: int
    accepted_tokens: int
    new_tokens: int
    proposed_exact: bool = True


def roc_threshold(outcomes: list[int], probs: list[float]) -> float | None:
    """transformers' threshold update: argmin over the ROC curve of ``fpr + 3 fnr``."""
    if len(probs) <= 5 or not {0, 1}.issubset(outcomes):
        return None
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(outcomes, probs)
    return float(thresholds[int(np.argmin(fpr + 3 * (1 - tpr)))])


def simulate_calls(
    matches: np.ndarray,
    block_size: int,
    *,
    max_new_tokens: int | None = None,
    schedule: str = "constant",
    confidence: np.ndarray | None = None,
    threshold: float | None = None,
    adaptive_threshold: bool = False,
) -> SimulatedDecode:
    """Replay transformers' assisted generation on a match vector.

    At ``n`` tokens generated, the draft proposes ``k = min(g, M - n - 1)``
    tokens (``g`` the current block size, ``M`` = ``max_new_tokens``), fewer if
    the confidence rule stops it: it stops right after the first proposal whose
    confidence is below the threshold. The target accepts the leading run of
    matches ``a <= k`` and adds one token: ``n <- n + a + 1``, one target call.
    A draft that matches ``y`` to its end (an output shorter than ``M`` ends at
    the end-of-sequence token) stops proposing there, and the last round is cut
    at ``T`` as transformers cuts it at end-of-sequence.

    Parameters
    ----------
    matches : np.ndarray
        ``bool (T,)`` match vector of the draft along the target's output.
    block_size : int
        Initial draft block size ``g`` (``num_assistant_tokens``).
    max_new_tokens : int, optional
        The decode's ``max_new_tokens`` ``M``; default ``T`` (the output ended
        at the length limit). Must be ``>= T``.
    schedule : {"constant", "heuristic"}
        "heuristic" mirrors transformers: ``g += 2`` after a round in which all
        ``k`` proposals were accepted, else ``g = max(1, g - 1)``.
    confidence : np.ndarray, optional
        ``float (T,)`` draft confidences; required when ``threshold > 0``.
    threshold : float, optional
        ``assistant_confidence_threshold``; ``None`` or 0 turns the rule off.
    adaptive_threshold : bool, default False
        Update the threshold after every round as transformers does for an
        external draft with the same tokenizer (ROC curve of the kept
        proposals' confidences against acceptance, minimising ``fpr + 3 fnr``).

    Returns
    -------
    SimulatedDecode
        Target calls, proposed, accepted and new tokens. Without a threshold a
        draft that always matches needs ``ceil(T / (g + 1))`` calls (for
        ``M > T``) and one that never matches needs ``T``.
    """
    hits = np.asarray(matches)
    if hits.ndim != 1 or hits.dtype != bool:
        raise ValueError(f"matches must be a 1-d bool array, got {hits.dtype} of shape {hits.shape}")
    total = int(hits.size)
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    limit = total if max_new_tokens is None else int(max_new_tokens)
    if limit < total:
        raise ValueError(f"max_new_tokens must be >= the output length {total}, got {max_new_tokens}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    gate = float(threshold or 0.0)
    if not np.isfinite(gate) or gate < 0:
        raise ValueError(f"threshold must be finite and >= 0, got {threshold!r}")
    conf = None if confidence is None else np.asarray(confidence, dtype=float)
    if gate > 0 and (conf is None or conf.shape != hits.shape):
        got = None if conf is None else conf.shape
        raise ValueError(f"a threshold needs confidence of shape {hits.shape}, got {got}")

    # first position >= t that is not a match (run lengths in O(T))
    next_miss = np.full(total + 1, total, dtype=np.int64)
    for t in range(total - 1, -1, -1):
        next_miss[t] = t if not hits[t] else next_miss[t + 1]

    n = calls = proposed = accepted = 0
    exact = True
    size = int(block_size)
    outcomes: list[int] = []
    probs: list[float] = []
    while n < total:
        cap = max(min(size, limit - n - 1), 0)
        visible = min(cap, total - n)
        lead = min(int(next_miss[n]) - n, visible)
        k = cap
        if gate > 0 and visible:
            low = np.flatnonzero(conf[n : n + visible] < gate)
            k = int(low[0]) + 1 if low.size else cap
        if lead == visible < cap:
            k = min(k, visible)  # the draft proposed the final (end-of-sequence) token and stopped
        # past the first rejected position the draft follows its own continuation, not y
        exact &= gate == 0 or k <= lead + 1
        gain = min(min(lead, k) + 1, total - n)
        kept = gain - 1
        calls += 1
        proposed += k
        accepted += kept
        if adaptive_threshold and gate > 0 and k:
            seen = kept + (1 if k > kept else 0)
            probs.extend(conf[n : n + seen].tolist())
            outcomes.extend([1] * kept + [0] * (seen - kept))
            updated = roc_threshold(outcomes, probs)
            gate = gate if updated is None else updated
        if schedule == "heuristic":
            size = size + 2 if kept == k else max(1, size - 1)
        n += gain
    return SimulatedDecode(calls, proposed, accepted, total, exact)


def cut_proposal(proposal: np.ndarray, eos_token_ids: Collection[int], room: int) -> np.ndarray:
    """A proposal as the target verifies it: none when ``room <= 1`` tokens are left, cut after an end-of-sequence."""
    if room <= 1:
        return proposal[:0]
    ends = np.flatnonzero(np.isin(proposal, list(eos_token_ids))) if len(eos_token_ids) else ()
    return proposal[: ends[0] + 1] if len(ends) else proposal


def simulate_proposals(
    prefix: Sequence[int] | np.ndarray,
    output: Sequence[int] | np.ndarray,
    propose: Callable[[np.ndarray], np.ndarray],
    *,
    max_new_tokens: int | None = None,
    eos_token_ids: Collection[int] = (),
) -> SimulatedDecode:
    """Replay a drafter whose proposal depends on the context alone, along the target's greedy output.

    At ``n`` tokens generated the context is ``(prefix, y_<n)``; the proposal
    ``c = propose(context)`` (passed through :func:`cut_proposal`; not shortened
    near the end otherwise, as in transformers) is verified by one target
    call, which accepts the leading run ``a`` of ``c_i == y_{n+i}`` and adds one
    token: ``n <- n + a + 1``.

    Parameters
    ----------
    prefix : token ids
        What the decoder sees before the output (the prompt; an
        encoder-decoder's start token). Non-empty.
    output : token ids
        The target's new tokens ``y``.
    propose : callable
        ``propose(context) -> token ids``, deterministic.
    max_new_tokens : int, optional
        ``M``; default ``len(y)``.
    eos_token_ids : collection of int
        Proposals are cut after any of these tokens.
    """
    x = np.asarray(prefix, dtype=np.int64)
    y = np.asarray(output, dtype=np.int64)
    if x.ndim != 1 or x.size == 0 or y.ndim != 1:
        raise ValueError("prefix must be a non-empty 1-d id sequence and output a 1-d id sequence")
    total = y.size
    limit = total if max_new_tokens is None else int(max_new_tokens)
    if limit < total:
        raise ValueError(f"max_new_tokens ({limit}) must be >= the output length ({total})")
    sequence = np.concatenate([x, y])
    n = calls = proposed = accepted = 0
    while n < total:
        candidates = cut_proposal(np.asarray(propose(sequence[: x.size + n]), dtype=np.int64), eos_token_ids,
                                  limit - n)
        k = candidates.size
        agree = candidates[: total - n] == y[n : n + k]
        run = agree.size if agree.all() else int(np.argmin(agree))
        run = min(run, total - n - 1)
        calls += 1
        proposed += k
        accepted += run
        n += run + 1
    return SimulatedDecode(calls, proposed, accepted, total)


def _ids(name: str, ids: Sequence[int] | np.ndarray, vocab: int, *, allow_empty: bool) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-d sequence of integer token ids, got {array.dtype} {array.shape}")
    if not allow_empty and array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if array.size and (array.min() < 0 or array.max() >= vocab):
        raise ValueError(
            f"{name} holds ids outside the draft's vocabulary [0, {vocab}); counterfactual acceptance needs "
            "a draft that shares the target's tokenizer"
        )
    return array.astype(np.int64, copy=False)


def _right_padded(seqs: Sequence[np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences right-padded with 0 into one batch, and their attention mask."""
    width = max(s.size for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : seq.size] = torch.from_numpy(np.asarray(seq, dtype=np.int64))
        mask[row, : seq.size] = 1
    return ids.to(device), mask.to(device)


#: Logits one teacher-forced pass holds at most (rows x longest sequence x vocabulary): 1 GiB of float32.
LOGITS_PER_PASS = 2**28


def _bounded_batches(pairs: list[tuple[np.ndarray, np.ndarray]], batch_size: int, vocab: int) -> Iterator[np.ndarray]:
    """Positions of ``pairs`` in batches of similar prompt lengths (:func:`length_batches`): at most
    ``batch_size`` each, and at most :data:`LOGITS_PER_PASS` logits (rows x longest sequence x vocabulary)."""
    for positions in length_batches([x.size for x, _ in pairs], batch_size):
        batch: list[int] = []
        longest = 0
        for i in positions:
            length = pairs[i][0].size + pairs[i][1].size
            if batch and (len(batch) + 1) * max(longest, length) * vocab > LOGITS_PER_PASS:
                yield np.asarray(batch)
                batch, longest = [], 0
            batch.append(int(i))
            longest = max(longest, length)
        if batch:
            yield np.asarray(batch)


def draft_matches_batch(
    draft: torch.nn.Module,
    prompts: Sequence[Sequence[int] | np.ndarray],
    outputs: Sequence[Sequence[int] | np.ndarray],
    *,
    batch_size: int = 8,
) -> list[MatchVector]:
    """Teacher-forced match vectors of one draft on several queries.

    Each sequence ``(x, y_0, ..., y_{T-2})`` is right-padded into a batch of
    queries with prompts of similar lengths; the logits at positions
    ``|x| - 1 .. |x| + T - 2`` predict ``y``. Right padding leaves every real
    position's causal context unchanged. A draft whose forward takes
    ``logits_to_keep`` projects only the positions from the batch's shortest
    prompt's last token on. An encoder-decoder draft encodes ``x`` and reads
    ``(start, y_0, ..., y_{T-2})``. Results are in the queries' order.

    Parameters
    ----------
    draft : transformers causal or encoder-decoder LM
        The draft, sharing the target's tokenizer.
    prompts, outputs : sequences of token-id sequences
        Prompt ids ``x`` (non-empty) and the target's new tokens ``y`` per query.
    batch_size : int, default 8
        Queries per forward pass at most; fewer where their logits would
        exceed :data:`LOGITS_PER_PASS` (a large vocabulary).
    """
    if len(prompts) != len(outputs):
        raise ValueError(f"prompts and outputs must have the same length, got {len(prompts)} and {len(outputs)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    vocab = int(draft.config.get_text_config().vocab_size)
    pairs = [
        (_ids(f"prompts[{i}]", x, vocab, allow_empty=False), _ids(f"outputs[{i}]", y, vocab, allow_empty=True))
        for i, (x, y) in enumerate(zip(prompts, outputs))
    ]
    device = next(draft.parameters()).device
    encoder_decoder = bool(draft.config.is_encoder_decoder)
    start_id = draft.config.decoder_start_token_id if encoder_decoder else None
    keep_logits = not encoder_decoder and logits_to_keep_supported(draft)
    found: dict[int, MatchVector] = {}  # by position in pairs: batches run in length order
    with torch.inference_mode():
        for batch in _bounded_batches(pairs, batch_size, vocab):
            chunk = [pairs[i] for i in batch]
            if encoder_decoder:  # the decoder reads (start, y_0 .. y_{T-2}) next to the encoded prompt
                prompt_ids, prompt_mask = _right_padded([x for x, _ in chunk], device)
                decoder_ids, _ = _right_padded([np.concatenate([[start_id], y[:-1]]) for _, y in chunk], device)
                logits = draft(input_ids=prompt_ids, attention_mask=prompt_mask, decoder_input_ids=decoder_ids).logits
                offsets = [0] * len(chunk)
            else:
                ids, mask = _right_padded([np.concatenate([x, y[:-1]]) if y.size else x for x, y in chunk], device)
                offsets = [x.size - 1 for x, _ in chunk]
                # only the positions from the shortest prompt's last token on predict an output token
                first = min(offsets) if keep_logits else 0
                kept = {"logits_to_keep": ids.shape[1] - first} if keep_logits else {}
                logits = draft(input_ids=ids, attention_mask=mask, **kept).logits
                offsets = [offset - first for offset in offsets]
            for row, (i, (x, y), offset) in enumerate(zip(batch, chunk, offsets)):
                found[i] = match_vector(logits[row, offset : offset + y.size], y)
    return [found[i] for i in range(len(pairs))]


def draft_matches(
    draft: torch.nn.Module, prompt_ids: Sequence[int] | np.ndarray, output_ids: Sequence[int] | np.ndarray
) -> MatchVector:
    """Teacher-forced match vector of ``draft`` along the target's output for one query."""
    return draft_matches_batch(draft, [prompt_ids], [output_ids])[0]
