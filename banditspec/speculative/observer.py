"""Instruments for one ``generate()`` call: counting target calls and draft tokens, scoped settings.

:class:`GenerateObserver` counts the target's forward calls (a forward hook
that ignores calls made while drafting, so a draft that *is* the target is not
counted twice) and the proposed and accepted draft tokens, read from
transformers' candidate generator: the candidate length of every
``get_candidates`` and the ``num_matches`` of every
``update_candidate_strategy``. :func:`generation_settings` sets fields of a
model's generation config for one call and restores them after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["GenerateObserver", "generation_settings"]


class GenerateObserver:
    """Counts target forward calls and draft proposals/acceptances during one ``generate()``.

    Use as a context manager around the call. A forward hook on the target
    counts calls outside drafting; the target's ``_get_candidate_generator`` is
    shadowed for the duration so that the candidate generator it returns
    reports every round. Both are removed on exit.

    Parameters
    ----------
    target : transformers causal LM
        The model whose ``generate()`` is observed.
    drafter : callable, optional
        Builds the candidate generator instead of transformers (same keyword
        arguments as ``_get_candidate_generator``), e.g. a lean drafter.

    Attributes
    ----------
    target_calls : int
        Forward calls of the target, not counting those made while drafting.
    proposed : int
        Draft tokens proposed, summed over the rounds.
    accepted : int
        Draft tokens the target accepted, summed over the rounds.
    """

    def __init__(self, target: torch.nn.Module, drafter: Callable[..., Any] | None = None) -> None:
        self.target = target
        self.drafter = drafter
        self.target_calls = 0
        self.proposed = 0
        self.accepted = 0
        self._drafting = False

    def _on_forward(self, *_: Any) -> None:
        if not self._drafting:
            self.target_calls += 1

    def _observe(self, generator: Any) -> Any:
        get_candidates, update = generator.get_candidates, generator.update_candidate_strategy

        def observed_get_candidates(input_ids: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            self._drafting = True
            try:
                candidates, logits = get_candidates(input_ids, *args, **kwargs)
            finally:
                self._drafting = False
            self.proposed += int(candidates.shape[1] - input_ids.shape[1])
            return candidates, logits

        def observed_update(input_ids: torch.Tensor, scores: torch.Tensor, num_matches: int) -> Any:
            self.accepted += int(num_matches)
            return update(input_ids, scores, num_matches)

        generator.get_candidates = observed_get_candidates
        generator.update_candidate_strategy = observed_update
        return generator

    def __enter__(self) -> GenerateObserver:
        build = self.drafter or self.target._get_candidate_generator
        self.target._get_candidate_generator = lambda *a, **k: self._observe(build(*a, **k))
        self._hook = self.target.register_forward_hook(self._on_forward)
        return self

    def __exit__(self, *_: Any) -> None:
        self._hook.remove()
        del self.target._get_candidate_generator


@contextmanager
def generation_settings(model: torch.nn.Module, **values: Any) -> Iterator[None]:
    """Set fields of ``model.generation_config`` for one call and restore them after."""
    config = model.generation_config
    saved = {key: getattr(config, key, None) for key in values}
    for key, value in values.items():
        setattr(config, key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(config, key, value)
