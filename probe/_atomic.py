"""One atomic file writer for every output probe writes (figures, HTML views, JSON)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from probe._errors import ProbeError

__all__ = ["atomic_write"]


def atomic_write(target: Path, write: Callable[[IO[Any]], None], *, what: str,
                 binary: bool) -> Path:
    """Write ``target`` through a temporary file in its folder, then ``os.replace`` it.

    Readers never see a half-written file; on any error the temporary file is removed and
    ``target`` is left as it was. The file gets the usual mode (``0o666`` less the umask),
    not ``mkstemp``'s ``0o600``. The folder must exist (callers check or create it).

    Args:
        target: the file to write.
        write: ``write(file_object)`` fills the temporary file.
        what: names the output in error messages (``"figure"``, ``"view"``, ...).
        binary: open the temporary file in binary mode (else UTF-8 text).

    Raises:
        ProbeError: the folder is not writable, or an OS error while writing. Other errors
            raised by ``write`` propagate unchanged.
    """
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
    return target


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
