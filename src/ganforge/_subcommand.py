"""What every ``ganforge`` command line shares: an argparse parser whose usage errors are one
line (a :class:`GanforgeError`), and running one subcommand on its own (``python -m
ganforge.latent.cli ...``) with the main CLI's behaviour."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ganforge.errors import GanforgeError

#: every integer a command takes must fit torch's signed 64-bit seeds, counts and sizes
INT64 = (-(2**63), 2**63 - 1)


def int64(text: str) -> int:
    """``type=int`` of every ``ganforge`` argument: an integer that fits 64 bits (``--seed 2**70``
    is a one-line usage error, not torch's "Overflow when unpacking long long")."""
    value = int(text)  # not an integer: argparse's "invalid int value"
    if not INT64[0] <= value <= INT64[1]:
        raise argparse.ArgumentTypeError(f"{text[:24]}{'...' if len(text) > 24 else ''} does not fit a "
                                         "64-bit integer (pass a number below 2**63)")
    return value


int64.__name__ = "int"  # argparse names the type in "invalid int value: 'x'"


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (a :class:`GanforgeError`) and whose
    ``type=int`` arguments are 64-bit integers (:func:`int64`), in every subcommand and group."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.register("type", int, int64)

    def error(self, message: str) -> None:  # one line via GanforgeError, exit 2 (not argparse's usage dump)
        raise GanforgeError(message, f"see `{self.prog} --help`")


def run_alone(command: str, add_parser: Callable[[argparse._SubParsersAction], object],
              run: Callable[[argparse.Namespace], int], description: str,
              argv: Sequence[str] | None = None) -> int:
    """``ganforge COMMAND ARGV...`` with only that subcommand registered: one error line on stderr
    and status 2 for a user mistake, like :func:`ganforge.cli.main`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = OneLineParser(prog="ganforge", description=description)
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser))
    try:
        return run(parser.parse_args([command, *argv]))
    except GanforgeError as err:
        print(f"ganforge: error: {err}", file=sys.stderr)
        return 2
