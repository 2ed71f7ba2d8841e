"""Any transformers checkpoints as a world, from one ``world.toml``.

A target, drafts and a prompts file become an
:class:`~banditspec.bandits.env.Environment`::

    from banditspec.speculative.world import open_world

    with open_world("world.toml", featurizer="hashing") as world:
        queries = world.queries(8, split="test", seed=0)
        feedback = world.full_feedback(queries)   # every arm decoded and measured

:mod:`~banditspec.speculative.world.config` reads and checks the file before
anything loads, :mod:`~banditspec.speculative.world.loading` loads and checks
the models, :mod:`~banditspec.speculative.world.prompts` reads and splits the
prompts, :mod:`~banditspec.speculative.world.world` is the environment, and
:mod:`~banditspec.speculative.world.recipe` opens the same world again elsewhere.
``docs/world-config.md`` describes every key.
"""

from banditspec.speculative.world.config import (
    PROMPT_FORMATS,
    DecodingConfig,
    FeaturesConfig,
    ModelConfig,
    PromptsConfig,
    WorldConfig,
    load_world_config,
)
from banditspec.speculative.world.keys import DTYPES, GREEDY_SETTINGS
from banditspec.speculative.world.loading import LoadedModels, load_models
from banditspec.speculative.world.prompts import (
    PromptFile,
    Prompts,
    PromptSource,
    apply_chat_template,
    query_id,
    read_prompts,
)
from banditspec.speculative.world.recipe import WorldRecipe
from banditspec.speculative.world.world import FEATURIZERS, ConfiguredWorld, check_options, open_world, preset

__all__ = [
    "DTYPES",
    "FEATURIZERS",
    "GREEDY_SETTINGS",
    "PROMPT_FORMATS",
    "ConfiguredWorld",
    "DecodingConfig",
    "FeaturesConfig",
    "LoadedModels",
    "ModelConfig",
    "PromptFile",
    "PromptSource",
    "Prompts",
    "PromptsConfig",
    "WorldConfig",
    "WorldRecipe",
    "apply_chat_template",
    "check_options",
    "load_models",
    "load_world_config",
    "open_world",
    "preset",
    "query_id",
    "read_prompts",
]
