"""Attention tensors guarded against in-place edits, and stacked on first use.

torch counts every in-place write to a tensor or any view of it (``tensor._version``); a
holder notes the count when it takes a tensor and checks it, in O(1), on every read, so
``trace.attentions[0][...] = 0`` makes the next read raise :class:`ModifiedTraceError`
instead of feeding the edited values to an analysis. Writes that bypass torch's count
(through ``.numpy()``, ``.data``, the storage, or inference-mode tensors) are not seen.

- :class:`LazyStack`: per-layer tensors as the model computed them, stacked into one
  ``[layer, batch, head, query, key]`` tensor on first read (thread-safe);
- :class:`_Attentions`: the descriptor of an attention field of a frozen dataclass
  (:class:`~probe.capture._trace.Trace`, its stacks, a generation) that reads through both;
- :func:`_checked_state`: a holder's state for pickling and deep copies, refused once edited.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = ["LazyStack", "ModifiedTraceError"]


class ModifiedTraceError(ProbeError):
    """A trace's attention tensor was written in place after the trace took it."""


_EDITED = (
    "was modified in place after capture (e.g. trace.attentions[0][...] = 0), so analyses "
    "would read the edited values as what the model computed: capture again, or edit a copy "
    "and make a new trace: edited = trace.attentions.clone(); ...; trace.replace("
    "attentions=edited)"
)


def _edited(obj: Any, name: str) -> str:
    """The in-place edit message for field ``name`` of ``obj``, with a fix ``obj`` has: a
    :class:`Trace` has ``replace``; other holders (a generation, a stack) take
    ``dataclasses.replace``."""
    if name == "attentions" and hasattr(type(obj), "replace"):
        return f"the trace's attention {_EDITED}"
    head = _EDITED.split(": capture again", 1)[0]
    var = "gen" if type(obj).__name__ == "GenerationTrace" else "stack"
    return (f"the trace's {name} {head}: capture again, or edit a copy: edited = "
            f"{var}.{name}.clone(); ...; dataclasses.replace({var}, {name}=edited)")


def _version(tensor: Any) -> int | None:
    """torch's in-place write count of ``tensor`` (shared by its views); ``None`` for
    inference-mode tensors, which keep none."""
    if tensor.is_inference():
        return None
    return int(tensor._version)


class LazyStack:
    """Per-layer attention tensors ``[batch, head, query, key]``, stacked on first use.

    :func:`probe.trace` keeps each layer's attention exactly as the model computed it (no copy
    during the forward pass); the ``[layer, batch, head, query, key]`` tensor costs one
    allocation and one copy, paid by the code that reads ``attentions``. The stack is built
    once, under a lock (threads reading at the same time get the same tensor), and then
    replaces the per-layer references: memory peaks at twice the attention while stacking.

    Everything that must agree (the kept tensors and their noted write counts) lives in one
    tuple, ``_state``, replaced whole when stacking: a method reads it once and works on that
    snapshot, so a thread that stacks meanwhile never pairs one state's tensors with the
    other's counts (a false :class:`ModifiedTraceError`, or a missed edit).

    Args:
        layers: one ``[batch, head, query, key]`` tensor per kept layer, all of one shape,
            dtype and device, owned by the trace from now on.
    """

    __slots__ = ("_state", "_lock")

    # (layers, stacked, versions): before stacking (the layers, None, their write counts),
    # after it (None, the stack, (its write count,)); swapped as one object, never edited
    _state: tuple[tuple[torch.Tensor, ...] | None, torch.Tensor | None, tuple[int | None, ...]]

    def __init__(self, layers: Sequence[torch.Tensor]) -> None:
        if not layers:
            raise ValueError("LazyStack needs at least one layer")
        layers = tuple(layers)
        self._state = (layers, None, tuple(_version(t) for t in layers))
        self._lock = threading.Lock()

    @staticmethod
    def _check(tensors: Sequence[torch.Tensor], versions: Sequence[int | None]) -> None:
        """Raise if a kept tensor's write count differs from the one noted (one snapshot)."""
        if any(_version(t) != v for t, v in zip(tensors, versions)):
            raise ModifiedTraceError(f"the trace's attention {_EDITED}")

    def __len__(self) -> int:
        layers, stacked, _ = self._state
        if layers is not None:
            return len(layers)
        return int(stacked.shape[0])  # type: ignore[union-attr]

    @property
    def stacked_yet(self) -> bool:
        """Whether the ``[layer, ...]`` tensor exists (``attentions`` was read)."""
        return self._state[1] is not None

    @property
    def shape(self) -> torch.Size:
        """``[layer, batch, head, query, key]``, without stacking."""
        import torch

        layers, stacked, _ = self._state
        if layers is None:
            return stacked.shape  # type: ignore[union-attr]
        return torch.Size((len(layers), *layers[0].shape))

    @property
    def dtype(self) -> torch.dtype:
        """The attention's dtype, without stacking or checking."""
        layers, stacked, _ = self._state
        return (stacked if layers is None else layers[0]).dtype  # type: ignore[union-attr]

    def layer(self, position: int) -> torch.Tensor:
        """``[batch, head, query, key]`` of the layer at ``position`` (no stacking)."""
        layers, stacked, versions = self._state
        if layers is None:
            self._check((stacked,), versions)  # type: ignore[arg-type]
            return stacked[position]  # type: ignore[index]
        self._check(layers, versions)
        return layers[position]

    def stacked(self) -> torch.Tensor:
        """The ``[layer, batch, head, query, key]`` tensor (built once, then cached)."""
        _, stacked, versions = self._state
        if stacked is None:
            import torch

            with self._lock:
                layers, stacked, versions = self._state  # another thread may have stacked
                if stacked is None:
                    self._check(layers, versions)  # type: ignore[arg-type]
                    stacked = torch.stack(layers)  # type: ignore[arg-type]
                    versions = (_version(stacked),)
                    self._state = (None, stacked, versions)
        self._check((stacked,), versions)  # also a stack another thread built meanwhile
        return stacked

    def __getstate__(self) -> dict[str, Any]:
        # an edited stack refuses to be copied: the copy's new tensors would pass its checks
        layers, stacked, versions = self._state
        kept = layers if layers is not None else (stacked,)
        self._check(kept, versions)  # type: ignore[arg-type]
        return {"layers": layers, "stacked": stacked}

    def __setstate__(self, state: dict[str, Any]) -> None:
        layers, stacked = state["layers"], state["stacked"]
        kept = layers if layers is not None else (stacked,)
        # new tensors: new counts
        self._state = (layers, stacked, tuple(_version(t) for t in kept))
        self._lock = threading.Lock()


class _Attentions:
    """An attention field (``attentions``; a generation's ``prompt_attentions`` and
    ``cross_prompt`` too): holds a tensor, ``None`` or a :class:`LazyStack` and reads as a
    tensor (stacking a :class:`LazyStack` on first read), refused once written in place.

    The value lives in ``obj.__dict__["_<name>_stored"]`` and, for a plain tensor, its ``(id,
    write count)`` when ``obj`` took it in ``"_<name>_seen"``.

    Args:
        optional: the field defaults to ``None`` (dataclass reads the default off the class).
    """

    def __init__(self, *, optional: bool = False) -> None:
        self.optional = optional
        self.name = self.slot = self.seen = ""

    def __set_name__(self, owner: Any, name: str) -> None:
        self.name, self.slot, self.seen = name, f"_{name}_stored", f"_{name}_seen"

    def __get__(self, obj: Any, owner: Any = None) -> torch.Tensor | None:
        if obj is None:
            if self.optional:
                return None
            raise AttributeError(self.name)  # tells dataclass: no default value
        value = obj.__dict__[self.slot]
        if isinstance(value, LazyStack):
            return value.stacked()
        if value is not None:
            _check_tensor(obj, value, self.name)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value  # only dataclass __init__ gets here: frozen otherwise
        if value is not None and not isinstance(value, LazyStack):
            obj.__dict__[self.seen] = (id(value), _version(value))


def _check_tensor(obj: Any, tensor: torch.Tensor, name: str = "attentions") -> None:
    """Raise if ``obj``'s attention tensor in field ``name`` was written in place since ``obj``
    took it.

    A tensor that is not the one noted (a copy or unpickled trace holds new tensors, with
    new counts) is noted now."""
    key = f"_{name}_seen"
    seen = obj.__dict__.get(key)  # one (id, count) tuple, read once
    if seen is None or seen[0] != id(tensor):
        obj.__dict__[key] = (id(tensor), _version(tensor))
    elif _version(tensor) != seen[1]:
        raise ModifiedTraceError(_edited(obj, name))


def _checked_state(obj: Any) -> dict[str, Any]:
    """``obj.__dict__`` for pickling and deep copies, refused when one of its attention
    tensors (every :class:`_Attentions` field of its class) was edited in place (a copy holds
    new tensors with fresh write counts: it would pass the edited values off as the model's).
    A :class:`LazyStack` checks itself."""
    for guarded in vars(type(obj)).values():
        if isinstance(guarded, _Attentions):
            stored = obj.__dict__.get(guarded.slot)
            if stored is not None and not isinstance(stored, LazyStack):
                _check_tensor(obj, stored, guarded.name)
    return dict(obj.__dict__)
