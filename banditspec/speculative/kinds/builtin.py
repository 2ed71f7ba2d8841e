"""The arms that decode with a target model: AR, a draft model, prompt lookup and an early exit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from banditspec.bandits.arms import Arm

__all__ = ["SCHEDULES", "Autoregressive", "DraftModel", "EarlyExit", "PromptLookup"]

#: Draft-length schedules of transformers' assisted generation that a drafting arm may use.
SCHEDULES = ("constant", "heuristic")


@dataclass(frozen=True)
class Autoregressive(Arm):
    """Plain greedy decoding by the target alone (the reference for speed-ups)."""

    kind: ClassVar[str] = "ar"


@dataclass(frozen=True)
class DraftModel(Arm):
    """Speculative decoding with an external draft (assistant) model.

    Parameters
    ----------
    model : str
        Hub id or local path of the draft, or a key the environment resolves.
    block_size : int, default 5
        Draft tokens proposed per target call (``num_assistant_tokens``).
    schedule : {"constant", "heuristic"}, default "constant"
        transformers' draft-length schedule; "constant" keeps ``block_size``.
    """

    kind: ClassVar[str] = "draft"

    model: str = ""
    block_size: int = 5
    schedule: str = "constant"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.block_size < 1:
            raise ValueError(f"DraftModel.block_size must be >= 1, got {self.block_size} for arm {self.name!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"DraftModel.schedule must be one of {SCHEDULES}, got {self.schedule!r} for arm {self.name!r}"
            )


@dataclass(frozen=True)
class PromptLookup(Arm):
    """Prompt-lookup decoding: drafts are n-gram continuations copied from the prompt.

    Parameters
    ----------
    num_tokens : int, default 10
        Tokens copied per lookup (``prompt_lookup_num_tokens``).
    max_ngram : int, default 2
        Longest n-gram matched (``max_matching_ngram_size``).
    """

    kind: ClassVar[str] = "prompt_lookup"

    num_tokens: int = 10
    max_ngram: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_tokens < 1 or self.max_ngram < 1:
            raise ValueError(f"PromptLookup.num_tokens and max_ngram must be >= 1 for arm {self.name!r}")


@dataclass(frozen=True)
class EarlyExit(Arm):
    """Self-drafting: the target's first ``layer`` layers draft for the whole target.

    Parameters
    ----------
    layer : int
        Exit layer (``assistant_early_exit``), at least 1.
    block_size : int, default 5
        Draft tokens proposed per target call.
    """

    kind: ClassVar[str] = "early_exit"

    layer: int = 1
    block_size: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer < 1 or self.block_size < 1:
            raise ValueError(f"EarlyExit.layer and block_size must be >= 1 for arm {self.name!r}")
