"""Windowed attention (Swin) in a :class:`~probe.capture._trace.Trace`.

A Swin block attends within windows of its own stage's token grid: its attention is
``[batch * windows, head, N, N]``, and stages differ in grid, window count and heads, so the
blocks do not stack into one ``[layer, batch, head, query, key]`` tensor. A capture of a
windowed model keeps each block's raw windows as a :class:`WindowBlock` in ``trace.windows``
(with the geometry and the shift mask the model used) and maps them to image coordinates on
request (:meth:`WindowBlock.to_image`, :meth:`WindowBlock.query_map`,
:meth:`WindowBlock.head_stats`, from :mod:`probe.analysis._windows`).

``trace.attentions`` of such a trace is a :class:`WindowStack`: every read of the stacked
tensor or of one layer raises one :class:`ProbeError` line, so the analyses across layers
(rollout, flow, relevance, ``head_stats``, the model/heads/cls views) refuse instead of
answering with a wrong geometry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError
from probe._index import in_range
from probe.analysis._windows import (
    WindowHeadStats,
    WindowLayout,
    window_head_stats,
    window_query_map,
    windows_to_image,
)
from probe.capture._locks import model_lock
from probe.capture._trace import LazyStack, Trace
from probe.capture._train_mode import warn_if_dropout

if TYPE_CHECKING:
    import torch

    from probe.capture._recorder import CaptureOptions
    from probe.capture.adapters._base import ModelAdapter, Site

__all__ = ["WINDOWED_MESSAGE", "WindowBlock", "WindowRecorder", "WindowStack", "trace_windows"]

WINDOWED_MESSAGE = (
    "this trace holds windowed attention (Swin): each block attends within windows of its own "
    "stage's grid, so there is no [layer, batch, head, query, key] tensor and analyses across "
    "layers (rollout, flow, relevance, head_stats, the model/heads/cls views) do not apply; use "
    "trace.windows[i] (.to_image(), .query_map(row, col), .head_stats()) or "
    "probe.plot(trace, 'window')"
)


@dataclass(frozen=True)
class WindowBlock:
    """The attention of one windowed block, as the model computed it.

    Attributes:
        name: module name of the block's attention.
        layer: the block's index in model order, over all stages (``trace.layer_indices``).
        stage: the stage (resolution level) the block belongs to, 0 first.
        weights: ``[batch * windows, head, N, N]`` softmax weights per window, windows
            row-major within each batch item (the model's own numbering), ``N = wh * ww``.
        layout: the block's grid, window, shift and padding order
            (:class:`~probe.analysis._windows.WindowLayout`).
        mask: ``[windows, N, N]`` the shift mask the model added to the logits (0 where a
            pair may attend, ``-100`` where the cyclic roll brought it together), or ``None``
            for an unshifted block.
        batch: batch size.
        token_size: ``(height, width)`` in input pixels of one of this block's tokens (patch
            size times the stage's downsampling).
    """

    name: str
    layer: int
    stage: int
    weights: torch.Tensor
    layout: WindowLayout
    mask: torch.Tensor | None
    batch: int
    token_size: tuple[int, int]

    @property
    def num_heads(self) -> int:
        return int(self.weights.shape[1])

    @property
    def grid(self) -> tuple[int, int]:
        """``(rows, cols)`` of the block's token grid."""
        return self.layout.grid

    @property
    def shifted(self) -> bool:
        return any(self.layout.shift)

    def windows(self) -> torch.Tensor:
        """``[batch, windows, head, N, N]``: :attr:`weights` split per batch item (a view)."""
        n_w, area = self.layout.num_windows, self.layout.window_area
        return self.weights.view(self.batch, n_w, self.num_heads, area, area)

    def to_image(self) -> torch.Tensor:
        """``[batch, head, L, L]`` block-sparse attention over the block's ``L = rows * cols``
        tokens in row-major image order (see :func:`probe.windows_to_image`)."""
        return windows_to_image(self.weights, self.layout, self.mask)

    def query_map(self, row: int, col: int) -> torch.Tensor:
        """``[batch, head, rows, cols]``: where the block's token ``(row, col)`` attends."""
        return window_query_map(self.weights, self.layout, (row, col), self.mask)

    def head_stats(self) -> WindowHeadStats:
        """Per-head entropy and mean attention distance in pixels (see
        :func:`probe.window_head_stats`)."""
        return window_head_stats(self.weights, self.layout, self.mask, self.token_size)

    def token_at(self, y: float, x: float) -> tuple[int, int]:
        """``(row, col)`` of the block's token covering input pixel ``(y, x)``."""
        row, col = int(y // self.token_size[0]), int(x // self.token_size[1])
        rows, cols = self.grid
        if not (0 <= row < rows and 0 <= col < cols):
            raise ProbeError(
                f"pixel {(y, x)} is outside block {self.layer}'s {rows}x{cols} grid of "
                f"{self.token_size[0]}x{self.token_size[1]}-pixel tokens"
            )
        return row, col


class WindowStack(LazyStack):
    """``trace.attentions`` of a windowed trace: it has a length (the kept blocks) and refuses
    to be read as a tensor, with :data:`WINDOWED_MESSAGE`."""

    def __init__(self, count: int) -> None:  # noqa: D107 - no layers to hold
        self._count = int(count)  # every LazyStack method is overridden: no state to keep

    def __len__(self) -> int:
        return self._count

    @property
    def stacked_yet(self) -> bool:
        return False

    @property
    def shape(self) -> Any:
        raise ProbeError(WINDOWED_MESSAGE)

    def layer(self, position: int) -> torch.Tensor:
        raise ProbeError(WINDOWED_MESSAGE)

    def stacked(self) -> torch.Tensor:
        raise ProbeError(WINDOWED_MESSAGE)

    def __getstate__(self) -> dict[str, Any]:
        return {"count": self._count}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._count = state["count"]

    def __repr__(self) -> str:
        return f"WindowStack({self._count} windowed blocks: read trace.windows)"


class WindowRecorder:
    """Collects the window attention of every kept block during one forward pass.

    The capture sites call :meth:`geometry` before a block's attention runs (its layout and
    shift mask) and :meth:`record` with its softmax weights; it has the parts of the
    :class:`~probe.capture._recorder.StackRecorder` interface the HuggingFace sites use.
    """

    selects_rows = False
    stream = None

    def __init__(self, sites: list[Site], stages: list[int], token_sizes: list[tuple[int, int]],
                 options: CaptureOptions) -> None:
        self.names = [s.name for s in sites]
        self.stages = stages
        self.token_sizes = token_sizes
        self.options = options
        n = len(sites)
        self.keep = sorted({i % n for i in options.layers}) if options.layers else list(range(n))
        self.calls = [0] * n
        self.pending: dict[int, tuple[WindowLayout, torch.Tensor | None]] = {}
        self.blocks: dict[int, WindowBlock] = {}
        self.dropout_active = False

    def wants(self, layer: int) -> bool:
        return layer in self.keep

    def wanted_rows(self, layer: int, q_total: int) -> None:
        return None

    def geometry(self, layer: int, layout: WindowLayout, mask: torch.Tensor | None) -> None:
        """The layout and shift mask of ``layer``'s call that is about to run."""
        self.pending[layer] = (layout, None if mask is None else mask.detach())

    def record(self, layer: int, q_start: int, weights: torch.Tensor, q_total: int) -> None:
        """``weights`` ``[batch * windows, head, N, N]`` of ``layer`` (whole, ``q_start == 0``)."""
        self.calls[layer] += 1
        if self.calls[layer] > 1:
            raise ProbeError(
                f"attention block {self.names[layer]!r} ran twice in one forward: probe.trace "
                "captures a single forward pass"
            )
        if layer not in self.pending:
            raise UnsupportedModelError(
                f"block {self.names[layer]!r} ran its attention without the window geometry "
                "probe reads from its block: this Swin variant is not supported"
            )
        layout, mask = self.pending.pop(layer)
        if not self.wants(layer):
            return
        kept = weights.detach()
        if self.options.device is not None:
            kept = kept.to(self.options.device)
        if self.options.dtype is not None:
            kept = kept.to(self.options.dtype)
        if kept.shape[0] % layout.num_windows:
            raise UnsupportedModelError(
                f"block {self.names[layer]!r} gave {kept.shape[0]} windows, not a multiple of "
                f"the {layout.num_windows} windows of its {layout.grid} grid"
            )
        self.blocks[layer] = WindowBlock(
            name=self.names[layer],
            layer=layer,
            stage=self.stages[layer],
            weights=kept,
            layout=layout,
            mask=None if mask is None else mask.to(kept.device),
            batch=kept.shape[0] // layout.num_windows,
            token_size=self.token_sizes[layer],
        )

    def finish(self) -> tuple[WindowBlock, ...]:
        missing = [self.names[i] for i in self.keep if i not in self.blocks]
        if missing:
            raise ProbeError(
                f"attention blocks {missing[:3]} did not run in the forward pass; probe cannot "
                "capture blocks the model skips"
            )
        return tuple(self.blocks[i] for i in self.keep)


def _unshared(blocks: tuple[WindowBlock, ...], output: Any) -> tuple[WindowBlock, ...]:
    """Copies of the blocks whose weights the model also returned (HF's
    ``output_attentions=True``), so that changing the output never changes the trace."""
    from dataclasses import replace

    from probe.capture._recorder import _storages

    returned = _storages(output, depth=4)
    if not returned:
        return blocks
    return tuple(
        replace(b, weights=b.weights.clone())
        if b.weights.untyped_storage().data_ptr() in returned else b
        for b in blocks
    )


def _refuse_options(options: CaptureOptions, query_rows: Any) -> None:
    if options.requires_grad:
        raise ProbeError(
            "requires_grad=True (gradient-weighted relevance) is not supported on windowed "
            "attention (Swin): relevance propagates one [query, key] map through every layer, "
            "and Swin's stages change resolution; use a gradient method (ig, saliency, "
            "inputxgrad) or trace.windows"
        )
    given = [
        name for name, on in (
            ("heads=", options.heads is not None),
            ("average_heads=True", options.average_heads),
            ("stream=True", options.stream is not None),
            ("chunk_size=", options.chunk_size is not None),
            ("query_rows=", query_rows is not None),
        ) if on
    ]
    if given:
        raise ProbeError(
            f"probe.trace on a windowed-attention model (Swin) takes layers=, dtype=, device= "
            f"and model_name= only: drop {', '.join(given)} (select heads or rows on "
            "trace.windows[i].weights)"
        )


def trace_windows(
    adapter: ModelAdapter,
    inputs: Any,
    options: CaptureOptions,
    *,
    query_rows: Any = None,
    model_name: str | None = None,
    forward_kwargs: dict[str, Any] | None = None,
) -> Trace:
    """:func:`probe.trace` for a windowed adapter (``adapter.windowed``): one forward pass, every
    kept block's windows in ``trace.windows``.

    The adapter provides ``sites()``, ``prepare()``, ``vision_geometry()``, ``run()``,
    ``stage_of(site) -> int``, ``token_size(stage, geometry) -> (h, w)`` and
    ``intercept(sites, {"self": WindowRecorder}, None)``.
    """
    import torch

    _refuse_options(options, query_rows)
    sites = adapter.sites()
    n = len(sites)
    for layer in options.layers or ():
        in_range(layer, n, unit="windowed blocks")
    prepared = adapter.prepare(inputs, forward_kwargs=forward_kwargs)
    geometry = adapter.vision_geometry(prepared.main)
    stages = [adapter.stage_of(s) for s in sites]  # type: ignore[attr-defined]
    sizes = [adapter.token_size(st, geometry) for st in stages]  # type: ignore[attr-defined]
    recorder = WindowRecorder(sites, stages, sizes, options)
    with model_lock(adapter.model), adapter.intercept(sites, {"self": recorder}, None):
        with torch.no_grad():
            output = adapter.run(prepared)
    warn_if_dropout([recorder], "probe.trace")
    blocks = _unshared(recorder.finish(), output)
    batch = int(prepared.main.shape[0])
    rows, cols = geometry.grid
    heads = tuple(range(blocks[0].num_heads))
    return Trace(
        attentions=WindowStack(len(blocks)),  # type: ignore[arg-type]
        layer_names=tuple(b.name for b in blocks),
        layer_indices=tuple(b.layer for b in blocks),
        head_indices=heads,
        model_name=model_name or adapter.name,
        family="vision",
        attention_mask=torch.ones(batch, rows * cols, dtype=torch.bool),
        special_tokens_mask=torch.zeros(batch, rows * cols, dtype=torch.bool),
        num_prefix_tokens=0,
        grid=geometry.grid,
        image_size=geometry.image_size,
        output=output,
        pixel_values=prepared.pixel_values,
        num_heads=len(heads),
        num_model_layers=n,
        windows=blocks,
    )

