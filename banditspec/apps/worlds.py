"""Which world a command runs in: the user's ``world.toml``, or a registered world by name.

``--config world.toml`` opens a :class:`~banditspec.speculative.world.ConfiguredWorld`
(the user's target, drafts, arms and prompts); ``--env NAME`` creates the
world registered under ``NAME`` in the ``banditspec.envs`` entry points, with
``--env-arg KEY=VALUE`` keyword arguments (values read as JSON where they
parse, e.g. ``--env-arg config=tiny --env-arg block_size=4``). Both are
checked before any model loads.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from banditspec.apps.checks import environment_class
from banditspec.speculative.world import WorldRecipe, load_world_config

__all__ = ["add_world_arguments", "check_world_arguments", "describe_world", "env_kwargs", "open_world_from",
           "split_size", "world_recipe"]


def add_world_arguments(parser: argparse.ArgumentParser, *, default_env: str) -> None:
    """``--config`` (a world.toml) or ``--env`` (a registered world, default ``default_env``) and ``--env-arg``."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--config", type=Path, default=None, metavar="WORLD_TOML",
                        help="your world: a world.toml naming the target, drafts, arms and prompts (docs/world-config.md)")
    choice.add_argument("--env", default=None, help=f"a registered world instead (default: {default_env})")
    parser.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="keyword argument of the --env world, e.g. config=tiny (repeatable)")
    parser.set_defaults(default_env=default_env)


def env_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as keyword arguments; a value that parses as JSON is taken as such."""
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--env-arg must look like KEY=VALUE, got {pair!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def check_world_arguments(args: argparse.Namespace) -> None:
    """Check the world options before anything loads: the config file (every key), or the world's name.

    Raises
    ------
    ValueError
        For a bad ``world.toml`` (naming the file and the key), an unknown
        world, ``--env-arg`` given with ``--config``, or a malformed ``--env-arg``.
    """
    if args.config is not None:
        if args.env_arg:
            raise ValueError("--env-arg sets a registered world's arguments; with --config put settings in the "
                             f"world.toml ({args.config})")
        load_world_config(args.config)
    else:
        environment_class(args.env or args.default_env)
        env_kwargs(args.env_arg)


def world_recipe(args: argparse.Namespace, **options: Any) -> WorldRecipe:
    """The world the options name, as a recipe any process can open; ``options`` go to its constructor."""
    if args.config is not None:
        return WorldRecipe(config=str(args.config), options=options)
    return WorldRecipe(env=args.env or args.default_env, env_args=env_kwargs(args.env_arg), options=options)


def open_world_from(args: argparse.Namespace, **options: Any) -> Any:
    """The world the options name; ``options`` (``threads``, ``workers``, ...) go to its constructor."""
    return world_recipe(args, **options).open()


def describe_world(args: argparse.Namespace) -> dict[str, Any]:
    """The world options as JSON for reports and manifests."""
    return world_recipe(args).describe()


def split_size(world: Any, split: str) -> int | None:
    """How many queries ``split`` of ``world`` holds, or None where the world draws as many as asked."""
    size = getattr(world, "split_size", None)
    return None if size is None else size(split)
