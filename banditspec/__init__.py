"""banditspec: per-query draft selection for speculative decoding as a contextual bandit."""

from banditspec.bandits.arms import Arm, ArmSet
from banditspec.speculative.kinds import Autoregressive, DraftModel, EarlyExit, NgramDraft, PromptLookup
from banditspec.bandits.env import Environment, Feedback, Measurement, Queries
from banditspec.bandits.policy import POLICIES, Policy

__all__ = [
    "POLICIES",
    "Arm",
    "ArmSet",
    "Autoregressive",
    "DraftModel",
    "EarlyExit",
    "Environment",
    "Feedback",
    "Measurement",
    "NgramDraft",
    "Policy",
    "PromptLookup",
    "Queries",
]

__version__ = "0.1.0"
