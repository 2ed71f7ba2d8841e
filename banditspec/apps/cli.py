"""The ``banditspec`` command line.

Each sub-command lives in the module that owns its work; that module exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their sub-command runs, so ``banditspec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("banditspec.apps.demo", "build the toy world, collect, train, evaluate with real decoding"),
    "collect": ("banditspec.speculative.collect", "collect an offline dataset of every arm on a set of queries"),
    "merge": ("banditspec.speculative.collect", "merge the shards of collection runs into one dataset"),
    "compare": ("banditspec.apps.compare", "compare learners on one environment over several seeds"),
    "reproduce": ("banditspec.apps.reproduce", "test one of the paper's claims with real decoding in the toy world"),
}


def _add_arguments(command: argparse.ArgumentParser, module_name: str, name: str) -> None:
    module = importlib.import_module(module_name)
    adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
    adder(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``banditspec`` console script.

    A module serving several sub-commands names its functions
    ``add_<command>_arguments`` / ``run_<command>``; a module serving one may
    name them ``add_arguments`` / ``run``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="banditspec", description="Per-query draft selection for speculative decoding.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_command=name)
        if name == chosen:
            _add_arguments(command, module_name, name)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args._command][0])
    runner = getattr(module, f"run_{args._command}", None) or module.run
    try:
        return int(runner(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; what was written so far is kept", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"banditspec {args._command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
