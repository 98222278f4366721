"""The ``probe`` command line: build the top parser, dispatch, report errors. Nothing else.

Each command lives in its own module under :mod:`probe.commands` with ``add_parser`` (its
options and argument dataclass) and ``run(namespace) -> int``. ``probe --help`` and
``probe render --help`` import neither torch nor matplotlib: every heavy import happens
inside the commands' ``run``. The console script is :func:`run`: :func:`main`, then an exit
that skips the interpreter's teardown (:func:`_exit_now`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from probe._errors import ProbeError
from probe._version import __version__

__all__ = ["main", "run"]


def _build_parser() -> argparse.ArgumentParser:
    from probe.commands import _eval, _models, render, serve
    from probe.commands._parser import Parser
    from probe.commands.bench import _command as _bench

    parser = Parser(
        prog="probe",
        description="Attention interpretability for PyTorch transformers: "
                    "capture, analyze, render.",
        epilog="Embedded offline models (minilm, toy-mt, vit-shapes, cnn-shapes, ...): run "
        "'probe models' for the list.",
    )
    parser.add_argument("--version", action="version", version=f"probe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in (render, _models, _eval, _bench, serve):
        command.add_parser(sub)
    parser.set_defaults(main=main)  # what probe serve's workers run
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` (temporary files) runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs; restore the old handler."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _finalizer_interrupts_kept() -> Iterator[None]:
    """Deliver again a Ctrl-C (or SIGTERM) that Python would drop while a command runs.

    An interrupt that lands while the interpreter runs a finalizer (an object's ``__del__``, a
    weakref callback, e.g. during garbage collection inside a library) cannot propagate: Python
    prints "Exception ignored in ..." and the command runs on, to exit 0 with its files
    written. Here such an interrupt is raised again in the main thread 50 ms later (and again,
    should it land in a finalizer once more); other unraisable exceptions go to the previous
    hook.
    """
    import _thread

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            signum = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else (
                signal.SIGINT)
            # from another thread, a moment later: raised inside this hook, it would be
            # dropped again ("Exception ignored in sys.unraisablehook")
            timer = threading.Timer(0.05, _thread.interrupt_main, args=(signum,))
            timer.daemon = True
            timer.start()
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``probe`` command. Returns the exit code.

    A closed standard output is refused before anything runs (one line, exit 2; ``probe
    serve`` excepted: it prints nothing there); a broken pipe on it ends the command quietly
    with exit code 141 (see :mod:`probe.commands._streams`).
    """
    from probe.commands import _streams

    args = list(argv) if argv is not None else sys.argv[1:]
    if sys.stdout is None and args[:1] != ["serve"]:
        print(f"probe: error: {_streams.CLOSED}", file=sys.stderr)
        return 2
    try:
        parser = _build_parser()
        ns = parser.parse_args(args)
    except SystemExit as exc:  # --help, --version, parse errors
        return int(exc.code or 0)
    except OSError as exc:  # --help / --version / usage could not be written
        _streams.discard_stdout()
        if isinstance(exc, BrokenPipeError):
            return _streams.EXIT_BROKEN_PIPE
        with contextlib.suppress(OSError):
            print(f"probe: error: {_streams.stdout_error(exc)}", file=sys.stderr)
        return 2
    except ProbeError as exc:  # e.g. a broken registration seen while building the options
        print(f"probe: error: {exc}", file=sys.stderr)
        return 2
    if ns.command is None:
        parser.print_help()
        return 0
    stdout = None
    try:
        with _sigterm_as_interrupt(), _finalizer_interrupts_kept(), \
                _streams.watch_stdout() as stdout:
            code = int(ns.run(ns))
            if stdout is not None:
                stdout.flush()  # a write error of stdout shows here, not at exit
            return code
    except ProbeError as exc:
        print(f"probe: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("probe: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("probe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line unless debugging
        if isinstance(exc, OSError) and exc is getattr(stdout, "error", None):
            _streams.discard_stdout()
            if isinstance(exc, BrokenPipeError):  # the reader left: quiet, as 'head' expects
                return _streams.EXIT_BROKEN_PIPE
            print(f"probe: error: {_streams.stdout_error(exc)}", file=sys.stderr)
            return 2
        if os.environ.get("PROBE_DEBUG"):
            raise
        print(
            f"probe: internal error: {type(exc).__name__}: {exc} (this is a bug; rerun with "
            "PROBE_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


def run() -> NoReturn:
    """The ``probe`` console script (and ``python -m probe.cli``): :func:`main` on
    ``sys.argv``, then :func:`_exit_now` with its exit code.

    ``probe render`` first asks a running ``probe serve`` of this user to run it (no heavy
    import here); when none can, it runs in this process.
    """
    argv = sys.argv[1:]
    if argv[:1] == ["render"] and sys.stdout is not None:  # closed: main refuses it
        from probe.commands.serve import served

        code = served(argv)
        if code is not None:
            _exit_now(code)
    _exit_now(main(argv))


def _exit_now(code: int) -> NoReturn:
    """End the process with ``code`` once a command has returned, without the interpreter's
    teardown.

    Freeing every module of torch and transformers and unloading their libraries costs about
    a second of CPU at exit (``probe bench --part startup``) and does nothing a finished
    command needs: its files are written and closed. The atexit handlers still run (logging,
    multiprocessing children, temporary folders), then stdout and stderr are flushed
    (:func:`probe.commands._streams.finish`: a broken pipe is exit code 141, another write
    error one line and exit code 2) and the process leaves with :func:`os._exit`. Without
    CPython's handler runner, a normal exit.
    """
    import atexit

    from probe.commands._streams import finish

    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is None:  # pragma: no cover - not CPython
        sys.exit(finish(code))
    run_handlers()
    os._exit(finish(code))


if __name__ == "__main__":  # pragma: no cover
    run()
