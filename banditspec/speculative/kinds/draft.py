"""The ``draft`` kind: speculative decoding with an external draft model that shares the target's tokenizer."""

from __future__ import annotations

from collections.abc import Hashable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import ClassVar

import torch

from banditspec.speculative.counterfactual import SCHEDULES, SimulatedDecode, simulate_calls
from banditspec.speculative.drafting import GreedyDraft, context_length
from banditspec.bandits.validation import check_integer, check_real
from banditspec.speculative.kinds.base import DecodeRequest, DecodingArm, Models, Trace

__all__ = ["DraftModel"]


@dataclass(frozen=True)
class DraftModel(DecodingArm):
    """Speculative decoding with an external draft model.

    Parameters
    ----------
    model : str
        Key of the draft among the loaded drafts (in a world config: its hub id or path).
    block_size : int, default 5
        Draft tokens proposed per target call (the first round's, under "heuristic").
    schedule : {"constant", "heuristic"}, default "constant"
        transformers' draft-length schedule: "heuristic" adds two tokens after
        a round whose every proposal was accepted and removes one (down to one)
        after any other round, starting again from ``block_size`` every query.
    confidence_threshold : float, default 0.0
        transformers' ``assistant_confidence_threshold``: a round stops right
        after a proposal whose draft probability is below it, and the
        threshold then adapts as transformers adapts it. 0 turns it off.
    """

    kind: ClassVar[str] = "draft"

    model: str = ""
    block_size: int = 5
    schedule: str = "constant"
    confidence_threshold: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"DraftModel.model must name a draft (a non-empty string), got {self.model!r} "
                             f"for arm {self.name!r}")
        check_integer(f"DraftModel.block_size of arm {self.name!r}", self.block_size, low=1)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"DraftModel.schedule must be one of {SCHEDULES}, got {self.schedule!r} "
                             f"for arm {self.name!r}")
        check_real(f"DraftModel.confidence_threshold of arm {self.name!r}", self.confidence_threshold, 0.0, 1.0)

    def draft_models(self) -> tuple[str, ...]:
        """The draft this arm decodes with."""
        return (self.model,)

    def drafter(self) -> Hashable:
        """Arms with the same draft share its teacher-forced pass."""
        return ("draft", self.model)

    def check(self, models: Models) -> None:
        """The draft must be loaded and be encoder-decoder exactly when the target is."""
        super().check(models)
        draft, target = models.drafts[self.model], models.target
        if draft.config.is_encoder_decoder != target.config.is_encoder_decoder:
            shape = "an encoder-decoder" if target.config.is_encoder_decoder else "a decoder-only"
            raise ValueError(f"arm {self.name!r}: draft {self.model!r} must be {shape} model like the target")

    def drafting_model(self, models: Models) -> AbstractContextManager[torch.nn.Module]:
        """The draft itself."""
        return nullcontext(models.drafts[self.model])

    def candidate_generator(self, models: Models, request: DecodeRequest) -> GreedyDraft:
        """A :class:`~banditspec.speculative.drafting.GreedyDraft` of the draft at this arm's settings."""
        draft = models.drafts[self.model]
        encoder_decoder = bool(draft.config.is_encoder_decoder)
        context = context_length(draft)
        needed = request.max_length if not encoder_decoder else request.prompt_ids.size
        if context is not None and needed > context:
            raise ValueError(f"arm {self.name!r}: the decode needs {needed} positions but draft {self.model!r} "
                             f"has a context of {context}")
        return GreedyDraft(draft, block_size=self.block_size, max_length=request.max_length,
                           eos_token_ids=request.eos_token_ids, schedule=self.schedule,
                           confidence_threshold=self.confidence_threshold,
                           encoder_input_ids=request.prompt_ids if encoder_decoder else None)

    def simulate(self, trace: Trace) -> SimulatedDecode:
        """:func:`~banditspec.speculative.counterfactual.simulate_calls` on the draft's match vector."""
        if trace.match is None:
            raise ValueError(f"arm {self.name!r}: simulating a draft needs its match vector along the output")
        return simulate_calls(trace.match.matches, self.block_size, max_new_tokens=trace.max_new_tokens,
                              schedule=self.schedule, confidence=trace.match.confidence,
                              threshold=self.confidence_threshold, adaptive_threshold=self.confidence_threshold > 0)
