"""Recording only some query rows of every layer: ``probe.trace(..., query_rows=...)``.

A :class:`RowRecorder` keeps, per layer, the attention of the selected query rows
``[batch, head, rows, key]``, so a long input costs ``rows x keys`` per head and layer instead
of ``keys^2``. HuggingFace sites hand it exactly those rows (computed alone, see
:mod:`probe.capture.adapters._hf_rows`); sites that can only produce whole layers or chunks of
rows (timm, flash-attention fallbacks) hand it everything and it picks its rows.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._index import in_range
from probe.capture._recorder import CaptureOptions, StackRecorder
from probe.capture._trace import AttentionStack

if TYPE_CHECKING:
    import torch

__all__ = ["RowRecorder", "check_query_rows", "resolve_query_rows"]

_FIX = "pass an int, a list of ints (negative counts from the end) or a slice"


def _integer(value: Any) -> int | None:
    """``value`` as an int if it is an integral scalar (Python or numpy integer, 0-d integer
    tensor), else ``None``; bools and floats are not integers here."""
    if isinstance(value, bool) or "bool" in type(value).__name__:
        return None
    dtype = getattr(value, "dtype", None)
    if dtype is not None and (getattr(value, "ndim", 0) != 0 or "bool" in str(dtype)):
        return None  # arrays and bool tensors (which __index__ would turn into 0 or 1)
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_query_rows(query_rows: Any) -> Any:
    """Validate the type of ``query_rows`` (its range needs the sequence length).

    Returns:
        The spec as an int, a tuple of ints, a slice or a range.

    Raises:
        ProbeError: not an int, a list of ints, a slice or a range; empty; a zero step.
    """
    if isinstance(query_rows, bool):
        raise ProbeError(f"query_rows must select query rows, got {query_rows!r}: {_FIX}")
    row = _integer(query_rows)
    if row is not None:
        return row
    if isinstance(query_rows, (slice, range)):
        if query_rows.step == 0:
            raise ProbeError(f"query_rows {query_rows!r} has step 0: use a positive step")
        return query_rows
    array = type(query_rows).__name__ in ("Tensor", "ndarray")  # np.arange(3) as a tensor
    if isinstance(query_rows, (list, tuple)) or array:
        values = query_rows.tolist() if array else list(query_rows)
        if not isinstance(values, list):  # a 0-d tensor of floats or bools
            values = [values]
        rows = [_integer(v) for v in values]
        if any(r is None for r in rows):
            raise ProbeError(f"query_rows must be integers, got {query_rows!r}: {_FIX}")
        if not rows:
            raise ProbeError("query_rows is empty: pass None to keep every query row")
        return tuple(rows)
    raise ProbeError(
        f"query_rows must be an int, a list of ints or a slice, got {query_rows!r}: {_FIX}"
    )


def resolve_query_rows(query_rows: Any, num_rows: int) -> tuple[int, ...]:
    """The row indices ``0..num_rows - 1`` that ``query_rows`` names, in the given order.

    Raises:
        ProbeError: an index out of range, a row named twice, or a slice selecting nothing.
    """
    spec = check_query_rows(query_rows)
    if isinstance(spec, (slice, range)):
        rows = tuple(range(num_rows)[spec] if isinstance(spec, slice) else spec)
        if not rows:
            raise ProbeError(
                f"query_rows {spec!r} selects no row of the {num_rows} query rows: pick rows "
                f"within 0..{num_rows - 1}"
            )
        if isinstance(spec, slice):
            return rows
        given = rows
    else:
        given = (spec,) if isinstance(spec, int) else spec
    for row in given:
        in_range(row, num_rows, name="query row", unit="query rows", owner="the input")
    resolved = tuple(row % num_rows for row in given)
    seen: dict[int, int] = {}
    for raw, row in zip(given, resolved):
        if row in seen:
            raise ProbeError(
                f"query_rows {list(given)} name row {row} twice ({seen[row]} and {raw}): list "
                "each row once"
            )
        seen[row] = raw
    return resolved


class RowRecorder(StackRecorder):
    """Collects the selected query rows of one stack.

    Args:
        kind: ``"self"`` or ``"cross"``.
        layer_names: module name of every attention layer of the stack, in model order.
        options: the capture options (layers, heads, average_heads, dtype, device); neither
            ``stream`` nor ``requires_grad`` (refused by :func:`probe.trace`).
        key_mask: ``[batch, key]`` bool, True for real keys.
        query_mask: ``[batch, query]`` bool, True for real queries (padded rows are zeroed).
        query_rows: the rows to keep (see :func:`resolve_query_rows`).
    """

    selects_rows = True

    def __init__(
        self,
        kind: str,
        layer_names: list[str],
        options: CaptureOptions,
        key_mask: torch.Tensor | None,
        query_mask: torch.Tensor | None,
        query_rows: Any,
        num_prefix_tokens: int = 0,
    ) -> None:
        super().__init__(kind, layer_names, options, key_mask, query_mask, num_prefix_tokens)
        self.query_rows = query_rows
        self.query_indices: tuple[int, ...] | None = None
        self.kept: dict[int, torch.Tensor] = {}

    def wanted_rows(self, layer: int, q_total: int) -> tuple[int, ...]:
        rows = resolve_query_rows(self.query_rows, q_total)
        if self.query_indices is None:
            self.query_indices = rows
        elif rows != self.query_indices:
            raise ProbeError(
                f"layer {self.layer_names[layer]!r} has {q_total} query rows, other layers of "
                "the stack had another number: query_rows needs the same rows in every layer"
            )
        return rows

    def record_rows(
        self, layer: int, rows: tuple[int, ...], weights: torch.Tensor, q_total: int
    ) -> None:
        """Record ``weights`` ``[batch, head, len(rows), key]`` of query ``rows`` (one call)."""
        self.num_heads = int(weights.shape[1])
        self.calls[layer] += 1
        self.check_keys(layer, q_total, int(weights.shape[-1]))
        if self.wants(layer):
            self._store(layer, list(range(len(rows))), rows, weights)

    def record(self, layer: int, q_start: int, weights: torch.Tensor, q_total: int) -> None:
        """Record the rows ``q_start:q_start + weights.shape[-2]`` (all rows, or a chunk):
        the selected rows among them are kept."""
        self.num_heads = int(weights.shape[1])
        if q_start == 0:
            self.calls[layer] += 1
        self.check_keys(layer, q_total, int(weights.shape[-1]))
        if not self.wants(layer):
            return
        if self.options.requires_grad or self.stream is not None:
            raise ProbeError("query_rows cannot be combined with requires_grad or stream")
        rows = self.wanted_rows(layer, q_total)
        stop = q_start + int(weights.shape[-2])
        slots = [i for i, r in enumerate(rows) if q_start <= r < stop]
        if slots:
            picked = weights[:, :, [rows[i] - q_start for i in slots]]
            self._store(layer, slots, tuple(rows[i] for i in slots), picked)

    def _store(
        self, layer: int, slots: list[int], rows: tuple[int, ...], weights: torch.Tensor
    ) -> None:
        """Put ``weights`` ``[batch, head, len(slots), key]`` of query ``rows`` at ``slots``."""
        import torch

        weights = weights.detach()
        if not self._all_queries_real:
            real = self.query_mask[:, list(rows)]
            real = real[:, None, :, None].to(device=weights.device, dtype=weights.dtype)
            weights = weights * real
        kept = self._gathered(self._select_heads(weights))
        if self.options.dtype is not None:
            kept = kept.to(self.options.dtype)
        if layer not in self.kept:
            b, h, _, k = kept.shape
            total = len(self.query_indices or rows)
            self.kept[layer] = torch.zeros((b, h, total, k), dtype=kept.dtype, device=kept.device)
        self.kept[layer][:, :, slots] = kept

    def finish(self) -> AttentionStack:
        """The kept rows as an :class:`AttentionStack` ``[layer, batch, head, rows, key]``."""
        import torch

        self.check_calls()
        self._check_ran([self.layer_names[i] for i in self.keep if i not in self.kept])
        return AttentionStack(
            kind=self.kind,  # type: ignore[arg-type]
            attentions=torch.stack([self.kept.pop(i) for i in self.keep]),
            layer_names=tuple(self.layer_names[i] for i in self.keep),
            layer_indices=tuple(self.keep),
            head_indices=self._head_indices(),
            query_indices=self.query_indices,
            num_model_layers=len(self.layer_names),
            num_heads=self.num_heads,
        )
