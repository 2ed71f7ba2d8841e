"""The ray backend on a local Ray with 2 one-CPU actors: the same shards as the local backend, despite a killed actor;
the same measured rows (but the timings) as the local backend, on a world narrowed to some arms. Without Ray
running: the world an actor opens, the jobs' arm checks, and the clean-up after a failure (on a fake Ray)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.shards import ChunkMap, merge
from banditspec.speculative.backends import ChunkJob
from banditspec.speculative.collect import CollectionWork, calibrate, collect
from banditspec.speculative.latency import LatencyModel
from banditspec.speculative.measured import MeasuredEvaluation, measure_arms
from banditspec.speculative.world import WorldRecipe

ray = pytest.importorskip("ray")
from banditspec.speculative.backends.ray_backend import RayBackend, _ChunkActor  # noqa: E402  (needs ray)

#: What differs between two runs of the same collection: its seconds (priced or measured).
TIMING = ("wall_seconds", "ar_wall_seconds")
N, CHUNK = 12, 3


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """One local Ray (2 CPUs) for the module: backends join it instead of starting their own."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def recipe(toy_cache: Path) -> WorldRecipe:
    """The tiny toy world as ``tiny_toy`` opens it, for the actors."""
    return WorldRecipe(env="toy", env_args={"config": "tiny", "max_new_tokens": 24, "block_size": 4,
                                            "cache_dir": str(toy_cache)}, options={"progress": False})


@pytest.fixture(scope="module")
def local_run(tiny_toy, tmp_path_factory) -> Path:
    """The collection computed by the local backend."""
    latency = calibrate(tiny_toy, tiny_toy.queries(3, split="train", seed=99))
    return collect(tiny_toy, tmp_path_factory.mktemp("local"), n=N, seed=4, chunk_size=CHUNK, latency=latency,
                   progress=False)


def _table(folder: Path):
    table = LoggedDataset.load(folder).to_table()
    return table.drop_columns([c for c in table.column_names if c in TIMING or c.startswith("wall_seconds@")])


def _same_collection(folder: Path, local: Path) -> None:
    assert sorted(p.name for p in folder.glob("part-*.parquet")) == sorted(p.name for p in local.glob("part-*.parquet"))
    assert (folder / "latency.json").read_text() == (local / "latency.json").read_text()
    assert _table(folder).equals(_table(local))
    merge([folder], folder.parent / f"{folder.name}-merged.parquet")  # raises on a duplicate (query, arm) row


def _latency(local: Path) -> LatencyModel:
    return LatencyModel.from_dict(json.loads((local / "latency.json").read_text()))


def test_ray_rows_equal_the_local_rows_and_resume(ray_session, tiny_toy, recipe, local_run, tmp_path):
    backend = RayBackend(recipe, actors=2, cpus_per_actor=1)
    out = collect(tiny_toy, tmp_path / "ray", n=N, seed=4, chunk_size=CHUNK, latency=_latency(local_run),
                  backend=backend, progress=False)
    _same_collection(out, local_run)
    (out / "part-000002.parquet").unlink()
    done = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    collect(tiny_toy, out, n=N, seed=4, chunk_size=CHUNK, backend="ray",
            backend_options={"recipe": recipe, "actors": 2}, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet") if p.name in done} == done
    _same_collection(out, local_run)


class _KillsAnActor(RayBackend):
    """Kills actor 0 (Ray restarts it) once the first chunk is back, while both actors hold a chunk."""

    def chunk_map(self, world: object, job: ChunkJob) -> ChunkMap:
        def chunk_map(chunks: Sequence[np.ndarray]) -> Iterator[tuple[int, LoggedDataset]]:
            with self.start(job) as actors:
                results = actors.map(chunks)
                yield next(results)
                ray.kill(actors.handles[0], no_restart=False)
                yield from results

        return chunk_map


def test_a_killed_actor_is_restarted_and_no_chunk_is_lost_or_doubled(ray_session, tiny_toy, recipe, local_run,
                                                                      tmp_path):
    out = collect(tiny_toy, tmp_path / "ray", n=N, seed=4, chunk_size=CHUNK, latency=_latency(local_run),
                  backend=_KillsAnActor(recipe, actors=2, retries=2), progress=False)
    _same_collection(out, local_run)
    assert len(pq.read_table(out / "part-000003.parquet")) == CHUNK * len(tiny_toy.arms)


def test_a_measured_evaluation_on_ray_decodes_what_the_local_backend_decodes(ray_session, recipe, tmp_path):
    narrowed = WorldRecipe(env=recipe.env, env_args=recipe.env_args, options=recipe.options,
                           arms=("ar", "generalist", "prompt-lookup"))
    world = narrowed.open()
    assert world.arms.names == ["ar", "generalist", "prompt-lookup"]
    queries = world.queries(7, split="test", seed=2)
    sets = [[0], [0, 1], [2, 0], [0, 1, 2], [1, 0], [0, 2], [0]]
    local, local_rows = measure_arms(world, queries, sets, tmp_path / "local", chunk_size=2, progress=False)
    ray_feedback, ray_rows = measure_arms(world, queries, sets, tmp_path / "ray", chunk_size=2, progress=False,
                                          backend="ray", backend_options={"recipe": narrowed, "actors": 2})
    assert sorted(p.name for p in (tmp_path / "ray").glob("part-*.parquet")) == [f"part-{i:06d}.parquet"
                                                                                 for i in range(4)]
    untimed = [c for c in local_rows.columns if c not in TIMING]
    assert set(untimed) == {c for c in ray_rows.columns if c not in TIMING} and "target_calls" in untimed
    for name in untimed:
        assert (local_rows.columns[name] == ray_rows.columns[name]).all(), name
    assert (local_rows.actions == ray_rows.actions).all() and (local_rows.query_ids == ray_rows.query_ids).all()
    assert np.isnan(ray_feedback.seconds).sum() == np.isnan(local.seconds).sum() == 21 - 13
    assert all(m.equals_ar for m in ray_feedback.measurements)
    assert (np.isfinite(ray_feedback.ar_seconds) & (ray_feedback.ar_seconds > 0)).all()


def test_actors_refuse_a_world_with_other_arms_than_the_job(tiny_toy, recipe):
    missing = WorldRecipe(env=recipe.env, env_args=recipe.env_args, options=recipe.options, arms=("ar", "no-such"))
    with pytest.raises(ValueError, match=r"no arms \['no-such'\]"):
        missing.open()
    narrowed = WorldRecipe(env=recipe.env, env_args=recipe.env_args, options=recipe.options, arms=("ar", "generalist"))
    actors_world = narrowed.open()  # as an actor opens it
    queries = tiny_toy.queries(2, split="test", seed=3)
    names = tuple(tiny_toy.arms.names)
    evaluation = MeasuredEvaluation(queries, ((0,), (0, 1)), names)
    collection = CollectionWork(queries, None, True, None, names)
    for job, what in ((evaluation, "evaluation"), (collection, "collection")):
        with pytest.raises(ValueError, match=rf"the world's arms \['ar', 'generalist'\] are not the {what}'s "
                                             rf"\['ar', .*: open the world the {what} was made for"):
            job.rows_on(actors_world)


def test_an_actor_opens_the_world_with_its_threads_and_without_progress_bars(recipe):
    actor = _ChunkActor(replace(recipe, options={"threads": 1, "progress": True}), threads=2)
    assert actor.world.decoder.threads == actor.world.threads == 2 and not actor.world.progress


class _FakeRay:
    """The calls ``RayBackend.start`` makes to Ray, recorded, with a fault injected at ``fault``."""

    def __init__(self, fault: str) -> None:
        self.fault, self.calls, self.initialized = fault, [], False

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fault:
            raise RuntimeError(f"injected fault: {name}")

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **options: Any) -> None:
        self._call("init")
        self.initialized = True

    def shutdown(self) -> None:
        self.calls.append("shutdown")

    def remote(self, **options: Any) -> Any:
        def actor(*args: Any) -> str:
            handle = f"actor {sum(c.startswith('actor') for c in self.calls)}"
            self._call(handle)
            return handle

        return lambda cls: SimpleNamespace(remote=actor)

    def kill(self, handle: str) -> None:
        self.calls.append(f"kill {handle}")

    def put(self, job: Any) -> str:
        self._call("put")
        return "job"


@pytest.mark.parametrize(("fault", "calls"), [
    ("init", ["init", "shutdown"]),
    ("actor 1", ["init", "actor 0", "actor 1", "kill actor 0", "shutdown"]),
    ("put", ["init", "actor 0", "actor 1", "put", "kill actor 0", "kill actor 1", "shutdown"]),
    ("job", ["init", "actor 0", "actor 1", "put", "job", "kill actor 0", "kill actor 1", "shutdown"]),
])
def test_a_failure_while_starting_or_running_stops_the_actors_started_and_the_ray_it_started(recipe, fault, calls):
    backend = RayBackend(recipe, actors=2)
    backend.ray = fake = _FakeRay(fault)
    with pytest.raises(RuntimeError, match=f"injected fault: {fault}"):
        with backend.start(job=None):
            fake._call("job")
    assert sorted(fake.calls) == sorted(calls) and fake.calls[-1] == "shutdown"  # the actors in any order, then Ray
