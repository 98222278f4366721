"""``probe serve``: the command line of the warm fork-server (see :mod:`._server`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from probe._errors import ProbeError
from probe.commands.serve._protocol import SOCKET_ENV, check_socket_dir, socket_path, supported

__all__ = ["add_parser", "run"]


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be >= 0 minutes (0 = never), got {text!r}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``probe serve`` to the top-level subparsers."""
    parser = subparsers.add_parser(
        "serve",
        help="keep torch and the models' code imported; probe render runs through it (Linux)",
        description="Import torch, transformers, timm and matplotlib once and serve "
        "'probe render' from forked workers over a per-user Unix socket, so each render skips "
        "the imports. Runs in the foreground until Ctrl-C, SIGTERM or the idle timeout. "
        "Every other command, and any render the server cannot serve exactly as a fresh "
        "process would (other probe code, another import-time environment), runs locally.",
    )
    parser.add_argument(
        "--idle-timeout", type=_minutes, default=60.0, metavar="MINUTES",
        help="stop after this many minutes without a request (default 60; 0 = never)",
    )
    parser.add_argument(
        "--socket", metavar="PATH",
        help=f"socket path (default: ${SOCKET_ENV}, else $XDG_RUNTIME_DIR/probe/serve.sock, "
        f"else /tmp/probe-<uid>/serve.sock); clients find it through ${SOCKET_ENV}",
    )
    parser.set_defaults(run=run)
    return parser


def run(ns: argparse.Namespace) -> int:
    """Run the server in the foreground; its exit code."""
    if not supported():
        raise ProbeError("probe serve runs on Linux only (it forks and passes file "
                         "descriptors over a Unix socket); run probe render directly")
    entry = getattr(ns, "main", None)
    if entry is None:
        raise ProbeError("probe serve must be started from the probe command line")
    if ns.socket is not None and not ns.socket.strip():  # "" served on the default socket
        raise ProbeError("--socket is empty: drop it for the default socket or pass a path")
    path = os.path.abspath(ns.socket) if ns.socket else socket_path(os.environ)
    check_socket_dir(path, own=not ns.socket and not os.environ.get(SOCKET_ENV))
    from probe.commands._backend import import_matplotlib
    from probe.commands.serve._server import serve

    import_matplotlib()  # a bad MPLBACKEND is one line, not an internal error

    return serve(path, ns.idle_timeout, entry)
