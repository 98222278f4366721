"""The argument parser of probe's command lines (``probe`` and the recipes): errors as one line
and exit code 2, and a single-valued option given twice refused (argparse kept the last).

Standard library only at import: ``probe --help`` imports neither torch nor matplotlib.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["Parser"]

_GIVEN = "_probe_given"  # the single-valued options one parse has seen (removed after it)


class _StoreOnce(argparse._StoreAction):
    """A single-valued option given twice is an error (argparse kept the last silently)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = namespace.__dict__.setdefault(_GIVEN, {})
        if self.dest in given:
            raise argparse.ArgumentError(
                self, f"given twice ({_shown(given[self.dest])} and {_shown(values)}): pass it "
                "once")
        given[self.dest] = values
        super().__call__(parser, namespace, values, option_string)


def _shown(value: Any) -> str:
    """An option's value as typed: ``'a'``, not ``PosixPath('a')`` (``type=Path``)."""
    return repr(os.fspath(value)) if isinstance(value, os.PathLike) else repr(value)


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line (:meth:`error_line`) and exit code 2, and
    refuses a single-valued option given twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from probe.commands._help import HelpFormatter

        kwargs.setdefault("formatter_class", HelpFormatter)  # paragraphs wrapped, lists kept
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        ns, extras = super().parse_known_args(args, namespace)
        ns.__dict__.pop(_GIVEN, None)
        return ns, extras

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:  # argparse swallows a write error here: --help >/dev/full would exit 0
            (file or sys.stderr).write(message)

    def error_line(self, message: str) -> str:
        """The one line (with its newline) an error of this parser prints."""
        return f"{self.prog}: error: {message} (see {self.prog} --help)\n"

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, self.error_line(message))
