"""Exceptions raised by probe.

Every error a user can trigger with bad input is a :class:`ProbeError` (a ``ValueError``)
whose message is one line naming the problem and the fix. The CLI turns it into that line on
stderr and exit code 2.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["ProbeError", "UnsupportedModelError", "named_call", "named_calls",
           "outside_probe_stacklevel", "unexpected_keyword"]


class ProbeError(ValueError):
    """Bad input to probe: the message names the problem and the fix."""


class UnsupportedModelError(ProbeError):
    """The model has no attention modules probe knows how to capture."""


class _CallError(ProbeError, TypeError):
    """A public function called with keywords or arguments its signature does not take (a
    ``TypeError`` as Python's own, and a :class:`ProbeError` with the fix). ``python_error``
    is Python's own refusal it replaces, for callers that reword it (``probe.show``)."""

    def __init__(self, message: str, python_error: TypeError | None = None) -> None:
        super().__init__(message)
        self.python_error = python_error


def unexpected_keyword(exc: TypeError) -> tuple[str, str, str] | None:
    """``(function, kind, keyword)`` of Python's ``f() got an unexpected keyword argument 'k'``
    (kind ``"unexpected"``) or ``... multiple values for keyword argument 'k'`` (``"multiple"``);
    ``None`` for any other ``TypeError``. A call :func:`named_call` refused is read from the
    Python error it replaced."""
    import re

    exc = getattr(exc, "python_error", None) or exc
    match = re.fullmatch(r"(?:[\w.]+\.)?(\w+)\(\) got (an unexpected keyword argument|multiple "
                         r"values for keyword argument) '(\w+)'", str(exc))
    if match is None:
        return None
    kind = "multiple" if match.group(2).startswith("multiple") else "unexpected"
    return match.group(1), kind, match.group(3)


def named_call(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``function`` as the public ``probe.<name>``: a call its signature refuses (an unknown
    keyword, a missing argument) is one line naming the keywords it takes, not Python's bare
    ``TypeError``. Errors raised inside ``function`` pass unchanged. ``name`` may be dotted
    (``"viewers.head_heatmap"``: the public ``probe.viewers.head_heatmap``)."""
    import functools

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except TypeError as exc:
            if not _refused_call(function, exc, args, kwargs):
                raise  # raised inside the function, not by the call itself
            raise _CallError(_call_message(function, name, exc), exc) from None

    module, _, qualname = f"probe.{name}".rpartition(".")
    call.__module__, call.__qualname__ = module, qualname  # pickled and shown as probe.<name>
    return call


def named_calls(namespace: dict[str, Any], names: list[str], prefix: str) -> None:
    """Wrap every public function ``names`` of a module's ``namespace`` (its ``globals()``)
    with :func:`named_call` as ``probe.<prefix>.<name>``, in place."""
    from types import FunctionType

    for name in names:
        if isinstance(namespace.get(name), FunctionType):
            namespace[name] = named_call(namespace[name], f"{prefix}.{name}")


def _refused_call(function: Callable[..., Any], exc: TypeError, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> bool:
    """Whether ``exc`` is the call's own refusal: raised by the call itself, or by a decorator
    passing the arguments on (a viewer's ``width=``) when the signature does not take them."""
    import inspect

    if exc.__traceback__ is None:
        return False
    if exc.__traceback__.tb_next is None:
        return True
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError:
        return True
    return False


def _call_message(function: Callable[..., Any], name: str, exc: TypeError) -> str:
    import difflib
    import inspect

    params = inspect.signature(function).parameters
    keywords = [p for p, v in params.items()
                if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)]
    found = unexpected_keyword(exc)
    if found is not None and found[1] == "unexpected":
        close = difflib.get_close_matches(found[2], keywords, n=1, cutoff=0.6)
        fix = f"did you mean {close[0]}=?" if close else "drop it"
        return (f"probe.{name}() takes no keyword {found[2]!r} (its keywords: "
                f"{', '.join(keywords) or 'none'}): {fix}")
    signature = inspect.signature(function)
    bare = signature.replace(parameters=[p.replace(annotation=p.empty)
                                         for p in signature.parameters.values()],
                             return_annotation=signature.empty)
    reason = str(exc).split("() ", 1)[-1]
    return f"probe.{name}() {reason}: call it as probe.{name}{bare}"


def outside_probe_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` called by a probe function that points at the
    first caller outside the probe package (the user's line)."""
    import os
    import sys

    root = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(2), 2  # 0: this function, 1: the function that warns
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(root):
        frame, level = frame.f_back, level + 1
    return level
