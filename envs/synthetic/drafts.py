"""The synthetic world's drafting strategies and the speculative-decoding cost model.

A :class:`DraftSpec` describes one strategy (a draft model, prompt lookup or an
early exit): its cost ratio ``c`` and its mean per-token acceptance rate on
each domain. :func:`speedup_factor` is the expected speed-up over AR of a
strategy at block size ``g`` (Leviathan et al., 2023), and :func:`make_arm`
turns a strategy at one block size into a :mod:`banditspec.speculative.kinds` arm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from banditspec.bandits.arms import Arm
from banditspec.speculative.kinds import DraftModel, EarlyExit, PromptLookup

__all__ = ["DEFAULT_DOMAINS", "DraftSpec", "default_drafts", "make_arm", "speedup_factor"]

DEFAULT_DOMAINS: tuple[str, ...] = ("translation", "summarization", "code", "math")
_KINDS = ("draft", "prompt_lookup", "early_exit")


@dataclass(frozen=True)
class DraftSpec:
    """One drafting strategy of the synthetic world.

    Parameters
    ----------
    name : str
        Arm name (suffixed ``/g<block size>`` when the world uses several block sizes).
    cost_ratio : float
        ``c`` = one draft step / one target step, ``>= 0``; also the arm's cost hint.
    acceptance : Mapping[str, float]
        Mean per-token acceptance rate on each listed domain, in (0, 1).
    default_acceptance : float, default 0.2
        Mean acceptance rate on the domains not listed, in (0, 1).
    kind : {"draft", "prompt_lookup", "early_exit"}, default "draft"
        The :mod:`banditspec.speculative.kinds` kind of the arms built from this strategy.
    block_sizes : tuple[int, ...] or None, default None
        Block sizes ``g`` of this strategy's arms; ``None`` uses the world's.
    """

    name: str
    cost_ratio: float
    acceptance: Mapping[str, float] = field(default_factory=dict)
    default_acceptance: float = 0.2
    kind: str = "draft"
    block_sizes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"DraftSpec.name must be a non-empty string, got {self.name!r}")
        if not np.isfinite(self.cost_ratio) or self.cost_ratio < 0:
            raise ValueError(f"DraftSpec.cost_ratio must be finite and >= 0, got {self.cost_ratio!r} ({self.name})")
        rates = [self.default_acceptance, *self.acceptance.values()]
        if not all(0.0 < float(r) < 1.0 for r in rates):
            raise ValueError(f"DraftSpec acceptance rates must lie in (0, 1), got {rates} ({self.name})")
        if self.kind not in _KINDS:
            raise ValueError(f"DraftSpec.kind must be one of {_KINDS}, got {self.kind!r} ({self.name})")
        if self.block_sizes is not None and (not self.block_sizes or min(self.block_sizes) < 1):
            raise ValueError(f"DraftSpec.block_sizes must be non-empty integers >= 1, got {self.block_sizes!r}")

    def mean_acceptance(self, domain: str) -> float:
        """Mean acceptance rate ``m[d, s]`` on ``domain``."""
        return float(self.acceptance.get(domain, self.default_acceptance))


def default_drafts(domains: Sequence[str] = DEFAULT_DOMAINS) -> tuple[DraftSpec, ...]:
    """The paper-like strategies: one expert per domain, a generalist, a misaligned draft, prompt lookup.

    ======================  =====  ====================================  ==========
    strategy                ``c``  mean acceptance                       block size
    ======================  =====  ====================================  ==========
    ``<domain>-expert``     0.08   0.80 on its domain, 0.25 elsewhere    world's
    ``generalist``          0.15   0.60 everywhere                       world's
    ``misaligned``          0.35   0.12 everywhere (slower than AR)      world's
    ``prompt-lookup``       0.02   0.55 summarization, 0.40 code, 0.15   10
    ======================  =====  ====================================  ==========
    """
    experts = [DraftSpec(f"{d}-expert", 0.08, {d: 0.80}, default_acceptance=0.25) for d in domains]
    return (
        *experts,
        DraftSpec("generalist", 0.15, default_acceptance=0.60),
        DraftSpec("misaligned", 0.35, default_acceptance=0.12),
        DraftSpec(
            "prompt-lookup",
            0.02,
            {"summarization": 0.55, "code": 0.40},
            default_acceptance=0.15,
            kind="prompt_lookup",
            block_sizes=(10,),
        ),
    )


def speedup_factor(acceptance: np.ndarray, block_size: np.ndarray, cost_ratio: np.ndarray) -> np.ndarray:
    """Expected speed-up over AR of speculative decoding (Leviathan et al., 2023).

    ``(1 - a^{g+1}) / ((1 - a) (g c + 1))``: expected tokens per target call
    over the time of one call with its ``g`` draft steps. Arrays broadcast.
    """
    a = np.asarray(acceptance, dtype=float)
    g = np.asarray(block_size, dtype=float)
    tokens_per_call = (1.0 - a ** (g + 1.0)) / (1.0 - a)
    return tokens_per_call / (g * np.asarray(cost_ratio, dtype=float) + 1.0)


def make_arm(spec: DraftSpec, name: str, block_size: int) -> Arm:
    """The :mod:`banditspec.speculative.kinds` arm of ``spec`` at ``block_size``."""
    if spec.kind == "prompt_lookup":
        return PromptLookup(name, cost=spec.cost_ratio, num_tokens=block_size)
    if spec.kind == "early_exit":
        return EarlyExit(name, cost=spec.cost_ratio, block_size=block_size)
    return DraftModel(name, cost=spec.cost_ratio, model=spec.name, block_size=block_size)
