"""``banditspec serve``: an OpenAI-compatible server that picks the arm of every request with a saved selector.

``banditspec serve --config world.toml --policy DIR`` (or ``--env NAME``)
loads the world's models and the selector saved by ``banditspec train`` (or
the demo), checks that they fit, and serves on 127.0.0.1:8000 until
interrupted. Everything the options name is checked before any model loads:
a corrupt policy folder is one line naming the file and the field.

The latency model that prices AR's reference seconds (and every arm for
``--online full``) is ``--latency FILE``, else the ``latency.json`` of the
collection the selector was trained on, else one calibrated at start-up on
``--calibration`` training queries of the world.

Needs the ``serve`` extra: ``pip install 'banditspec[serve]'``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from banditspec.apps.checks import calibration_count, non_negative_int, output_folder, positive_int
from banditspec.apps.serving.breaker import CircuitBreaker
from banditspec.apps.serving.decisions import DecisionLog
from banditspec.apps.serving.router import ONLINE, Router
from banditspec.apps.serving.snapshots import Snapshots
from banditspec.apps.training import Selector, load_selector
from banditspec.apps.worlds import add_world_arguments, check_world_arguments, open_world_from
from banditspec.speculative.collect import calibrate, draw_queries
from banditspec.speculative.latency import LatencyModel

__all__ = ["SERVE_EXTRA", "add_arguments", "check_arguments", "find_latency", "router_from", "run", "settings_from"]

#: What ``banditspec serve`` imports beyond the core: the ``serve`` extra.
SERVE_EXTRA = ("fastapi", "uvicorn", "prometheus_client")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec serve``."""
    add_world_arguments(parser, default_env="toy")
    parser.add_argument("--policy", required=True, type=Path, help="a saved selector folder (banditspec train --out)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=positive_int, default=8000)
    parser.add_argument("--api-key", default=os.environ.get("BANDITSPEC_API_KEY"),
                        help="bearer token the /v1 endpoints require (default: $BANDITSPEC_API_KEY; none if unset)")
    parser.add_argument("--model-name", default="banditspec", help="the model id clients send (default: banditspec)")
    parser.add_argument("--max-prompt-chars", type=positive_int, default=16_000)
    parser.add_argument("--max-queue", type=positive_int, default=16,
                        help="requests waiting or decoding at once; more are answered 429")
    parser.add_argument("--log", type=Path, default=None,
                        help="folder of the decision log (Parquet shards with propensities; default: no log)")
    parser.add_argument("--flush-rows", type=positive_int, default=32, help="decisions per log shard")
    parser.add_argument("--no-log-prompts", action="store_true",
                        help="leave the prompt texts out of the decision log (hashed-text learners then cannot "
                             "train on it)")
    parser.add_argument("--epsilon", type=float, default=0.0,
                        help="uniform exploration mixed into the policy's distribution (default 0)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds a speculative arm may take before AR takes over (default: none)")
    parser.add_argument("--breaker-failures", type=positive_int, default=3,
                        help="consecutive failures that take an arm out of service")
    parser.add_argument("--breaker-cooldown", type=float, default=30.0,
                        help="seconds before an arm taken out is tried again")
    parser.add_argument("--online", default="off", choices=ONLINE,
                        help="learn while serving: from the served arm (bandit) or every arm counterfactually (full)")
    parser.add_argument("--snapshots", type=Path, default=None,
                        help="folder of policy snapshots written while learning online")
    parser.add_argument("--snapshot-every", type=positive_int, default=100, help="online updates between snapshots")
    parser.add_argument("--latency", type=Path, default=None, help="latency.json of a collection (see above)")
    parser.add_argument("--calibration", type=calibration_count, default=8,
                        help="queries measured to calibrate a latency model when there is none")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads while decoding")
    parser.add_argument("--seed", type=non_negative_int, default=0)


def check_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec serve``'s options before any model loads: the extra, the world, the selector, the limits."""
    missing = [name for name in SERVE_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"banditspec serve needs {', '.join(missing)}: pip install 'banditspec[serve]'")
    check_world_arguments(args)
    load_selector(args.policy)
    settings_from(args)
    if args.latency is not None:
        _read_latency(args.latency)
    if args.snapshots is not None:
        if args.online == "off":
            raise ValueError("--snapshots saves a policy that learns online: give --online bandit or full")
        output_folder(args.snapshots, "--snapshots")
    if args.log is not None:
        output_folder(args.log, "--log")
    if args.time_budget is not None and not args.time_budget >= 0:
        raise ValueError(f"--time-budget must be seconds >= 0, got {args.time_budget}")
    if not 0 <= args.epsilon <= 1:
        raise ValueError(f"--epsilon must be in [0, 1], got {args.epsilon}")


def settings_from(args: argparse.Namespace) -> Any:
    """The :class:`~banditspec.apps.serving.server.ServerSettings` the options give."""
    from banditspec.apps.serving.server import ServerSettings

    return ServerSettings(model_name=args.model_name, api_key=args.api_key, max_prompt_chars=args.max_prompt_chars,
                          queue_depth=args.max_queue)


def _read_latency(path: Path) -> LatencyModel:
    try:
        return LatencyModel.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not a latency model (latency.json of a collection): {error}") from error


def find_latency(selector: Selector, given: Path | None) -> LatencyModel | None:
    """``given``, else the ``latency.json`` of the selector's training collection if it prices its arms, else None."""
    if given is not None:
        return _read_latency(given)
    source = selector.description.get("source", {})
    for key in ("data", "train_data"):
        folder = Path(str(source.get(key, "")))
        if source.get(key) and (folder / "latency.json").is_file():
            model = _read_latency(folder / "latency.json")
            if model.arm_names == selector.arms:
                return model
    return None


def router_from(args: argparse.Namespace, world: Any) -> Router:
    """The router the options describe, on ``world`` (calibrating a latency model if none is found)."""
    selector = load_selector(args.policy)
    latency = find_latency(selector, args.latency)
    if latency is None:
        latency = calibrate(world, draw_queries(world, args.calibration, split="train", seed=args.seed + 10_000))
    names = world.arms.names
    plain = [k for k, arm in enumerate(world.arms) if world.decoder.check(arm).plain]
    breaker = CircuitBreaker(len(names), threshold=args.breaker_failures, cooldown=args.breaker_cooldown,
                             protected=plain)
    log = None if args.log is None else DecisionLog(args.log, names, flush_rows=args.flush_rows,
                                                          prompts=not args.no_log_prompts)
    snapshots = None if args.snapshots is None else Snapshots(args.snapshots, selector.description)
    return Router(world, selector, latency=latency, epsilon=args.epsilon, time_budget=args.time_budget,
                  breaker=breaker, log=log, online=args.online, snapshots=snapshots,
                  snapshot_every=args.snapshot_every, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    """Run ``banditspec serve`` until interrupted (after :func:`check_arguments`)."""
    import uvicorn

    from banditspec.apps.serving.server import create_app

    world = open_world_from(args, threads=args.threads)
    app = create_app(router_from(args, world), settings_from(args))
    print(f"serving {args.policy} on http://{args.host}:{args.port}/v1 (model {args.model_name!r})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
