"""Standard output that cannot be written: closed, a reader gone, a full device.

Shared by the console script (:mod:`probe.cli`) and ``probe serve``'s workers, so a served
command ends exactly as a cold one:

- **closed** (``probe render ... >&-``): refused before anything runs, one line, exit 2 (a
  command whose output goes nowhere would also hand its first file the number of stdout);
- **broken pipe** (``probe models | head -1``, the reader left): quiet, exit 141 (128 +
  SIGPIPE, what a shell reports for a command a broken pipe stopped); files already written
  (``probe render`` prints each path after all its files are complete) are kept;
- **another write error** (``> /dev/full``): one line naming it, exit 2; files already written
  are kept, as above.

Standard library only: the client of ``probe serve`` imports this before anything heavy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["CLOSED", "EXIT_BROKEN_PIPE", "discard_stdout", "finish", "stdout_error",
           "watch_stdout"]

#: the exit status after a broken pipe on stdout (or stderr): 128 + SIGPIPE
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE

CLOSED = (
    "standard output is closed (started with >&-?): probe prints what it writes there; "
    "give it one, e.g. >/dev/null to discard it"
)


def discard_stdout() -> None:
    """Point file descriptor 1 at ``/dev/null``, so that what is still buffered (and the
    interpreter's own flush at exit) has somewhere to go instead of failing again."""
    try:
        fd = sys.stdout.fileno() if sys.stdout is not None else 1
    except (OSError, ValueError, AttributeError):  # a captured stream (tests): nothing to do
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


class _Watched:
    """``sys.stdout`` as it was, remembering the last ``OSError`` its ``write``/``writelines``/
    ``flush`` raised; every other attribute is the stream's own."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.error: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.error = exc
            raise

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def watch_stdout() -> Iterator[_Watched | None]:
    """Watch ``sys.stdout`` while a command runs (restored after): the ``OSError`` raised by
    writing to it (``watched.error``) tells a stdout failure from the command's own."""
    stream = sys.stdout
    if stream is None:
        yield None
        return
    watched = _Watched(stream)
    sys.stdout = watched  # type: ignore[assignment]
    try:
        yield watched
    finally:
        if sys.stdout is watched:
            sys.stdout = stream


def stdout_error(exc: BaseException) -> str:
    """The one-line message for a write error of standard output."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return (f"cannot write to standard output ({reason}); free space on its device or "
            "redirect it elsewhere (files already written are complete and kept)")


def finish(code: int) -> int:
    """Flush stdout and stderr as a command leaves; returns the exit code (``code``, or
    :data:`EXIT_BROKEN_PIPE` / 2 when stdout could not take what was left, with one line
    on stderr for the latter)."""
    if sys.stdout is not None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            discard_stdout()
            code = code or EXIT_BROKEN_PIPE
        except OSError as exc:
            discard_stdout()
            _say(f"probe: error: {stdout_error(exc)}")
            code = code or 2
        except ValueError:  # closed by the command: nothing to flush
            pass
    if sys.stderr is not None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):  # nowhere left to say anything
            pass
    return code


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):
        pass
