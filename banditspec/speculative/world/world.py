"""A world built from a :class:`WorldConfig`: real decoding of real prompts, measured latency.

:class:`ConfiguredWorld` is an :class:`~banditspec.bandits.env.Environment`.
Its arms are the config's; its queries come from the prompts file (or a
:class:`~banditspec.speculative.world.prompts.PromptSource` given in code),
featurized by the target's own prefill (mean-pooled hidden states of its
encoder, for an encoder-decoder target; of the layer ``[features]`` names)
or by hashed character n-grams;
group labels stay in ``Queries.groups`` for reports and never reach a policy.

``measure`` (a set of arms per query), ``step`` and ``full_feedback``
decode for real with :class:`~banditspec.speculative.decoding.Decoder` (batch size 1, greedy, AR first
as the same-run reference) and reward the measurements with a
:class:`~banditspec.bandits.rewards.Reward` (default: speed-up over AR),
optionally in several worker processes.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from banditspec.bandits.arms import Arm, ArmSet
from banditspec.bandits.env import Feedback, Measurement, Queries
from banditspec.bandits.features import Featurizer, HashingFeaturizer, PrefillPooling, TargetHiddenStates
from banditspec.bandits.rewards import Reward, SpeedupOverAR
from banditspec.bandits.validation import check_integer
from banditspec.speculative.decoding import Decoder
from banditspec.speculative.kinds.early_exit import check_early_exit, early_exit
from banditspec.speculative.measured import full_feedback
from banditspec.speculative.world.config import FeaturesConfig, WorldConfig, load_world_config
from banditspec.speculative.world.loading import LoadedModels, load_models
from banditspec.speculative.world.prompts import PromptSource, apply_chat_template, read_prompts

__all__ = ["FEATURIZERS", "ConfiguredWorld", "check_options", "open_world", "preset", "target_features"]

#: Context features a world offers: the target's prefill hidden states or hashed character n-grams.
FEATURIZERS = ("target", "hashing")
_C = TypeVar("_C")
_TASK = 4  # queries per task when decoding in worker processes: small tasks keep the workers evenly busy


def check_options(*, featurizer: str, threads: int, workers: int) -> None:
    """Raise ValueError unless the options of a :class:`ConfiguredWorld` are valid (checked before anything loads)."""
    if featurizer not in FEATURIZERS:
        raise ValueError(f"featurizer must be one of {FEATURIZERS}, got {featurizer!r}")
    for name, value in (("threads", threads), ("workers", workers)):
        check_integer(name, value, low=1)


def preset(config: _C | str, presets: Mapping[str, _C], kind: type[_C]) -> _C:
    """A world plug-in's config: ``config`` itself, or the preset of ``presets`` it names.

    Raises
    ------
    ValueError
        Unless ``config`` is a ``kind`` or the name of a preset (the names are listed).
    """
    if isinstance(config, str) and config in presets:
        return presets[config]
    if isinstance(config, kind):
        return config
    raise ValueError(f"config must be a {kind.__name__} or one of {sorted(presets)}, got {config!r}")


def _decoder(models: LoadedModels, config: WorldConfig, threads: int) -> Decoder:
    """The decoder of ``models``, with the config's greedy settings on the target's generation config."""
    models.target.generation_config.update(**config.decoding.generation)
    return Decoder(models.target, models.tokenizer, models.drafts, max_new_tokens=config.decoding.max_new_tokens,
                   threads=threads)


def target_features(models: LoadedModels, features: FeaturesConfig) -> TargetHiddenStates:
    """The ``"target"`` featurizer of ``models``: hidden states of the layer ``features`` names.

    A batched pass for a layer before the last runs the target cut after the
    next layer (:func:`~banditspec.speculative.kinds.early_exit.early_exit`;
    that layer's output is then still the full forward's) where the target
    can be cut so; an encoder-decoder target's encoder runs whole.

    Raises
    ------
    ValueError
        If the layer is beyond the target's (its encoder's) layers.
    """
    model = models.target.get_encoder() if models.encoder_decoder else models.target
    if features.layer is None:
        return TargetHiddenStates(model, models.tokenizer)
    layers = int(model.config.num_hidden_layers)
    if features.layer > layers:
        raise ValueError(f"[features] layer = {features.layer}: the target has {layers} layers")
    cut = None
    if not models.encoder_decoder and features.layer + 1 < layers:
        try:
            check_early_exit(model, features.layer + 1)
            cut = functools.partial(early_exit, model, features.layer + 1)
        except ValueError:  # a model that runs every layer whatever its config says: the whole pass, then
            pass
    return TargetHiddenStates(model, models.tokenizer, layer=features.layer, cut=cut)


class _WarmDecoder:
    """A decoder that warms up on its first measurement, so that later timings are warm."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.warm = False

    def measure(self, texts: Sequence[str], arms: list[Arm], arm_sets: Sequence[Sequence[int]] | None, *,
                progress: bool) -> list[list[Measurement]]:
        """Decode text ``i`` with AR (the reference) and then the arms ``arm_sets[i]``, or every arm."""
        if not self.warm:
            self.decoder.warmup(texts[0], arms)
            self.warm = True
        rows = []
        for i, text in enumerate(tqdm(texts, desc="decoding", unit="query", disable=not progress)):
            chosen = arms if arm_sets is None else [arms[int(k)] for k in arm_sets[i]]
            rows.append([r.measurement for r in self.decoder.measure(text, chosen)])
        return rows


class ConfiguredWorld:
    """The world a :class:`WorldConfig` describes.

    Parameters
    ----------
    config : WorldConfig
        Target, drafts, arms, prompts and decoding settings
        (:func:`~banditspec.speculative.world.config.load_world_config`).
    prompts : PromptSource, optional
        Where queries come from; default: the config's prompts file.
    featurizer : {"target", "hashing"}, default "target"
        Context features: the target's prefill hidden states or hashed n-grams.
    threads : int, default 1
        Torch threads while decoding (fixed for comparable timings).
    reward : Reward, optional
        Reward of a measurement; default :class:`SpeedupOverAR`.
    progress : bool, default True
        Progress bars while loading and decoding.
    workers : int, default 1
        Processes that decode in parallel when many queries are measured at
        once (``measure``, ``full_feedback``, ``step``, the latency
        calibration). Each loads the models, warms up and runs ``threads``
        torch threads of its own; a query's arms (AR first)
        are always decoded back to back in one process, so its speed-ups are
        same-run ratios. Give at most one worker per free core. The workers
        start with the first such measurement and are kept for the next ones;
        ``close()`` (or leaving a ``with`` block) stops them.

    Attributes
    ----------
    world_config : WorldConfig
        What the world was built from.
    arms : ArmSet
        The arms, in action-id order (arms may be removed or marked unavailable).
    models : LoadedModels
        Target, drafts and tokenizer.
    decoder : Decoder
        Decodes and measures one query with any arm.
    featurizer : Featurizer
        Turns query texts into the features policies see.
    prefill_pooling : PrefillPooling or None
        Where the features are the hidden states of a decoder-only target
        (``featurizer="target"``), the featurizer's
        :meth:`~banditspec.bandits.features.TargetHiddenStates.pool`: a
        :class:`~banditspec.speculative.collect.Collector` then featurizes
        :meth:`queries` drawn with ``featurize=False`` from the prefill of
        its own greedy pass over them, instead of a second forward. ``None``
        otherwise.
    prompts : PromptSource
        Where queries come from.
    reward : Reward
        Turns measurements into rewards.

    Raises
    ------
    ValueError
        For a bad argument, a bad prompts file (before any model loads), or
        models that do not fit together (:func:`load_models`).
    """

    def __init__(
        self,
        config: WorldConfig,
        *,
        prompts: PromptSource | None = None,
        featurizer: str = "target",
        threads: int = 1,
        reward: Reward | None = None,
        progress: bool = True,
        workers: int = 1,
    ) -> None:
        check_options(featurizer=featurizer, threads=threads, workers=workers)
        if prompts is None:
            if config.prompts is None:
                raise ValueError("the world has no prompts: give the config a [prompts] file or pass prompts=")
            prompts = read_prompts(config.prompts)
        self.world_config = config
        self.prompts = prompts
        self.workers = workers
        self.threads = threads
        self.progress = progress
        self.reward = reward or SpeedupOverAR()
        self.models = load_models(config, progress=progress)
        self._chat = config.prompts is not None and config.prompts.chat_template
        if self._chat:
            apply_chat_template(self.models.tokenizer, ["check"])
        self.arms = ArmSet(config.arms)
        self.decoder = _decoder(self.models, config, threads)
        self._local = _WarmDecoder(self.decoder)
        self._pool: ProcessPoolExecutor | None = None
        target = target_features(self.models, config.features) if featurizer == "target" else None
        self.featurizer: Featurizer = HashingFeaturizer() if target is None else target
        self.prefill_pooling: PrefillPooling | None = (
            None if target is None or self.models.encoder_decoder else target.pool
        )

    def queries(self, n: int, *, split: str, seed: int, featurize: bool = True) -> Queries:
        """``n`` distinct prompts of ``split``, in an order drawn with ``seed``, featurized; ``groups`` for reports.

        ``featurize=False`` leaves the features out (``X`` of shape ``(n, 0)``):
        for a collector that featurizes from its own pass
        (:attr:`prefill_pooling`), or work that needs only the texts.

        Raises
        ------
        ValueError
            If the split holds fewer than ``n`` prompts.
        """
        prompts = self.prompts.sample(n, split=split, seed=seed)
        texts = apply_chat_template(self.models.tokenizer, prompts.texts) if self._chat else prompts.texts
        X = self.featurizer.transform(texts) if featurize else np.empty((len(texts), 0))
        return Queries(ids=prompts.ids, X=X, texts=texts, groups=prompts.groups)

    def split_size(self, split: str) -> int | None:
        """How many queries ``split`` holds (None where the prompt source generates as many as asked)."""
        return self.prompts.size(split)

    def describe_models(self) -> dict[str, Any]:
        """Where and how the target and every drafting model load (device, location, dtype, kernels...), as JSON.

        A speed-up is a ratio to AR on the target's own kernels, so a report
        that does not say which kernels ran, and on what device, is incomplete.
        """
        return {"device": self.world_config.device, "target": dataclasses.asdict(self.world_config.target),
                "drafts": {key: dataclasses.asdict(model) for key, model in self.world_config.drafts.items()}}

    def measure(self, queries: Queries, arm_sets: Sequence[Sequence[int]] | None = None) -> list[list[Measurement]]:
        """Decode query ``i`` with AR (the same-run reference) and then the arms ``arm_sets[i]``, or every arm.

        Parameters
        ----------
        queries : Queries
            With texts.
        arm_sets : sequence of sequences of int, optional
            Per query, the ids of the arms to decode, in that order (a plain
            arm reuses the AR reference); ``None``: every arm.

        Returns
        -------
        list of lists of Measurement
            Per query, one measurement per arm of its set.
        """
        if queries.texts is None:
            raise ValueError("measuring needs queries with texts")
        if arm_sets is not None:
            if len(arm_sets) != len(queries):
                raise ValueError(f"arm_sets must hold one set per query ({len(queries)}), got {len(arm_sets)}")
            if any(not 0 <= int(k) < len(self.arms) for ids in arm_sets for k in ids):
                raise ValueError(f"arm_sets must hold arm ids in [0, {len(self.arms)})")
        if self.workers > 1 and len(queries) > _TASK:
            return self._measure_in_workers(queries.texts, arm_sets)
        return self._local.measure(queries.texts, list(self.arms), arm_sets, progress=self.progress)

    def _measure_in_workers(self, texts: Sequence[str], arm_sets: Sequence[Sequence[int]] | None
                            ) -> list[list[Measurement]]:
        """:meth:`measure` split into tasks of a few queries decoded by ``workers`` processes."""
        starts = range(0, len(texts), _TASK)
        tasks = [(texts[i : i + _TASK], None if arm_sets is None else list(arm_sets[i : i + _TASK])) for i in starts]
        rows: list[list[list[Measurement]]] = [[] for _ in tasks]
        pool = self._worker_pool()
        arms = list(self.arms)  # as they are now: arms may have been added or removed since construction
        try:
            with tqdm(total=len(texts), desc=f"decoding ({self.workers} workers)", unit="query",
                      disable=not self.progress) as bar:
                futures = {pool.submit(_measure_task, *task, arms): i for i, task in enumerate(tasks)}
                for future in as_completed(futures):
                    rows[futures[future]] = future.result()
                    bar.update(len(rows[futures[future]]))
        except BaseException:  # a failed or interrupted measurement leaves no busy workers behind
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            raise
        return [row for task in rows for row in task]

    def _worker_pool(self) -> ProcessPoolExecutor:
        """The worker processes: started on first use, each loading the models once, then kept."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker,
                                             initargs=(self.world_config, self.threads, os.getpid()))
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any (a later measurement starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> ConfiguredWorld:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _feedback(self, measurements: list[list[Measurement]], actions: np.ndarray | None) -> Feedback:
        full = full_feedback([m for row in measurements for m in row], len(measurements[0]), self.reward)
        if actions is None:
            return full
        return Feedback(rewards=full.rewards[:, 0], seconds=full.seconds[:, 0], ar_seconds=full.ar_seconds,
                        actions=actions, measurements=full.measurements)

    def step(self, queries: Queries, actions: np.ndarray, *, seed: int = 0) -> Feedback:
        """Decode query ``i`` with arm ``actions[i]`` (and AR as the reference), measured."""
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape != (len(queries),) or actions.min() < 0 or actions.max() >= len(self.arms):
            raise ValueError(f"actions must be {len(queries)} arm ids in [0, {len(self.arms)})")
        return self._feedback(self.measure(queries, [[int(a)] for a in actions]), actions)

    def full_feedback(self, queries: Queries, *, seed: int = 0) -> Feedback:
        """Decode every query with every arm, measured in one run."""
        return self._feedback(self.measure(queries), None)


def open_world(path: str | Path, **options: Any) -> ConfiguredWorld:
    """The world of the ``world.toml`` at ``path``; ``options`` go to :class:`ConfiguredWorld`.

    Every config error is raised before any model loads.
    """
    return ConfiguredWorld(load_world_config(path), **options)


_WORKER: _WarmDecoder | None = None


#: Seconds between a worker's checks that the process that started it is alive.
PARENT_CHECK_SECONDS = 2.0


def _exit_with_parent(parent: int) -> None:
    """End this process once its parent is no longer ``parent`` (it died, even by SIGKILL); never returns.

    A pool's idle workers wait on a queue whose writing end they hold
    themselves, so they would outlive a killed parent, each holding its
    models in memory; a daemon thread running this ends them.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _start_worker(config: WorldConfig, threads: int, parent: int) -> None:
    """Load the models once per worker process, which ends when ``parent``, the process that started it, does.

    ``parent`` comes from the parent, not from ``os.getppid()`` here: a worker
    still starting when its parent is killed would see its new parent (init)
    and wait on that one forever.
    """
    global _WORKER
    threading.Thread(target=_exit_with_parent, args=(parent,), name="exit-with-parent", daemon=True).start()
    _WORKER = _WarmDecoder(_decoder(load_models(config, progress=False), config, threads))


def _measure_task(texts: Sequence[str], arm_sets: Sequence[Sequence[int]] | None,
                  arms: list[Arm]) -> list[list[Measurement]]:
    assert _WORKER is not None, "worker not started"
    return _WORKER.measure(texts, arms, arm_sets, progress=False)
