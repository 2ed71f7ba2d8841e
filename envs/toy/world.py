"""The toy world as a banditspec :class:`~banditspec.bandits.env.Environment`: real decoding, measured latency.

The toy world is one config of the generic world
(:class:`~banditspec.speculative.world.ConfiguredWorld`): its models are
built and cached by :mod:`banditspec.envs.toy.cache`, then loaded from the
cache folders the same way as a user's checkpoints. Arms: AR, the world's
drafts (whatever ``ToyConfig.drafts`` holds, each at one block size and
draft-length schedule), its early exits if any (one per
``ToyConfig.exit_layers``, same block size) and prompt lookup. Queries are
mixed-domain prompts (:class:`~banditspec.envs.toy.tasks.ToyPrompts`); their
domain is kept in ``Queries.groups`` for reports and never given to a policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from banditspec.bandits.rewards import Reward
from banditspec.envs.toy.cache import ToyModels, prepare_world
from banditspec.envs.toy.config import DEFAULT, SELF_DRAFT, SIZES, SPEC_BENCH, TINY, TINY_SELF_DRAFT, ToyConfig
from banditspec.envs.toy.tasks import ToyPrompts
from banditspec.speculative.kinds import SCHEDULES, Autoregressive, DecodingArm, DraftModel, EarlyExit, PromptLookup
from banditspec.speculative.world import (
    ConfiguredWorld,
    DecodingConfig,
    ModelConfig,
    WorldConfig,
    check_options,
    preset,
)

__all__ = ["CONFIGS", "ToyWorld", "toy_world_config"]

CONFIGS = {"default": DEFAULT, "self-draft": SELF_DRAFT, "sizes": SIZES, "spec-bench": SPEC_BENCH, "tiny": TINY,
           "tiny-self-draft": TINY_SELF_DRAFT}


def toy_world_config(config: ToyConfig, path: Path, info: dict[str, Any], *, max_new_tokens: int, block_size: int,
                     schedule: str) -> WorldConfig:
    """The :class:`WorldConfig` of the toy world of ``config`` cached in ``path`` (``info``: its ``world.json``).

    A draft's cost is its parameter count over the target's; an early exit's,
    its layers over the target's.
    """
    params = info["params"]
    arms: list[DecodingArm] = [Autoregressive("ar", cost=1.0)]
    arms += [DraftModel(d.name, model=d.name, block_size=block_size, schedule=schedule,
                        cost=round(params[d.name] / params["target"], 4)) for d in config.drafts]
    arms += [EarlyExit(f"exit-{layer}", layer=layer, block_size=block_size,
                       cost=round(layer / config.target.n_layer, 4)) for layer in config.exit_layers]
    arms.append(PromptLookup("prompt-lookup", num_tokens=block_size, max_ngram=2))
    tokenizer = str(path / "tokenizer")
    return WorldConfig(
        target=ModelConfig(str(path / "target"), tokenizer=tokenizer),
        arms=tuple(arms),
        drafts={d.name: ModelConfig(str(path / "drafts" / d.name), tokenizer=tokenizer) for d in config.drafts},
        decoding=DecodingConfig(max_new_tokens=max_new_tokens),
    )


class ToyWorld(ConfiguredWorld):
    """The embedded default world.

    Parameters
    ----------
    config : ToyConfig or a name in ``CONFIGS``, default "default"
        Which world to build or load from the cache.
    featurizer : {"target", "hashing"}, default "target"
        Context features: the target's prefill hidden states or hashed n-grams.
    max_new_tokens : int, default 48
        New tokens per decode.
    block_size : int, default 6
        Draft block size of every draft and early-exit arm (and prompt
        lookup's ``num_tokens``).
    schedule : {"constant", "heuristic"}, default "constant"
        Draft-length schedule of every draft arm (transformers'
        ``num_assistant_tokens_schedule``; "heuristic" starts each query at
        ``block_size``). Early exits keep a constant block.
    threads : int, default 1
        Torch threads while decoding (fixed for comparable timings).
    reward : Reward, optional
        Reward of a measurement; default :class:`SpeedupOverAR`.
    cache_dir : path, optional
        Cache root; default ``$BANDITSPEC_CACHE``.
    progress : bool, default True
        Progress bars while building, loading and decoding.
    workers : int, default 1
        Processes that decode in parallel (see :class:`ConfiguredWorld`).

    Attributes
    ----------
    config : ToyConfig
        The toy world.
    models : ToyModels
        Its loaded models, cache folder and ``world.json`` info.
    """

    def __init__(
        self,
        config: ToyConfig | str = "default",
        *,
        featurizer: str = "target",
        max_new_tokens: int = 48,
        block_size: int = 6,
        schedule: str = "constant",
        threads: int = 1,
        reward: Reward | None = None,
        cache_dir: str | None = None,
        progress: bool = True,
        workers: int = 1,
    ) -> None:
        config = preset(config, CONFIGS, ToyConfig)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        check_options(featurizer=featurizer, threads=threads, workers=workers)
        path, info = prepare_world(config, cache_dir=cache_dir, progress=progress)
        world = toy_world_config(config, path, info, max_new_tokens=max_new_tokens, block_size=block_size,
                                 schedule=schedule)
        super().__init__(world, prompts=ToyPrompts(config), featurizer=featurizer, threads=threads, reward=reward,
                         progress=progress, workers=workers)
        self.config = config
        self.models = ToyModels(self.models.target, self.models.drafts, self.models.tokenizer, config, path, info)
