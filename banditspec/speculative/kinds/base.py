"""The arm-kind protocol: what every way of decoding a query implements once.

A kind is a frozen dataclass derived from :class:`DecodingArm`. Its fields are
its parameters, validated in ``__post_init__`` with errors naming the arm; its
methods say

* which draft models it needs (:meth:`~DecodingArm.draft_models`) and whether
  it can run on the loaded models (:meth:`~DecodingArm.check`);
* how to decode: :meth:`~DecodingArm.candidate_generator` returns a
  transformers ``CandidateGenerator`` (``get_candidates`` /
  ``update_candidate_strategy``) that :mod:`banditspec.speculative.loop`
  verifies with the target, or ``None`` for plain greedy decoding;
* how to simulate its greedy run exactly from the target's output
  (:meth:`~DecodingArm.simulate`), given the teacher-forced
  :class:`~banditspec.speculative.counterfactual.MatchVector` of the model it
  drafts with (:meth:`~DecodingArm.drafter`, :meth:`~DecodingArm.drafting_model`),
  or, for a drafting model made of the target's own first layers, the head
  that reads that vector off the target's hidden states
  (:meth:`~DecodingArm.target_layer_head`);
* how well it aligns with the target offline (:meth:`~DecodingArm.alignment`).

The decoder, the collector and the worlds call these methods and never ask
which class an arm is, so a kind registered through the ``banditspec.arms``
entry points is as capable as a built-in one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from banditspec.bandits.arms import Arm
from banditspec.bandits.env import METRICS
from banditspec.speculative.alignment import alignment_scores
from banditspec.speculative.cache import file_digest
from banditspec.speculative.counterfactual import MatchVector, SimulatedDecode

__all__ = ["DecodeRequest", "DecodingArm", "Models", "TargetLayerHead", "Trace"]


class Models(Protocol):
    """The loaded models an arm decodes with (a :class:`~banditspec.speculative.decoding.Decoder` is one)."""

    target: torch.nn.Module
    tokenizer: Any
    drafts: Mapping[str, torch.nn.Module]
    max_new_tokens: int


@dataclass(frozen=True)
class DecodeRequest:
    """One decode, as a candidate generator needs to know it.

    Attributes
    ----------
    prompt_ids : np.ndarray
        The prompt's token ids (the encoder's input for an encoder-decoder target).
    max_length : int
        Length of the decoder's sequence at which decoding stops.
    eos_token_ids : tuple of int
        Tokens that end the output.
    """

    prompt_ids: np.ndarray
    max_length: int
    eos_token_ids: tuple[int, ...]


@dataclass(frozen=True)
class Trace:
    """The target's greedy run on one query, from which an arm's run is simulated.

    Attributes
    ----------
    prefix : np.ndarray
        What the target's decoder sees before its output: the prompt ids, or
        the decoder start token of an encoder-decoder target.
    output : np.ndarray
        The target's greedy new tokens ``y``.
    max_new_tokens : int
        The decode's limit (``>= len(output)``).
    eos_token_ids : tuple of int
        Tokens that end the output.
    match : MatchVector or None
        The teacher-forced match vector of the arm's drafting model along
        ``y`` (``None`` for an arm without one).
    tokenizer : tokenizer, optional
        The target's tokenizer, for kinds that work on text.
    """

    prefix: np.ndarray
    output: np.ndarray
    max_new_tokens: int
    eos_token_ids: tuple[int, ...] = ()
    match: MatchVector | None = None
    tokenizer: Any = None


@dataclass(frozen=True)
class TargetLayerHead:
    """A drafting model made of the target's first ``layer`` layers and a head on top.

    Its logits at a position are ``logits(h)``, ``h`` the target's hidden
    state after ``layer`` layers there (``hidden_states[layer]`` of a
    transformers forward), so its teacher-forced pass along the target's
    greedy output is read off the states the target's greedy pass computes
    anyway.

    Attributes
    ----------
    layer : int
        Layers of the target the drafting model runs.
    logits : callable
        ``(T, hidden) -> (T, vocab)``.
    """

    layer: int
    logits: Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DecodingArm(Arm):
    """An arm that decodes with a target model: the methods every kind implements.

    The defaults describe a kind that drafts with no model of its own and
    proposes nothing, i.e. plain decoding; a kind overrides what differs.
    """

    kind: ClassVar[str] = "custom"
    #: True for a kind that decodes without speculation: its run *is* the AR reference.
    plain: ClassVar[bool] = False
    #: Fields that name local files: a world config resolves them against its own folder (they must exist).
    path_fields: ClassVar[tuple[str, ...]] = ()

    def fingerprint(self) -> dict[str, Any]:
        """:meth:`describe`, with each file field (:attr:`path_fields`) as its file's name and a digest of its bytes.

        A collection's manifest holds it: resuming is refused when a file's
        contents changed, not when its folder moved (a world config resolves
        file fields to absolute paths).
        """
        described = self.describe()
        for key in self.path_fields:
            path = Path(getattr(self, key))
            described[key] = {"name": path.name, "blake2b": file_digest(path)}
        return described

    def draft_models(self) -> tuple[str, ...]:
        """Keys of the draft models this arm needs loaded (a world loads each once)."""
        return ()

    def drafter(self) -> Hashable | None:
        """Which model drafts for this arm, or ``None``: arms with the same drafter share its teacher-forced pass."""
        return None

    def check(self, models: Models) -> None:
        """Raise ValueError, naming the arm, if it cannot run on ``models``."""
        missing = [key for key in self.draft_models() if key not in models.drafts]
        if missing:
            raise ValueError(f"arm {self.name!r} needs draft {missing[0]!r}; loaded drafts are {sorted(models.drafts)}")

    def drafting_model(self, models: Models) -> AbstractContextManager[torch.nn.Module] | None:
        """The model that drafts for this arm, as a context (a view of the target may need restoring), or None."""
        return None

    def target_layer_head(self, models: Models) -> TargetLayerHead | None:
        """The head that reads this arm's drafting model off the target's hidden states, or None.

        ``None`` (the default): its teacher-forced matches come from a pass of
        its drafting model. A kind that drafts with the target's own first
        layers (an early exit) returns its :class:`TargetLayerHead`: a
        collection then reads the matches off the target's greedy pass.
        """
        return None

    def candidate_generator(self, models: Models, request: DecodeRequest) -> Any | None:
        """A transformers ``CandidateGenerator`` for one decode, or ``None`` to decode greedily without one."""
        return None

    def simulate(self, trace: Trace) -> SimulatedDecode:
        """Target calls, proposed and accepted tokens of this arm's greedy run, from the target's (exact)."""
        raise NotImplementedError(
            f"arm {self.name!r} (kind {self.kind!r}) has no counterfactual simulation; collect it with measure=True"
        )

    def can_simulate(self) -> bool:
        """Whether this kind implements :meth:`simulate` (else it can only be collected measured)."""
        return type(self).simulate is not DecodingArm.simulate

    def alignment(self, trace: Trace, accepted_tokens: int, own_output: np.ndarray | None) -> dict[str, float]:
        """Offline alignment of this arm with the target (:data:`~banditspec.bandits.env.METRICS`, each in [0, 1]).

        ``own_output`` is the drafting model's own greedy output (for arms with
        a drafting model): it is scored against the target's. Without one, the
        share of the target's output the arm drafted correctly
        (``accepted_tokens`` of its simulated or measured run).
        """
        if own_output is not None:
            return alignment_scores(own_output, trace.output)
        return dict.fromkeys(METRICS, accepted_tokens / max(trace.output.size, 1))
