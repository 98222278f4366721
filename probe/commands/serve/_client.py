"""The client side of ``probe serve``: ``probe render`` asks a running server to run it.

Called by the ``probe`` console script before anything heavy is imported. When no server
answers (no socket, nobody listening, another user's socket, a protocol error), or the server
refuses (other code, another import-time environment), the command runs in this process as
always. Once a worker has started, the command is never run a second time here: a broken
connection then ends the command with one line and exit code 1.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys
from collections.abc import Sequence
from typing import Any

from probe.commands.serve import _limits
from probe.commands.serve._protocol import (
    fingerprint,
    peer,
    read_message,
    send_request,
    socket_path,
    supported,
)

__all__ = ["served"]

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _note(text: str) -> None:
    print(f"probe: note: {text}; running here", file=sys.stderr, flush=True)


def _stdio() -> list[list[str | None]]:
    """Encoding and error handler of stdin, stdout and stderr, for the worker's own."""
    return [[getattr(s, "encoding", None), getattr(s, "errors", None)]
            for s in (sys.stdin, sys.stdout, sys.stderr)]


def _connect(path: str) -> socket.socket | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(info.st_mode):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        _note(f"no probe server answers on {path} (a stale socket)")
        return None
    except OSError:
        sock.close()
        return None
    return sock


def served(argv: Sequence[str]) -> int | None:
    """Run ``probe ARGV`` through the probe server, if one of ours runs.

    Returns:
        The command's exit code, or ``None`` when it must run in this process.
    """
    if not supported():
        return None
    try:
        return _served(argv)
    except KeyboardInterrupt:  # before the worker's pid came: nothing to forward it to
        print("probe: interrupted", file=sys.stderr, flush=True)
        return 130


def _served(argv: Sequence[str]) -> int | None:
    path = socket_path(os.environ)
    sock = _connect(path)
    if sock is None:
        return None
    with sock:
        try:
            server_pid, uid = peer(sock)
            if uid != os.getuid():
                _note(f"the socket {path} belongs to user id {uid}, not to you")
                return None
            umask = os.umask(0o022)
            os.umask(umask)
            send_request(sock, {
                "argv": list(argv), "sys_argv": list(sys.argv), "cwd": os.getcwd(),
                "umask": umask, "env": dict(os.environ), "fingerprint": fingerprint(),
                "stdio": _stdio(),
                "unbuffered": bool(getattr(sys.stdout, "write_through", False)),
                "limits": _limits.current(),
            }, [0, 1, 2])
            stream = sock.makefile("rb")
            first = read_message(stream)
        except (OSError, ValueError):  # no worker started: nothing happened yet
            return None
        if "refused" in first:
            _note(f"the probe server (pid {server_pid}) {first['refused']}")
            return None
        if not isinstance(first.get("pid"), int):
            return None
        return _follow(stream, first["pid"], server_pid)


def _follow(stream: Any, worker: int, server_pid: int) -> int:
    """Forward signals to the worker until it ends; its exit code.

    Ctrl-Z (``SIGTSTP``) stops the worker (``SIGSTOP``: the worker's process group is not the
    terminal's and may be orphaned, where the kernel drops ``SIGTSTP``), then this process;
    when the shell continues it (``fg``, ``bg``), the worker continues too.
    """

    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(worker, signum)
        except OSError:  # already gone
            pass

    def stop(signum: int, frame: object) -> None:
        forward(signal.SIGSTOP, frame)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        try:
            os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
        finally:
            signal.signal(signal.SIGTSTP, stop)
            forward(signal.SIGCONT, frame)

    previous = {s: signal.signal(s, forward) for s in (*_FORWARDED, signal.SIGCONT)}
    previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, stop)
    try:
        last = read_message(stream)
    except (OSError, ValueError):
        last = {}
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if isinstance(last.get("exit"), int):
        return int(last["exit"])
    if isinstance(last.get("signal"), int):
        try:
            name = signal.Signals(last["signal"]).name
        except ValueError:
            name = f"signal {last['signal']}"
        print(f"probe: the probe server's worker (pid {worker}) was killed by {name}",
              file=sys.stderr, flush=True)
        return 128 + int(last["signal"])
    print(f"probe: lost the connection to the probe server (pid {server_pid}) while its "
          f"worker (pid {worker}) ran the command; not rerunning it here", file=sys.stderr,
          flush=True)
    return 1
