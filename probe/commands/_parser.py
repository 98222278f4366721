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

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """argparse's, except that arguments nobody recognised are reported by the subcommand
        they were given to (``probe render: error: ... (see probe render --help)``), with the
        closest of its options for each unknown one (``did you mean --layer?``)."""
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self._chosen(ns)
            parser.error(f"unrecognized arguments: {' '.join(extras)}{parser._closest(extras)}")
        return ns

    def _chosen(self, ns: argparse.Namespace) -> Parser:
        """The innermost (sub)parser the command line chose: ``probe render`` for ``probe
        render head ...``; this parser when it has no subcommands."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                sub = action.choices.get(getattr(ns, action.dest, None) or "")
                if isinstance(sub, Parser):
                    return sub._chosen(ns)
        return self

    def _closest(self, extras: list[str]) -> str:
        """`` (did you mean --layer?)`` for the unknown options close to one of this parser's
        (difflib), else ``""``."""
        import difflib

        known = {o[2:]: o for a in self._actions for o in a.option_strings if o.startswith("--")}
        pairs = []
        for extra in extras:
            if not extra.startswith("--") or extra in known.values():
                continue
            typed = extra.split("=", 1)[0]
            # compared without the dashes, which every option shares ("--nosuch" is no "--out")
            close = difflib.get_close_matches(typed[2:], list(known), n=1)
            if close:
                pairs.append((typed, known[close[0]]))
        if not pairs:
            return ""
        if len(pairs) == 1:
            return f" (did you mean {pairs[0][1]}?)"
        return " (did you mean " + ", ".join(f"{good} for {typed}" for typed, good in pairs) + "?)"

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:  # argparse swallows a write error here: --help >/dev/full would exit 0
            (file or sys.stderr).write(message)

    def error_line(self, message: str) -> str:
        """The one line (with its newline) an error of this parser prints."""
        return f"{self.prog}: error: {message} (see {self.prog} --help)\n"

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, self.error_line(message))
