"""The toy world as a banditspec :class:`~banditspec.bandits.env.Environment`: real decoding, measured latency.

Arms: AR, the world's drafts (whatever ``ToyConfig.drafts`` holds, each at one
block size and draft-length schedule), its early exits if any (one per ``ToyConfig.exit_layers``,
same block size) and prompt lookup. Queries are mixed-domain prompts; their
domain is kept in ``Queries.groups`` for reports and never given to a policy.
Features come from the target's own prefill (mean-pooled hidden states) or from
hashed character n-grams.

``step`` and ``full_feedback`` decode for real with
:class:`~banditspec.speculative.decoding.Decoder` (batch size 1, greedy, AR first as the
same-run reference) and reward the measurements with a
:class:`~banditspec.bandits.rewards.Reward` (default: speed-up over AR).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditspec.bandits.arms import Arm, ArmSet
from banditspec.speculative.kinds import SCHEDULES, Autoregressive, DraftModel, EarlyExit, PromptLookup
from banditspec.speculative.decoding import Decoder
from banditspec.bandits.env import Feedback, Measurement, Queries
from banditspec.bandits.features import Featurizer, HashingFeaturizer, TargetHiddenStates
from banditspec.speculative.measured import full_feedback
from banditspec.bandits.rewards import Reward, SpeedupOverAR
from banditspec.envs.toy.cache import load_world
from banditspec.envs.toy.config import DEFAULT, SELF_DRAFT, SIZES, SPEC_BENCH, TINY, TINY_SELF_DRAFT, ToyConfig
from banditspec.envs.toy.tasks import sample_queries

__all__ = ["ToyWorld"]

CONFIGS = {"default": DEFAULT, "self-draft": SELF_DRAFT, "sizes": SIZES, "spec-bench": SPEC_BENCH, "tiny": TINY,
           "tiny-self-draft": TINY_SELF_DRAFT}
_TASK = 4  # queries per task when decoding in worker processes: small tasks keep the workers evenly busy
FEATURIZERS = ("target", "hashing")


def _query_id(prompt: str) -> int:
    """A stable 63-bit id of a prompt (the same prompt has the same id in every run)."""
    return int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=8).digest(), "big") >> 1


class ToyWorld:
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
        Progress bars while building and decoding.
    workers : int, default 1
        Processes that decode in parallel when many queries are measured at
        once (``full_feedback``, ``step``). Each loads the world, warms up and
        runs one torch thread of its own; a query's arms (AR first) are always
        decoded back to back in one process, so its speed-ups are same-run
        ratios. Give at most one worker per free core: workers that share a
        core slow each other down unevenly. The worker processes start with
        the first such measurement and are kept for the next ones; ``close()``
        (or leaving a ``with`` block) stops them.
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
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ValueError(f"config must be a ToyConfig or one of {sorted(CONFIGS)}, got {config!r}")
            config = CONFIGS[config]
        if featurizer not in FEATURIZERS:
            raise ValueError(f"featurizer must be one of {FEATURIZERS}, got {featurizer!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self._settings = {"config": config, "max_new_tokens": max_new_tokens, "block_size": block_size,
                          "schedule": schedule, "threads": threads, "cache_dir": cache_dir}
        self.models = load_world(config, cache_dir=cache_dir, progress=progress)
        self.config = config
        self.progress = progress
        self.reward = reward or SpeedupOverAR()
        target_params = sum(p.numel() for p in self.models.target.parameters())
        arms = [Autoregressive("ar", cost=1.0)]
        for name, draft in self.models.drafts.items():
            cost = sum(p.numel() for p in draft.parameters()) / target_params
            arms.append(DraftModel(name, model=name, block_size=block_size, schedule=schedule, cost=round(cost, 4)))
        for layer in config.exit_layers:
            arms.append(EarlyExit(f"exit-{layer}", layer=layer, block_size=block_size,
                                  cost=round(layer / config.target.n_layer, 4)))
        arms.append(PromptLookup("prompt-lookup", num_tokens=block_size, max_ngram=2))
        self.arms = ArmSet(arms)
        self._warm = False
        self._pool: ProcessPoolExecutor | None = None
        self.decoder = Decoder(self.models.target, self.models.tokenizer, self.models.drafts,
                               max_new_tokens=max_new_tokens, threads=threads)
        self.featurizer: Featurizer = (
            TargetHiddenStates(self.models.target, self.models.tokenizer) if featurizer == "target"
            else HashingFeaturizer()
        )

    def queries(self, n: int, *, split: str, seed: int) -> Queries:
        """``n`` mixed-domain prompts of ``split``, featurized; ``groups`` holds the domains."""
        sampled = sample_queries(self.config, n, split=split, seed=seed)
        texts = [q.prompt for q in sampled]
        return Queries(
            ids=np.array([_query_id(t) for t in texts], dtype=np.int64),
            X=self.featurizer.transform(texts),
            texts=texts,
            groups=np.array([q.domain for q in sampled]),
        )

    def measure(self, queries: Queries, actions: np.ndarray | None = None) -> list[list[Measurement]]:
        """Decode every query with AR (the same-run reference) and then arm ``actions[i]``, or every arm."""
        if queries.texts is None:
            raise ValueError("toy queries need texts")
        if self.workers > 1 and len(queries) > _TASK:
            return self._measure_in_workers(queries.texts, actions)
        everything = list(self.arms)
        if not self._warm:  # once per world: later timings are warm
            self.decoder.warmup(queries.texts[0], everything)
            self._warm = True
        rows = []
        for i, text in enumerate(tqdm(queries.texts, desc="decoding", unit="query", disable=not self.progress)):
            arms = everything if actions is None else [everything[int(actions[i])]]
            rows.append([r.measurement for r in self.decoder.measure(text, arms)])
        return rows

    def _measure_in_workers(self, texts: Sequence[str], actions: np.ndarray | None) -> list[list[Measurement]]:
        """:meth:`measure` split into tasks of a few queries decoded by ``workers`` processes."""
        starts = range(0, len(texts), _TASK)
        tasks = [(texts[i : i + _TASK], None if actions is None else actions[i : i + _TASK]) for i in starts]
        rows: list[list[list[Measurement]]] = [[] for _ in tasks]
        pool = self._worker_pool()
        arms = list(self.arms)  # as they are now: arms may have been added or removed since construction
        try:
            with tqdm(total=len(texts), desc=f"decoding ({self.workers} workers)", unit="query",
                      disable=not self.progress) as bar:
                futures = {pool.submit(_measure_chunk, *task, arms): i for i, task in enumerate(tasks)}
                for future in as_completed(futures):
                    rows[futures[future]] = future.result()
                    bar.update(len(rows[futures[future]]))
        except BaseException:  # a failed or interrupted measurement leaves no busy workers behind
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            raise
        return [row for task in rows for row in task]

    def _worker_pool(self) -> ProcessPoolExecutor:
        """The worker processes: started on first use, each loading the world and warming up once, then kept."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(self._settings,))
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any (a later measurement starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> ToyWorld:
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
        return self._feedback(self.measure(queries, actions), actions)

    def full_feedback(self, queries: Queries, *, seed: int = 0) -> Feedback:
        """Decode every query with every arm, measured in one run."""
        return self._feedback(self.measure(queries), None)


_WORKER_WORLD: ToyWorld | None = None


def _start_worker(settings: dict[str, Any]) -> None:
    """Load the world once per worker process (single-process, no progress bars)."""
    global _WORKER_WORLD
    _WORKER_WORLD = ToyWorld(**settings, progress=False)


def _measure_chunk(texts: Sequence[str], actions: np.ndarray | None, arms: list[Arm]) -> list[list[Measurement]]:
    assert _WORKER_WORLD is not None, "worker not started"
    _WORKER_WORLD.arms = ArmSet(arms)
    queries = Queries(ids=np.zeros(len(texts), dtype=np.int64), X=np.zeros((len(texts), 0)), texts=list(texts))
    return _WORKER_WORLD.measure(queries, actions)
