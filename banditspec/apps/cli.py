"""The ``banditspec`` command line.

Each sub-command lives in the module that owns its work; that module exposes
``add_arguments(parser)``, ``check_arguments(args)`` and ``run(args) -> int``.
The check runs first and raises ``ValueError`` for bad input (an option, a
path that cannot be written, a bad ``world.toml``) before any work is done.
Modules are imported only when their sub-command runs, so ``banditspec --help``
stays fast.

An error ends the command with one line on stderr (exit status 2 for bad
input, 1 for anything else); ``banditspec --debug COMMAND ...`` prints the
traceback too.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

__all__ = ["COMMANDS", "Command", "main"]


class Command(NamedTuple):
    """A sub-command: the module that does its work and a one-line help."""

    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "demo": Command("banditspec.apps.demo", "collect, train and evaluate with real decoding, on your world.toml "
                    "or the embedded toy world"),
    "collect": Command("banditspec.apps.collecting", "collect an offline dataset of every arm on a set of queries"),
    "merge": Command("banditspec.apps.collecting", "merge the shards of collection runs into one dataset"),
    "train": Command("banditspec.apps.training", "train a selector on a collected dataset and save it"),
    "compare": Command("banditspec.apps.compare", "compare learners on one environment over several seeds"),
    "serve": Command("banditspec.apps.serving.command", "serve an OpenAI-compatible endpoint that picks the arm of "
                     "every request with a saved selector"),
    "reproduce": Command("banditspec.apps.reproduce", "test one of the paper's claims with real decoding in the toy world"),
}


def _hook(module: ModuleType, verb: str, command: str, noun: str = "") -> Callable[..., Any]:
    """``module.<verb>_<command>[_<noun>]``, or ``module.<verb>[_<noun>]`` for a module serving one command."""
    suffix = f"_{noun}" if noun else ""
    return getattr(module, f"{verb}_{command}{suffix}", None) or getattr(module, f"{verb}{suffix}")


def _fail(command: str, error: Exception, debug: bool) -> int:
    """Print ``error`` as one line (after its traceback with ``debug``); 2 for bad input, 1 otherwise."""
    if debug:
        traceback.print_exception(error)
    bad_input = isinstance(error, (ValueError, KeyError, OSError))
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    if not bad_input:
        message = f"{type(error).__name__}: {message}" + ("" if debug else " (rerun with --debug for the traceback)")
    print(f"banditspec {command}: error: {message}", file=sys.stderr)
    return 2 if bad_input else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``banditspec`` console script.

    A module serving several sub-commands names its functions
    ``add_<command>_arguments`` / ``check_<command>_arguments`` /
    ``run_<command>``; a module serving one may name them ``add_arguments`` /
    ``check_arguments`` / ``run``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="banditspec", description="Per-query draft selection for speculative decoding.")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error, not only its message")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((word for word in argv if word in COMMANDS), None)
    for name, command in COMMANDS.items():
        command_parser = sub.add_parser(name, help=command.help, description=command.help)
        command_parser.set_defaults(_command=name)
        if name == chosen:
            _hook(importlib.import_module(command.module), "add", name, "arguments")(command_parser)
    args = parser.parse_args(argv)
    command = COMMANDS[args._command]
    module = importlib.import_module(command.module)
    try:
        _hook(module, "check", args._command, "arguments")(args)
        return int(_hook(module, "run", args._command)(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; what was written so far is kept", file=sys.stderr)
        return 130
    except Exception as error:  # every error ends as one line, its traceback only with --debug
        return _fail(args._command, error, args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
