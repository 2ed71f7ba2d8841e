"""Kinds that draft with no model: the proposal is a function of the context alone.

Such a kind implements :meth:`ProposalArm.proposer` only; it decodes through
:class:`~banditspec.speculative.drafting.ProposalDraft` and, once the
target's greedy output is known, replays exactly through
:func:`~banditspec.speculative.counterfactual.simulate_proposals`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from banditspec.speculative.counterfactual import SimulatedDecode, simulate_proposals
from banditspec.speculative.drafting import ProposalDraft
from banditspec.speculative.kinds.base import DecodeRequest, DecodingArm, Models, Trace

__all__ = ["ProposalArm"]


@dataclass(frozen=True)
class ProposalArm(DecodingArm):
    """An arm whose every round proposes ``proposer(eos_token_ids)(context)``."""

    def proposer(self, eos_token_ids: Collection[int]) -> Callable[[np.ndarray], np.ndarray]:
        """``context -> proposed token ids``, deterministic, for a decode that ends at ``eos_token_ids``."""
        raise NotImplementedError(f"arm kind {self.kind!r} must say what it proposes (proposer)")

    def candidate_generator(self, models: Models, request: DecodeRequest) -> ProposalDraft:
        """Propose from the context at every round."""
        return ProposalDraft(self.proposer(request.eos_token_ids), max_length=request.max_length,
                             eos_token_ids=request.eos_token_ids)

    def simulate(self, trace: Trace) -> SimulatedDecode:
        """Every round replayed along the target's output (exact)."""
        return simulate_proposals(trace.prefix, trace.output, self.proposer(trace.eos_token_ids),
                                  max_new_tokens=trace.max_new_tokens, eos_token_ids=trace.eos_token_ids)
