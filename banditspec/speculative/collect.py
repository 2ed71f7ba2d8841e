"""Offline data collection: every arm's reward on every query, as the paper collects it.

For each query the collection computes

1. the target's greedy output ``y`` (batched: batch size 1 matters only where
   latency is measured),
2. each draft's own greedy output and its alignment with ``y`` — token match,
   longest common subsequence, accepted prefix (:mod:`banditspec.speculative.alignment`),
   the paper's offline proxy; an early exit is scored the same way, on the
   greedy output of the target cut after its exit layer,
3. the counterfactual acceptance of every arm along ``y``: exact target calls,
   proposed and accepted tokens (:mod:`banditspec.speculative.counterfactual`,
   :mod:`banditspec.speculative.kinds.prompt_lookup`; an early exit's matches
   are read off the hidden states of the target's greedy pass,
   :class:`~banditspec.speculative.kinds.TargetLayerHead`), priced in seconds by a
   :class:`~banditspec.speculative.latency.LatencyModel` calibrated on real decodes of a
   few queries, and
4. with ``measure=True``, the measured wall-clock decode of every arm (AR
   first, all in the same run) instead of the priced estimate.

Rows: one per (query, arm), so that the logged action is every arm with
propensity ``1/K`` (full information; importance-weighted learners then see the
exact average over arms), ``all_rewards`` holds the query's K rewards, and the
measurement columns (``wall_seconds``, ``target_calls``, ``align_lcs``, ...,
``wall_seconds@<arm>``, ``measured``, ``prompt``) let any other reward be
recomputed later. AR's alignment is 1 (its output *is* the target's) and
prompt lookup's is the share of the output it drafted correctly.

Work is written in chunks through :func:`banditspec.bandits.shards.write_chunks`:
resumable after any interruption, shardable with ``--shard i/N``. A backend
(:mod:`banditspec.speculative.backends`: ``local``, ``ray``) computes the
chunks; the files and rows are the same whichever computes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from banditspec.bandits.arms import ArmSet
from banditspec.bandits.batching import padding_id
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.full_information import full_information_rows
from banditspec.bandits.env import Measurement, Queries
from banditspec.bandits.features import PrefillPooling
from banditspec.bandits.rewards import Reward, SpeedupOverAR
from banditspec.bandits.shards import write_chunks
from banditspec.speculative.backends import Backend, check_job_arms, resolve_backend
from banditspec.speculative.counterfactual import MatchVector, SimulatedDecode, draft_matches_batch, match_vector
from banditspec.speculative.decoding import Decoder, GreedyPass, greedy_pass
from banditspec.speculative.kinds import DecodingArm, TargetLayerHead, Trace
from banditspec.speculative.latency import LatencyModel

__all__ = ["CollectionWork", "Collector", "DecodingWorld", "calibrate", "collect", "draw_queries", "featurized",
           "torch_threads"]


class DecodingWorld(Protocol):
    """A world that decodes real queries: arms, a :class:`Decoder` and text queries.

    A world whose features are the target's own hidden states may also offer
    ``prefill_pooling`` (a :data:`~banditspec.bandits.features.PrefillPooling`,
    or ``None``) and ``queries(..., featurize=False)``: a :class:`Collector`
    then pools the features from the prefill of its greedy pass
    (:func:`draw_queries`), and the target runs over each prompt once, not twice.
    """

    arms: ArmSet
    decoder: Decoder

    def queries(self, n: int, *, split: str, seed: int) -> Queries:
        """``n`` queries with ``texts`` and features."""
        ...

    def measure(self, queries: Queries, arm_sets: Sequence[Sequence[int]] | None = None) -> list[list[Measurement]]:
        """Per query, AR (the reference) and then the arms of its set (default every arm), decoded and measured."""
        ...


class Collector:
    """Computes the logged rows of queries on one decoding world.

    Parameters
    ----------
    world : DecodingWorld
        Arms (one must be plain, e.g. ``ar``), decoder and queries.
    reward : Reward, default SpeedupOverAR()
        Reward stored in ``reward``/``all_rewards`` (any other can be
        recomputed from the columns).
    latency : LatencyModel, optional
        Prices counterfactual counts; required unless ``measure``.
    measure : bool, default False
        Decode every arm for real and store measured seconds.
    batch_size : int, default 32
        Queries per batched forward / generate, batched by prompt length
        (:func:`~banditspec.bandits.batching.length_batches`). Larger batches
        were slower on a CPU: the target's greedy outputs of 128 SmolLM2
        training prompts, sorted, took 83 s at 32 and 212 s at 128 (2 AVX2 cores).
    threads : int, optional
        Torch threads for the batched passes (greedy outputs, alignment,
        counterfactual acceptance); ``None`` keeps the current setting.
        Measured decodes use the decoder's own thread count.
    """

    def __init__(self, world: DecodingWorld, *, reward: Reward | None = None, latency: LatencyModel | None = None,
                 measure: bool = False, batch_size: int = 32, threads: int | None = None) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be an integer >= 1 or None, got {threads!r}")
        self.decoder = world.decoder
        self.arms: list[DecodingArm] = [self.decoder.check(arm) for arm in world.arms]
        self.names = world.arms.names
        plain = [k for k, arm in enumerate(self.arms) if arm.plain]
        if not plain:
            raise ValueError("collection needs a plain arm (kind 'ar'): speed-ups are relative to AR")
        self.ar_index = plain[0]
        if not measure:
            if latency is None:
                raise ValueError("counterfactual collection needs a LatencyModel (calibrate one) or measure=True")
            if latency.arm_names != self.names:
                raise ValueError(f"latency model arms {latency.arm_names} differ from the world's {self.names}")
            unsupported = [arm.name for arm in self.arms if not arm.can_simulate()]
            if unsupported:
                raise ValueError(f"arms {unsupported} have no counterfactual simulation; collect them with measure=True")
        self.reward = reward or SpeedupOverAR()
        self.latency = latency
        self.measure = measure
        self.batch_size = batch_size
        self.threads = threads
        self.pad_id = padding_id(self.decoder.tokenizer)
        self.prefill_pooling: PrefillPooling | None = getattr(world, "prefill_pooling", None)
        # drafting models made of the target's first layers: their matches are read off the target's greedy pass
        heads = {key: arm.target_layer_head(self.decoder) for key, arm in self._drafters().items()}
        self.layer_heads: dict[Hashable, TargetLayerHead] = {k: h for k, h in heads.items() if h is not None}

    # -- pieces ----------------------------------------------------------------------------
    def _outputs(self, model: torch.nn.Module, prompts: list[np.ndarray], pool: PrefillPooling | None = None,
                 layers: Collection[int] = ()) -> GreedyPass:
        return greedy_pass(model, prompts, max_new_tokens=self.decoder.max_new_tokens, pad_id=self.pad_id,
                           eos_token_ids=self.decoder.eos_token_ids, batch_size=self.batch_size, pool=pool,
                           layers=layers)

    def _drafters(self) -> dict[Hashable, DecodingArm]:
        """One arm per distinct drafting model (:meth:`DecodingArm.drafter`), whose model the others share."""
        return {arm.drafter(): arm for arm in self.arms if arm.drafter() is not None}

    def _matches(self, prompts: list[np.ndarray], outputs: list[np.ndarray],
                 states: Mapping[int, list[torch.Tensor]] | None = None) -> dict[Hashable, list[MatchVector]]:
        """Per drafting model, per query: its teacher-forced match vector along the target's output.

        A drafting model with a :class:`TargetLayerHead` reads it off the
        target's own ``states`` (:attr:`GreedyPass.states`) where they hold
        its layer; every other runs its teacher-forced pass.
        """
        matches = {}
        for key, arm in self._drafters().items():
            head = self.layer_heads.get(key)
            if head is not None and states and head.layer in states:
                with torch.inference_mode():
                    matches[key] = [match_vector(head.logits(h), y) for h, y in zip(states[head.layer], outputs)]
                continue
            with arm.drafting_model(self.decoder) as model:
                matches[key] = draft_matches_batch(model, prompts, outputs, batch_size=self.batch_size)
        return matches

    def _own_outputs(self, prompts: list[np.ndarray]) -> dict[Hashable, list[np.ndarray]]:
        """Per drafting model, per query: its own greedy output (for the alignment scores)."""
        own = {}
        for key, arm in self._drafters().items():
            with arm.drafting_model(self.decoder) as model:
                own[key] = self._outputs(model, prompts).outputs
        return own

    def _traces(self, prompts: list[np.ndarray], outputs: list[np.ndarray],
                matches: dict[Hashable, list[MatchVector]], max_new_tokens: int) -> list[list[Trace]]:
        """Per query, per arm: the target's run with the arm's drafting model's match vector."""
        return [[Trace(self.decoder.prefix(prompt), output, max_new_tokens, self.decoder.eos_token_ids,
                       matches[arm.drafter()][i] if arm.drafter() is not None else None, self.decoder.tokenizer)
                 for arm in self.arms] for i, (prompt, output) in enumerate(zip(prompts, outputs))]

    def _priced(self, counts: list[list[SimulatedDecode]], outputs: list[np.ndarray]) -> list[list[Measurement]]:
        """Counterfactual counts priced in seconds by the latency model."""
        table = np.array([[(s.target_calls, s.proposed_tokens, s.accepted_tokens) for s in row] for row in counts])
        actions = np.broadcast_to(np.arange(len(self.arms)), table.shape[:2])
        seconds = self.latency.predict(actions, table[..., 0], table[..., 1])
        return [
            [
                Measurement(arm.name, new_tokens=int(outputs[i].size), wall_seconds=float(seconds[i, k]),
                            target_calls=int(table[i, k, 0]), accepted_tokens=int(table[i, k, 2]),
                            proposed_tokens=int(table[i, k, 1]), equals_ar=True,
                            ar_wall_seconds=float(seconds[i, self.ar_index]), cost=arm.cost)
                for k, arm in enumerate(self.arms)
            ]
            for i in range(len(outputs))
        ]

    # -- rows ------------------------------------------------------------------------------
    def counterfactual(self, prompts: list[np.ndarray], outputs: list[np.ndarray], *,
                       max_new_tokens: int | None = None) -> list[list[Measurement]]:
        """Every arm's run on each query, simulated exactly along the target's output and priced in seconds.

        Parameters
        ----------
        prompts : list of np.ndarray
            Prompt token ids (:meth:`Decoder.encode`).
        outputs : list of np.ndarray
            The target's greedy new tokens on each prompt (an AR-identical
            output: a collection's, or one a server returned).
        max_new_tokens : int, optional
            The limit the outputs were decoded under; default the decoder's.

        Returns
        -------
        list of lists of Measurement
            ``[i][k]``: arm ``k`` on query ``i``, its exact counts priced by
            the latency model (no alignment scores).
        """
        if self.latency is None:
            raise ValueError("counterfactual pricing needs a LatencyModel; this collector measures instead")
        limit = self.decoder.max_new_tokens if max_new_tokens is None else max_new_tokens
        with torch_threads(self.threads):
            traces = self._traces(prompts, outputs, self._matches(prompts, outputs), limit)
        return self._priced([[arm.simulate(t) for arm, t in zip(self.arms, row)] for row in traces], outputs)

    def rows(self, queries: Queries, *, alignment: bool = True) -> LoggedDataset:
        """The ``len(queries) * K`` logged rows of ``queries``.

        ``alignment=False`` leaves out the alignment scores (no ``align_*``
        columns, so no proxy reward) and with them the drafts' own greedy
        outputs, about as costly as the target's: for rows that only need the
        counts and seconds.

        Queries without features (``X`` of shape ``(n, 0)``, from
        :func:`draw_queries`) get them from the prefill of the target's
        greedy pass, pooled by the world's ``prefill_pooling``: the rows'
        ``X`` (:func:`featurized` gives the queries with them).

        Raises
        ------
        ValueError
            For queries without texts, or without features on a world that
            has no ``prefill_pooling``.
        """
        if queries.texts is None:
            raise ValueError("collection needs query texts (Queries.texts is None)")
        pool = None
        if queries.X.shape[1] == 0:
            if self.prefill_pooling is None:
                raise ValueError("queries without features need a world that pools them from the target's prefill "
                                 "(prefill_pooling); draw them with world.queries(...) featurized")
            pool = self.prefill_pooling
        prompts = [self.decoder.encode(t) for t in queries.texts]
        layers = {head.layer for head in self.layer_heads.values()}
        with torch_threads(self.threads):
            greedy = self._outputs(self.decoder.target, prompts, pool, layers)
            outputs = greedy.outputs
            matches = self._matches(prompts, outputs, greedy.states)
            own = self._own_outputs(prompts) if alignment else None
        traces = self._traces(prompts, outputs, matches, self.decoder.max_new_tokens)
        if self.measure:
            raw = [[r.measurement for r in self.decoder.measure(p, self.arms)] for p in prompts]
        else:
            raw = self._priced([[arm.simulate(t) for arm, t in zip(self.arms, row)] for row in traces], outputs)
        if own is not None:
            raw = [
                [replace(m, alignment=arm.alignment(trace, m.accepted_tokens,
                                                    own[arm.drafter()][i] if arm.drafter() is not None else None))
                 for arm, m, trace in zip(self.arms, row, traces[i])]
                for i, row in enumerate(raw)
            ]
        if pool is not None:
            queries = replace(queries, X=greedy.features)
        return full_information_rows(queries, raw, self.names, self.reward, measured=self.measure)


def draw_queries(world: DecodingWorld, n: int, *, split: str, seed: int) -> Queries:
    """``world.queries(n, split=split, seed=seed)`` for a :class:`Collector`: without features where the world
    pools them from the target's prefill (``prefill_pooling``), so that the collector's greedy pass computes
    them and the target's forward over each prompt runs once."""
    if getattr(world, "prefill_pooling", None) is None:
        return world.queries(n, split=split, seed=seed)
    return world.queries(n, split=split, seed=seed, featurize=False)


def featurized(queries: Queries, rows: LoggedDataset) -> Queries:
    """``queries`` with the features of their logged rows (:meth:`Collector.rows`' ``n * K`` rows of them).

    Raises
    ------
    ValueError
        If the rows are not those of the queries.
    """
    n = len(queries)
    if n == 0 or len(rows) % n or not np.array_equal(rows.query_ids[:: len(rows) // n], queries.ids):
        raise ValueError("the rows are not Collector.rows of these queries")
    return replace(queries, X=rows.X[:: len(rows) // n])


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (``None``: unchanged), then restore the previous count."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def calibrate(world: DecodingWorld, queries: Queries) -> LatencyModel:
    """Measure every arm on ``queries`` (AR first, same run) and fit a :class:`LatencyModel`.

    The world decodes as it decodes held-out queries (:meth:`DecodingWorld.measure`:
    warm, in its worker processes when it has several), so the model prices
    counts at the speed the evaluation measures.
    """
    if queries.texts is None:
        raise ValueError("calibration needs query texts")
    measurements = [m for row in world.measure(queries) for m in row]
    ar_arms = [arm.name for arm in world.arms if world.decoder.check(arm).plain]
    return LatencyModel.fit(measurements, world.arms.names, ar_arms)


@dataclass(frozen=True)
class CollectionWork:
    """A collection as a :class:`~banditspec.speculative.backends.ChunkJob`: its queries and the collector's settings.

    Parameters
    ----------
    queries : Queries
        The collection's queries; a chunk is an array of positions in them.
    latency : LatencyModel, optional
        Prices counterfactual counts (``None`` when ``measure``).
    measure : bool
        Decode every arm for real instead of pricing counts.
    threads : int, optional
        Torch threads of the batched passes (``None``: unchanged).
    arm_names : tuple of str
        The arms the rows are for; a world opened elsewhere (a Ray actor's)
        with other arms is refused.
    """

    queries: Queries
    latency: LatencyModel | None
    measure: bool
    threads: int | None
    arm_names: tuple[str, ...]

    def rows_on(self, world: DecodingWorld, *, threads: int | None = None) -> Callable[[np.ndarray], LoggedDataset]:
        """A :class:`Collector` on ``world`` computing the rows of the queries at given positions.

        Raises
        ------
        ValueError
            If the world's arms are not :attr:`arm_names`.
        """
        check_job_arms(world, self.arm_names, "collection")
        collector = Collector(world, latency=self.latency, measure=self.measure, threads=threads or self.threads)
        return lambda positions: collector.rows(self.queries.subset(positions))


def collect(
    world: DecodingWorld, out: str | Path, *, n: int, split: str = "train", seed: int = 0, measure: bool = False,
    calibration_queries: int = 16, shard: tuple[int, int] = (0, 1), chunk_size: int = 64, progress: bool = True,
    config: dict[str, Any] | None = None, threads: int | None = None, latency: LatencyModel | None = None,
    backend: str | Backend = "local", backend_options: Mapping[str, Any] | None = None,
) -> Path:
    """Collect ``n`` queries of ``split`` into the folder ``out``, resumably.

    The latency model is calibrated once (on ``calibration_queries`` queries of
    the same split drawn with another seed), or taken from ``latency`` (to
    price another collection's counts the same way), and saved as
    ``out/latency.json``; a resumed run reuses it, so its rows equal an
    uninterrupted run's.
    ``threads`` torch threads featurize the queries and run the batched passes
    (:class:`Collector`); give one per free core, fewer when several
    collections share a machine. Timed decodes keep the decoder's count.

    ``backend`` computes the chunks: ``"local"`` (this process), ``"ray"``
    (Ray actors; ``backend_options`` are
    :class:`~banditspec.speculative.backends.ray_backend.RayBackend`'s, its
    ``recipe`` included), any name in the ``banditspec.backends`` entry
    points, or a backend object. The driver calibrates, draws the queries and
    writes the files, so they are the same whichever backend computes them.
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an integer >= 1 or None, got {threads!r}")
    backend = resolve_backend(backend, backend_options)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not measure:
        latency_file = out / "latency.json"
        if latency_file.exists():
            latency = LatencyModel.from_dict(json.loads(latency_file.read_text()))
        else:
            if latency is None:
                latency = calibrate(world, draw_queries(world, calibration_queries, split=split, seed=seed + 10_000))
            tmp = latency_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(latency.to_dict(), indent=2))
            tmp.replace(latency_file)
    Collector(world, latency=latency, measure=measure, threads=threads)  # checks the arms before any chunk starts
    with torch_threads(threads):
        queries = draw_queries(world, n, split=split, seed=seed)
    job = {"n": n, "split": split, "seed": seed, "measure": measure, "arms": world.arms.fingerprint(), **(config or {})}
    work = CollectionWork(queries, latency, measure, threads, tuple(world.arms.names))
    write_chunks(len(queries), backend.chunk_map(world, work), out, config=job, chunk_size=chunk_size, shard=shard,
                 progress=progress)
    return out
