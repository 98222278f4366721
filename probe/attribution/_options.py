"""The declaration of one keyword option of an attribution method: :class:`MethodOption`.

Checked once by :func:`probe.attribute` (type, choices, range), parsed from the command line
by ``probe eval --option`` and the CLI flags. Split from :mod:`probe.attribution._registry`,
which re-exports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from probe._errors import ProbeError

__all__ = ["MethodOption"]


@dataclass(frozen=True)
class MethodOption:
    """One keyword option a method takes, declared with the method.

    :func:`attribute` validates the options a caller passes against these declarations once
    (unknown names, types, choices, ranges) and fills in the defaults, so a method function
    reads ``ctx.options[name]``; the CLI and ``probe eval`` build their flags from them.

    Attributes:
        name: the keyword, e.g. ``"head_fusion"``.
        default: the value when the caller passes none.
        kind: accepted type(s); ``bool`` is never an ``int`` or ``float`` unless listed, an
            ``int`` is accepted (as ``float``) where ``float`` is; ``object`` accepts anything.
        choices: allowed values, or a callable returning them when validating (e.g. the
            registered head fusions, so one registered later is accepted).
        minimum: lowest allowed number (inclusive); ``below`` the exclusive upper bound.
        nullable: ``None`` is accepted (always so when the default is ``None``).
        check: extra validator ``value -> None`` raising :class:`ProbeError`.
        doc: one line for help texts.
    """

    name: str
    default: Any = None
    kind: type | tuple[type, ...] = object
    choices: tuple[Any, ...] | Callable[[], Iterable[Any]] | None = None
    minimum: float | None = None
    below: float | None = None
    nullable: bool = False
    check: Callable[[Any], None] | None = None
    doc: str = ""

    def valid_choices(self) -> tuple[Any, ...] | None:
        """The allowed values now (``None``: any value of ``kind``)."""
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def with_default(self, default: Any) -> MethodOption:
        """The same option with another default (presets such as ``rollout-max``)."""
        return replace(self, default=default)

    def validate(self, method: str, value: Any) -> Any:
        """``value`` checked against the declaration (ints widened to float where declared).

        Raises:
            ProbeError: wrong type, not one of the choices, or out of range.
        """
        where = f"option {self.name!r} of method {method!r}"
        if value is None and (self.nullable or self.default is None):
            return None
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if object not in kinds:
            value = _plain_number(value)
            ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
            if not ok and float in kinds and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if not ok:
                names = " or ".join(k.__name__ for k in kinds)
                raise ProbeError(f"{where} must be {names}, got {_shown(value)}")
        if isinstance(value, float) and value != value:  # NaN passes every range check
            raise ProbeError(f"{where} must be a number, got nan: pass e.g. {self.default!r}")
        choices = self.valid_choices()
        if choices is not None and value not in choices:
            raise ProbeError(f"{where} must be one of {list(choices)}, got {_shown(value)}")
        if self.minimum is not None and value < self.minimum:
            raise ProbeError(f"{where} must be >= {self.minimum:g}, got {value!r}")
        if self.below is not None and value >= self.below:
            raise ProbeError(f"{where} must be < {self.below:g}, got {value!r}")
        if self.check is not None:
            self.check(value)
        return value

    def parse(self, method: str, text: str) -> Any:
        """``text`` (a command-line string) converted to the declared kind and validated."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        value: Any = text
        if text.lower() == "none" and (self.nullable or self.default is None):
            value = None
        elif bool in kinds and text.lower() in ("true", "false"):
            value = text.lower() == "true"
        elif int in kinds and _is_int(text):
            value = int(text)
        elif float in kinds:
            try:
                value = float(text)
            except ValueError:
                pass
        return self.validate(method, value)


def _shown(value: Any) -> str:
    """``value`` for a one-line message: an array or tensor by its type and shape, a long or
    multi-line ``repr`` cut."""
    shape = getattr(value, "shape", None)
    if shape is not None and len(tuple(shape)) > 0:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _plain_number(value: Any) -> Any:
    """A numpy integer or float scalar (``np.int64(16)``, ``np.float32(0.9)``, what a loop over
    ``np.arange`` / ``np.linspace`` gives) as the Python number it holds; anything else as is."""
    import numbers

    if type(value).__module__ != "numpy" or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
