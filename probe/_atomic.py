"""One atomic file writer for every output probe writes (figures, HTML views, JSON)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from probe._errors import ProbeError

__all__ = ["atomic_write", "creation_error", "dangling_link", "nearest_existing", "output_path"]


def dangling_link(path: str | os.PathLike[str]) -> str | None:
    """``"is a symbolic link to 'X', which does not exist"`` when ``path`` is a link that leads
    nowhere (the end of a chain of links named too), else ``None``: for an input's "does not
    exist" message, which would otherwise name a path that plainly is there (``ls`` shows it)."""
    if not os.path.islink(path) or os.path.exists(path):
        return None
    link = os.readlink(path)
    final = os.path.realpath(path)
    # the link's target read from the folder it really sits in (a parent may be a link too)
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    direct = os.path.normpath(os.path.join(parent, link))
    via = "" if direct == final else f" (and on to {final!r})"
    return f"is a symbolic link to {link!r}{via}, which does not exist"


def nearest_existing(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists (what a writer would create in)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def creation_error(folder: Path, *, directory: bool = False) -> str | None:
    """Why nothing can be created in ``folder``, or ``None`` when it can.

    ``os.access`` reads permission bits, which root bypasses, so as root it calls ``/proc``,
    ``/sys`` and similar places writable although creating a file there fails. This tries it:
    a temporary file (or, with ``directory=True``, a temporary folder: what a writer that
    creates missing folders does first) is created in ``folder`` the way :func:`atomic_write`
    creates its own, and removed at once; nothing is left behind.

    Args:
        folder: an existing folder.
        directory: try a folder instead of a file.

    Returns:
        The operating system's reason (``"No such file or directory"``, ...) or ``None``.
    """
    made = None
    try:
        if directory:
            made = tempfile.mkdtemp(prefix=".probe-check.", dir=folder)
        else:
            fd, made = tempfile.mkstemp(prefix=".probe-check.", suffix=".tmp", dir=folder)
            os.close(fd)
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        if made is not None:
            try:
                os.rmdir(made) if directory else os.unlink(made)
            except OSError:
                pass
    return None


def output_path(path: str | bytes | os.PathLike[Any], what: str) -> Path:
    """The file a save function will write: ``path`` as a ``Path`` (bytes decoded as the file
    system does, ``~`` expanded), its folder checked to exist and be a folder, the file itself
    not a folder.

    Args:
        path: the file name the caller passed.
        what: names the output in error messages (``"figure"``, ``"view"``).

    Raises:
        ProbeError: a path of another type, a missing folder, a folder that is a file, or a
            target that is a folder.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ProbeError(
            f"cannot save {what}: the path must be a string or a path, got {type(path).__name__}"
        )
    target = Path(os.fsdecode(os.fspath(path))).expanduser()
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        ancestor = nearest_existing(directory)
        if ancestor.exists() and not ancestor.is_dir():
            raise ProbeError(
                f"cannot save {what}: {str(ancestor)!r} is a file, not a folder; choose "
                "another path"
            )
        raise ProbeError(
            f"cannot save {what}: directory {str(directory)!r} does not exist; create it first"
        )
    if target.is_dir():
        raise ProbeError(f"cannot save {what}: {str(target)!r} is a directory; pass a file name")
    return target


def atomic_write(target: Path, write: Callable[[IO[Any]], None], *, what: str,
                 binary: bool) -> Path:
    """Write ``target`` through a temporary file in its folder, then ``os.replace`` it.

    Readers never see a half-written file; on any error the temporary file is removed and
    ``target`` is left as it was. The file gets the usual mode (``0o666`` less the umask),
    not ``mkstemp``'s ``0o600``. The folder must exist (callers check or create it). A
    symbolic link is written through (the file it names is replaced, the link stays); a target
    that exists and is no regular file (``/dev/null``, a FIFO) is refused: the rename would
    put a regular file in its place.

    Args:
        target: the file to write.
        write: ``write(file_object)`` fills the temporary file.
        what: names the output in error messages (``"figure"``, ``"view"``, ...).
        binary: open the temporary file in binary mode (else UTF-8 text).

    Raises:
        ProbeError: the folder is not writable, the target is no regular file, or an OS
            error while writing. Other errors
            raised by ``write`` propagate unchanged.
    """
    named = target
    if target.is_symlink():  # write through the link: os.replace would replace the link
        target = Path(os.path.realpath(target))
    if target.exists() and not target.is_file():  # /dev/null became a regular file (as root)
        raise ProbeError(
            f"cannot save {what} to {str(target)!r}: it is not a regular file (a device, pipe "
            "or socket) and would be replaced by one; pass a file name"
        )
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ProbeError(
            f"cannot save {what}: directory {str(directory)!r} is not writable "
            f"({exc.strerror or exc}); choose another output path"
        ) from None
    try:
        text_options = {} if binary else {"encoding": "utf-8"}
        with os.fdopen(fd, "wb" if binary else "w", **text_options) as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ProbeError(
                f"cannot save {what} to {str(target)!r}: {exc.strerror or exc}; check the path "
                "and free space"
            ) from None
        raise
    return named


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` sets it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
