"""``ganforge play`` and ``ganforge board``: argument parsing and start-up (the servers live in
:mod:`ganforge.web.play` and :mod:`ganforge.web.board`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganforge.errors import GanforgeError


def add_web_parsers(subparsers: argparse._SubParsersAction) -> None:
    play = subparsers.add_parser("play", help="a live GAN playground in the browser (needs the [web] extra)")
    play.add_argument("--runs", default="runs", help="folder where Save writes and Load reads runs "
                                                     "(default ./runs)")
    _server_options(play, 8765)
    board = subparsers.add_parser("board", help="a read-only dashboard of the runs under a folder "
                                                "(needs the [web] extra)")
    board.add_argument("runs_dir", help="folder holding run directories (searched 3 levels deep)")
    _server_options(board, 8766)


def _server_options(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port}; 0: any free one)")
    parser.add_argument("--token", help="access token (default: none on 127.0.0.1, random otherwise)")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="also accept pages of this origin, e.g. http://localhost:3000 (repeatable; "
                             "default: only the server's own pages)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="also answer requests addressed to this host name (repeatable; e.g. the "
                             "machine's name when it listens on its own address)")


def cmd_play(args: argparse.Namespace) -> int:
    from ganforge._io import check_output_dir
    from ganforge.web.server import check_origins, checked_port, require_web, serve, token_for

    require_web()
    origins = check_origins(args.allow_origin)
    runs = Path(args.runs)
    check_output_dir(runs, "--runs folder")
    port = checked_port(args.host, args.port)
    token = token_for(args.host, args.token)
    from ganforge.web.play import create_play_app

    serve(create_play_app(runs), host=args.host, port=port, path="/", token=token, what="ganforge play",
          allow_hosts=args.allow_host, allow_origins=origins)
    return 0


def cmd_board(args: argparse.Namespace) -> int:
    from ganforge.web.server import check_origins, checked_port, require_web, serve, token_for

    require_web()
    origins = check_origins(args.allow_origin)
    runs = Path(args.runs_dir)
    if not runs.is_dir():
        raise GanforgeError(f"runs folder {runs} does not exist",
                            "pass the folder that holds your run directories")
    port = checked_port(args.host, args.port)
    token = token_for(args.host, args.token)
    from ganforge.web.board import create_board_app

    serve(create_board_app(runs), host=args.host, port=port, path="/", token=token, what="ganforge board",
          allow_hosts=args.allow_host, allow_origins=origins)
    return 0
