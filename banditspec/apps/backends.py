"""``--backend`` and the ``--ray-*`` options of ``banditspec collect``, ``demo`` and ``reproduce``.

``--backend local`` (the default) computes the chunks of the collection and
of the measured evaluation in this process (the evaluation in its
``--workers``); ``--backend ray`` on the actors of a Ray cluster
(:mod:`banditspec.speculative.backends.ray_backend`), which open the world
again from the same world options. The Ray options come from the
world.toml's ``[ray]`` table (``--config``), then from ``--ray-*`` (which win).
"""

from __future__ import annotations

import argparse
from typing import Any

from banditspec.apps.checks import positive_int
from banditspec.speculative.backends import BACKENDS, create_backend
from banditspec.speculative.world import WorldRecipe, load_world_config

__all__ = ["add_backend_arguments", "backend_options", "check_backend_arguments"]

#: ``--ray-*`` option -> the ray backend's keyword (also the ``[ray]`` key).
_RAY_OPTIONS = {"ray_address": "address", "ray_actors": "actors", "ray_cpus_per_actor": "cpus_per_actor",
                "ray_gpus_per_actor": "gpus_per_actor", "ray_memory_gb": "memory_gb"}


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and the ``--ray-*`` options."""
    parser.add_argument("--backend", default="local", choices=BACKENDS.names(),
                        help="where the chunks of the collection and of the measured evaluation are computed: this "
                             "process (local) or Ray actors (ray; pip install 'banditspec[ray]', docs/ray.md)")
    ray = parser.add_argument_group("ray backend (default: the world.toml's [ray] table, else 2 actors of 1 CPU)")
    ray.add_argument("--ray-address", default=None,
                     help="cluster to join, e.g. auto (default: auto when RAY_ADDRESS is set, else a local Ray)")
    ray.add_argument("--ray-actors", type=positive_int, default=None, help="actors, each loading the models once")
    ray.add_argument("--ray-cpus-per-actor", type=float, default=None, help="CPUs per actor (its torch threads)")
    ray.add_argument("--ray-gpus-per-actor", type=float, default=None, help="GPUs per actor (fractions share one)")
    ray.add_argument("--ray-memory-gb", type=float, default=None, help="memory Ray reserves per actor, in GiB")


def check_backend_arguments(args: argparse.Namespace, recipe: WorldRecipe) -> None:
    """Build the backend once, before any model loads: ``--ray-*`` need ``--backend ray``, Ray must be installed.

    Raises
    ------
    ValueError
        For ``--ray-*`` options without ``--backend ray``, or one out of range.
    ImportError
        For ``--backend ray`` without Ray, naming ``pip install 'banditspec[ray]'``.
    """
    given = [f"--{name.replace('_', '-')}" for name in _RAY_OPTIONS if getattr(args, name) is not None]
    if given and args.backend != "ray":
        raise ValueError(f"{', '.join(given)} configure the ray backend: add --backend ray")
    create_backend(args.backend, **backend_options(args, recipe))


def backend_options(args: argparse.Namespace, recipe: WorldRecipe) -> dict[str, Any]:
    """The keyword arguments of ``args.backend``: none for ``local``; for ``ray`` the recipe and its resources."""
    if args.backend != "ray":
        return {}
    config = getattr(args, "config", None)  # reproduce opens registered worlds only
    table = load_world_config(config).ray if config is not None else {}
    given = {key: getattr(args, name) for name, key in _RAY_OPTIONS.items() if getattr(args, name) is not None}
    return {**table, **given, "recipe": recipe}
