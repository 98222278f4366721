"""What the client and the server of ``probe serve`` share: where the socket lives, what must
match between them (the code fingerprint, the import-time environment) and how messages are
framed. Standard library only: the client runs before anything heavy is imported.

A request is one header (magic, body length) sent with the client's file descriptors 0, 1
and 2 attached (``SCM_RIGHTS``), then a JSON body. The server answers with JSON lines:
``{"refused": reason, "variable": name}``, or ``{"pid": worker}`` and later
``{"exit": code}`` or ``{"signal": number}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
import sys
from collections.abc import Mapping
from typing import Any

from probe._errors import ProbeError
from probe._version import __version__

__all__ = [
    "LOG_ENV", "PACKAGES", "SOCKET_ENV", "check_socket_dir", "fingerprint", "import_env",
    "installed_packages", "peer", "read_message", "read_request", "send_message",
    "send_request", "socket_path", "supported",
]

#: overrides the socket path (tests use it to keep each server to itself)
SOCKET_ENV = "PROBE_SERVE_SOCKET"
#: a file the server appends one JSON line to per request (client and worker pid, exit, CPU)
LOG_ENV = "PROBE_SERVE_LOG"

#: the longest path a Unix socket binds to (``sun_path`` holds 108 bytes on Linux, with its NUL)
_MAX_SOCKET_PATH = 107
_MAGIC = b"PRB1"
_HEADER = struct.Struct("!4sI")
_MAX_BODY = 64 << 20

#: environment variables read by the libraries the server imported once (at import time):
#: a request whose values differ from the server's runs locally
_PREFIXES = (
    "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TOKENIZERS_", "TORCH", "PYTORCH_", "CUDA_",
    "OMP_", "MKL_", "KMP_", "OPENBLAS_", "MPL", "PYTHON", "LD_", "PROBE_", "LC_",
)
_NAMES = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "LANG")
_OWN = ("PROBE_SERVE_",)  # the server's own settings: never compared


def supported() -> bool:
    """``probe serve`` runs on Linux only (fork, ``SO_PEERCRED``, ``SCM_RIGHTS``)."""
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def socket_path(env: Mapping[str, str]) -> str:
    """``$PROBE_SERVE_SOCKET``, else ``$XDG_RUNTIME_DIR/probe/serve.sock``, else
    ``/tmp/probe-<uid>/serve.sock``."""
    if env.get(SOCKET_ENV):
        return os.path.abspath(env[SOCKET_ENV])
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "probe", "serve.sock")
    return os.path.join("/tmp", f"probe-{os.getuid()}", "serve.sock")


def check_socket_dir(path: str, own: bool) -> None:
    """Create the socket's folder (mode 0700) if missing; refuse one that is not ours.

    Args:
        path: the socket path.
        own: the folder is probe's own (the default path): it is also set to mode 0700.
            A folder given with ``--socket``/``$PROBE_SERVE_SOCKET`` keeps its mode (the
            socket itself is created 0600).

    Raises:
        ProbeError: the path is too long for a Unix socket, or the folder is a symbolic link,
            not a folder, or owned by another user.
    """
    size = len(os.fsencode(path))
    if size > _MAX_SOCKET_PATH:  # bind failed after the imports: "cannot listen on ...: None"
        raise ProbeError(
            f"the socket path {path!r} is {size} bytes; a Unix socket path holds at most "
            f"{_MAX_SOCKET_PATH}: pass a shorter --socket PATH, e.g. /tmp/probe-serve.sock"
        )
    folder = os.path.dirname(path) or "."
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ProbeError(f"cannot create the socket folder {folder}: {exc.strerror}; "
                         "pass --socket PATH in a folder of yours") from None
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise ProbeError(f"the socket folder {folder} is not a folder (a link?); remove it or "
                         "pass --socket PATH")
    if info.st_uid != os.getuid():
        raise ProbeError(f"the socket folder {folder} belongs to user id {info.st_uid}, not "
                         "to you; remove it or pass --socket PATH in a folder of yours")
    if own and stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)


def _py_files(folder: str) -> list[tuple[str, int, int]]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                full = os.path.join(root, name)
                try:
                    info = os.stat(full)
                except OSError:
                    continue
                found.append((os.path.relpath(full, folder), info.st_size, info.st_mtime_ns))
    return found


#: the distributions the server imports (or may import) once: an upgrade, downgrade or
#: reinstall of one of them under a running server makes requests run locally
PACKAGES = (
    "torch", "transformers", "timm", "matplotlib", "numpy", "scipy", "accelerate",
    "tokenizers", "safetensors", "huggingface_hub", "pillow",
)


def _normalized(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def installed_packages(path: list[str] | None = None) -> dict[str, str]:
    """``{name: "version mtime_ns"}`` of the :data:`PACKAGES` installed on ``sys.path``.

    Read from the names of the ``NAME-VERSION.dist-info`` (or ``.egg-info``) folders, the first
    on the path winning as for imports: one ``scandir`` per ``sys.path`` folder, about 2 ms,
    where ``importlib.metadata.version`` costs about 80 ms of CPU for the eleven. The folder's
    modification time catches a reinstall of the same version.
    """
    wanted = {_normalized(name) for name in PACKAGES}
    found: dict[str, str] = {}
    for folder in sys.path if path is None else path:
        if not folder or not os.path.isabs(folder):
            continue  # '' and relative entries depend on the working directory
        try:
            entries = os.scandir(folder)
        except OSError:  # a zip file or a missing folder
            continue
        with entries:
            for entry in entries:
                stem, dot, suffix = entry.name.rpartition(".")
                if not dot or suffix not in ("dist-info", "egg-info"):
                    continue
                name, _, version = stem.partition("-")
                key = _normalized(name)
                if key in wanted and key not in found:
                    try:
                        mtime = entry.stat().st_mtime_ns
                    except OSError:
                        mtime = 0
                    found[key] = f"{version} {mtime}"
    return dict(sorted(found.items()))


def fingerprint() -> dict[str, Any]:
    """The interpreter (its real path and ``sys.prefix``), probe's version, the size and
    modification time of every ``.py`` file of the installed probe (``probe``,
    ``probe.viewers``, ``probe.recipes``) and the installed versions of the libraries the
    server imports (:func:`installed_packages`): an edited editable install or a ``pip
    install -U torch`` gives another fingerprint, so a server never runs stale code."""
    import importlib.util

    import probe

    folders = list(probe.__path__)
    for sub in ("probe.viewers", "probe.recipes"):
        spec = importlib.util.find_spec(sub)
        folders += list(spec.submodule_search_locations or ()) if spec else []
    digest = hashlib.sha256()
    for folder in folders:
        digest.update(os.path.abspath(folder).encode("utf-8", "surrogateescape") + b"\0")
        for name, size, mtime in _py_files(folder):
            digest.update(f"{name}\0{size}\0{mtime}\0".encode("utf-8", "surrogateescape"))
    python = f"{os.path.realpath(sys.executable)} ({sys.prefix})"  # venvs share executables
    return {"python": python, "version": __version__, "files": digest.hexdigest(),
            "packages": installed_packages()}


def import_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that the server's imported libraries read when imported."""
    return {
        k: v for k, v in env.items()
        if (k.startswith(_PREFIXES) or k in _NAMES) and not k.startswith(_OWN)
    }


def peer(sock: socket.socket) -> tuple[int, int]:
    """``(pid, uid)`` of the process at the other end of a Unix socket (``SO_PEERCRED``)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    return pid, uid


def send_request(sock: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Send ``request`` with ``fds`` attached to its header."""
    body = json.dumps(request).encode("utf-8", "surrogateescape")
    socket.send_fds(sock, [_HEADER.pack(_MAGIC, len(body))], fds)
    sock.sendall(body)


def _recv_exact(sock: socket.socket, n: int, start: bytes = b"") -> bytes:
    data = bytearray(start)
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError("the connection closed in the middle of a message")
        data += chunk
    return bytes(data)


def read_request(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The request and the file descriptors that came with it (the caller closes them)."""
    head, fds, _, _ = socket.recv_fds(sock, _HEADER.size, 3)
    try:
        magic, size = _HEADER.unpack(_recv_exact(sock, _HEADER.size, head))
        if magic != _MAGIC or size > _MAX_BODY or len(fds) != 3:
            raise ConnectionError("not a probe serve request")
        request = json.loads(_recv_exact(sock, size).decode("utf-8", "surrogateescape"))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return request, fds


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    """One JSON line."""
    sock.sendall(json.dumps(message).encode() + b"\n")


def read_message(stream: Any) -> dict[str, Any]:
    """The next JSON line of ``stream`` (``sock.makefile("rb")``).

    Raises:
        ConnectionError: the connection closed or the line is not a message.
    """
    line = stream.readline()
    if not line.endswith(b"\n"):
        raise ConnectionError("the probe server closed the connection")
    try:
        message = json.loads(line)
    except ValueError:
        raise ConnectionError("the probe server sent something that is not a message") from None
    if not isinstance(message, dict):
        raise ConnectionError("the probe server sent something that is not a message")
    return message
