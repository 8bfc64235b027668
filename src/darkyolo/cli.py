"""The ``darkyolo`` command: thin subcommands, each in ``darkyolo.commands.<name>``.

Each command module exposes ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``.
A :class:`~darkyolo.errors.DarkyoloError`, an :class:`OSError` (a missing folder, a full disk) or
a bad option value prints as one line on stderr with exit status 2; any other exception prints as
one line naming its type with exit status 1. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import difflib
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


def _chosen_parser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The innermost (sub)parser that read ``args``: ``darkyolo classify train``'s for
    ``classify train ...``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _chosen_parser(action.choices[chosen], args)
    return parser


def _refuse_unknown(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]
) -> NoReturn:
    """One usage line from the command that was given ``extras``, with the closest known option:
    ``darkyolo detect: error: unrecognized option --conff (did you mean --conf?)``."""
    command = _chosen_parser(parser, args)
    options = [word for word in extras if word.startswith("-")]
    if not options:
        command.error(f"unrecognized arguments: {' '.join(extras)}")
    word = options[0].split("=", 1)[0]
    known = [s for action in command._actions for s in action.option_strings if s.startswith("--")]
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    command.error(f"unrecognized option {word}{hint}")


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
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _refuse_unknown(parser, args, extras)
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
    except KeyboardInterrupt as stop:  # a command may say what was kept (train: last.pt)
        note = f"; {stop}" if str(stop) else ""
        print(f"darkyolo {args.command}: interrupted{note}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
