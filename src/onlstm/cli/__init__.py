"""The `onlstm` command line: argument parsing only.

Every subcommand lives in its own module of this package, exposing
``register(subparsers)`` (adds its parser and sets ``func``). The modules call into the
task modules of the package; nothing outside ``onlstm.cli`` imports from here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from ..errors import UserError

# Subcommand modules, in the order `onlstm --help` lists them.
COMMANDS = [
    "demo",
    "train",
    "evaluate",
    "generate",
    "parse",
    "syneval",
    "parse_eval",
    "serve",
    "logic",
    "import_published",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onlstm",
        description=(
            "Ordered Neurons LSTM: language models whose master forget gate yields "
            "unsupervised constituency trees."
        ),
    )
    parser.add_argument("--version", action="version", version=f"onlstm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _stdout_gone() -> None:
    """The reader of standard output went away (``onlstm generate | head``): send what
    is left to /dev/null so that Python's exit does not complain a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done; 2 a user's mistake or an OS refusal (no space,
    read-only, permission, closed stdin: one ``error:`` line, no traceback); 130 Ctrl-C
    (what was printed or saved so far is kept); 141 standard output closed by its reader."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"onlstm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"onlstm {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _stdout_gone()
        return 141
    except OSError as err:
        if err.errno is None:
            raise
        where = f"{err.filename}: " if err.filename is not None else ""
        print(f"onlstm {args.command}: error: {where}{os.strerror(err.errno)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
