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
like any other: its first ``k`` layers, the final norm and the output head,
which is what transformers' ``EarlyExitCandidateGenerator`` runs when it sets
the base model's ``config.num_hidden_layers`` to ``k`` while drafting.
:func:`~banditspec.speculative.early_exit.early_exit` gives that truncated view for a
teacher-forced pass.

Floating-point ties between a batched and an incremental forward can flip an
argmax now and then; expect the simulation to agree with a measured decode on
almost every query, not on all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from banditspec.speculative.kinds import SCHEDULES, DraftModel, EarlyExit

__all__ = [
    "MatchVector",
    "SimulatedDecode",
    "confidence_threshold",
    "draft_matches",
    "draft_matches_batch",
    "simulate_arm",
    "simulate_calls",
]

#: Key of ``DraftModel.settings`` holding transformers' ``assistant_confidence_threshold`` (0 = off).
THRESHOLD_SETTING = "confidence_threshold"

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


def _roc_threshold(outcomes: list[int], probs: list[float]) -> float | None:
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
            updated = _roc_threshold(outcomes, probs)
            gate = gate if updated is None else updated
        if schedule == "heuristic":
            size = size + 2 if kept == k else max(1, size - 1)
        n += gain
    return SimulatedDecode(calls, proposed, accepted, total, exact)


def confidence_threshold(arm: DraftModel) -> float:
    """The arm's ``assistant_confidence_threshold`` (``settings["confidence_threshold"]``, default 0 = off)."""
    value = float(arm.settings.get(THRESHOLD_SETTING, 0.0))
    if not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"DraftModel.settings[{THRESHOLD_SETTING!r}] must be in [0, 1], got {value!r} (arm {arm.name!r})"
        )
    return value


def simulate_arm(
    arm: DraftModel | EarlyExit, match: MatchVector, *, max_new_tokens: int | None = None
) -> SimulatedDecode:
    """:func:`simulate_calls` with a drafting arm's block size, schedule and threshold.

    A draft's positive threshold adapts as transformers adapts it for an
    external draft. An early exit drafts at its constant block size with the
    threshold off, as :class:`~banditspec.speculative.decoding.Decoder` runs it.
    """
    if isinstance(arm, EarlyExit):
        return simulate_calls(match.matches, arm.block_size, max_new_tokens=max_new_tokens)
    if not isinstance(arm, DraftModel):
        raise ValueError(
            f"simulate_arm needs a DraftModel or EarlyExit arm, got {type(arm).__name__} ({arm.name!r})"
        )
    gate = confidence_threshold(arm)
    return simulate_calls(
        match.matches,
        arm.block_size,
        max_new_tokens=max_new_tokens,
        schedule=arm.schedule,
        confidence=match.confidence,
        threshold=gate,
        adaptive_threshold=gate > 0,
    )


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


def draft_matches_batch(
    draft: torch.nn.Module,
    prompts: Sequence[Sequence[int] | np.ndarray],
    outputs: Sequence[Sequence[int] | np.ndarray],
    *,
    batch_size: int = 8,
) -> list[MatchVector]:
    """Teacher-forced match vectors of one draft on several queries.

    Each sequence ``(x, y_0, ..., y_{T-2})`` is right-padded into a batch; the
    logits at positions ``|x| - 1 .. |x| + T - 2`` predict ``y``. Right padding
    leaves every real position's causal context unchanged.

    Parameters
    ----------
    draft : transformers causal LM
        The draft, sharing the target's tokenizer.
    prompts, outputs : sequences of token-id sequences
        Prompt ids ``x`` (non-empty) and the target's new tokens ``y`` per query.
    batch_size : int, default 8
        Queries per forward pass.
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
    results: list[MatchVector] = []
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            seqs = [np.concatenate([x, y[:-1]]) if y.size else x for x, y in chunk]
            width = max(s.size for s in seqs)
            ids = torch.zeros((len(seqs), width), dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for row, seq in enumerate(seqs):
                ids[row, : seq.size] = torch.from_numpy(seq)
                mask[row, : seq.size] = 1
            logits = draft(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            probs = torch.softmax(logits, dim=-1)
            conf, best = probs.max(dim=-1)
            for row, (x, y) in enumerate(chunk):
                span = slice(x.size - 1, x.size - 1 + y.size)
                predicted = best[row, span].cpu().numpy()
                results.append(MatchVector(predicted == y, conf[row, span].cpu().numpy().astype(float)))
    return results


def draft_matches(
    draft: torch.nn.Module, prompt_ids: Sequence[int] | np.ndarray, output_ids: Sequence[int] | np.ndarray
) -> MatchVector:
    """Teacher-forced match vector of ``draft`` along the target's output for one query."""
    return draft_matches_batch(draft, [prompt_ids], [output_ids])[0]
