"""Per-item labels of a batch in which some items have none: reading a missing one says why.

:func:`probe.generate` reads the words of each item's generated text from the tokenizer, which
is only exact when the generated tokens are how the tokenizer writes their decoded text. An
item whose tokens are not keeps no words; the batch's other items keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, SupportsIndex, overload

from probe._errors import ProbeError

__all__ = ["MissingWordsError", "PerItem"]


class MissingWordsError(ProbeError, LookupError):
    """A batch item's words were read, but that item has none (the message says why)."""


class PerItem(tuple):  # type: ignore[type-arg]
    """A tuple with one entry per batch item, some of them missing for a stated reason.

    ``labels[b]`` (and iteration, which reads every item) raises :class:`MissingWordsError`
    with ``reasons[b]`` for a missing item; ``labels.missing`` is the tuple of reasons (``None``
    for present items). Equal to the plain tuple of its entries (``None`` where missing).
    """

    missing: tuple[str | None, ...]

    def __new__(cls, entries: tuple[Any, ...], missing: tuple[str | None, ...]) -> PerItem:
        if len(entries) != len(missing):
            raise ValueError(f"{len(entries)} entries for {len(missing)} reasons")
        obj = super().__new__(cls, (None if m is not None else e for e, m in zip(entries,
                                                                                  missing)))
        obj.missing = tuple(missing)
        return obj

    def _check(self, b: int) -> None:
        reason = self.missing[b]
        if reason is not None:
            raise MissingWordsError(reason)

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Any, ...]: ...
    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return PerItem(super().__getitem__(index), self.missing[index])
        b = range(len(self))[index]  # IndexError as a tuple's
        self._check(b)
        return super().__getitem__(b)

    def __iter__(self) -> Iterator[Any]:
        for b in range(len(self)):
            yield self[b]

    def __reduce__(self) -> tuple[Any, ...]:
        return (PerItem, (tuple(super().__iter__()), self.missing))

    def __repr__(self) -> str:
        shown = [
            repr(e) if m is None else "<missing>"
            for e, m in zip(super().__iter__(), self.missing)
        ]
        return f"PerItem({', '.join(shown)})"

    def get(self, b: int) -> Any:
        """Item ``b``'s entry, or ``None`` where it is missing (never raises for a reason)."""
        return super().__getitem__(b)
