"""What every ``ganforge`` command line shares: an argparse parser whose usage errors are one
line (a :class:`GanforgeError`), and running one subcommand on its own (``python -m
ganforge.latent.cli ...``) with the main CLI's behaviour."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ganforge.errors import GanforgeError


class OneLineParser(argparse.ArgumentParser):
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
