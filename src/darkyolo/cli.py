"""The ``darkyolo`` command: thin subcommands, each in ``darkyolo.commands.<name>``.

Each command module exposes ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``.
A :class:`~darkyolo.errors.DarkyoloError`, an :class:`OSError` (a missing folder, a full disk) or
a bad option value prints as one line on stderr with exit status 2; any other exception prints as
one line naming its type with exit status 1. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from darkyolo.errors import DarkyoloError, user_message

#: subcommand name -> module under darkyolo.commands
COMMANDS: dict[str, str] = {
    "detect": "detect",
    "train": "train",
    "val": "val",
    "anchors": "anchors",
    "convert": "convert",
    "check": "check",
    "export": "export",
    "info": "info",
    "serve": "serve",
    "classify": "classify",
}


def _available_commands() -> dict[str, object]:
    modules = {}
    for name, module in COMMANDS.items():
        try:
            modules[name] = importlib.import_module(f"darkyolo.commands.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"darkyolo.commands.{module}":
                raise
    return modules


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line that points to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="darkyolo", description="YOLOv2/YOLOv3 with Darknet-exact .cfg and .weights"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _available_commands().items():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        # SUPPRESS: when absent here, keep the value given before the command name
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except DarkyoloError as error:
        if args.debug:
            raise
        print(f"darkyolo {args.command}: error: {user_message(error)}", file=sys.stderr)
        return 2
    except OSError as error:
        if args.debug:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"darkyolo {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.debug:
            raise
        print(
            f"darkyolo {args.command}: error: unexpected {type(error).__name__}: "
            f"{_first_line(error)} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"darkyolo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
