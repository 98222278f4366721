"""From a trace to the attention views, with the layer, head and token-window selection
that keeps long inputs inside the size budget.

The trace is read duck-typed (``attentions [layer, batch, head, query, key]``, ``tokens``,
``grid``, ``num_prefix_tokens``, ``layer_indices``, ``head_indices``, ``model_name``,
``attention_mask``, ``pixel_values``); nothing from ``probe.capture`` is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from probe._errors import ProbeError
from probe._index import batch_position, model_position
from probe.analysis._finite import check_view_finite
from probe.viewers.html._attention import head_view_html, model_view_html
from probe.viewers.html._attribution import image_view_html
from probe.viewers.html._page import DEFAULT_MAX_VALUES, HtmlView, _to_numpy

__all__ = ["alignment_html", "cross_html", "trace_attention", "trace_tokens", "trace_image",
           "heads_html", "model_html",
           "patches_html"]


def trace_tokens(trace: Any, batch_index: int = 0) -> list[str]:
    """Display labels of the real (unpadded) positions: the tokens, prefix names + ``r,c`` for
    vision, or position numbers when the trace has neither (a capture from ids alone)."""
    real = _real_positions(trace, batch_index)
    if getattr(trace, "tokens", None) is not None:
        tokens = getattr(trace, "labels", None) or trace.tokens  # byte-level symbols decoded
        tokens = tokens[batch_index]
        return [tokens[i] for i in real]
    if getattr(trace, "grid", None) is None:
        return [str(i) for i in real]
    prefix = ["CLS"] + [f"P{i}" for i in range(1, trace.num_prefix_tokens)]
    rows, cols = trace.grid
    cells = [f"{r},{c}" for r in range(rows) for c in range(cols)]
    suffix = [f"D{i}" for i in range(getattr(trace, "num_suffix_tokens", 0))]  # YOLOS
    return prefix[: trace.num_prefix_tokens] + cells + suffix


def _real_positions(trace: Any, batch_index: int) -> list[int]:
    """Positions of item ``batch_index`` that are not padding, left or right padded alike."""
    mask = getattr(trace, "attention_mask", None)
    if mask is None:
        return list(range(int(trace.attentions.shape[-1])))
    return [int(i) for i in np.flatnonzero(np.asarray(_to_numpy(mask[batch_index])))]


def _positions(available: Sequence[int], wanted: Sequence[int] | None, what: str,
               total: int = 0, owner: str = "the model") -> list[int]:
    """Positions in ``available`` (the model's indices kept) of the ``wanted`` indices, each
    found by :func:`probe._index.model_position`.

    With ``total`` (the model's number of layers or heads; ``owner`` names whose, e.g. "the
    decoder" for cross-attention layers) a negative index counts back from the model's last,
    as ``probe.trace(layers=...)`` and ``probe.plot(layer=...)`` do; without it (a stack that
    does not know its model's count) from the last one kept."""
    if wanted is None:
        return list(range(len(available)))
    if isinstance(wanted, (int, np.integer)):
        wanted = [int(wanted)]
    out = []
    for w in wanted:
        pos = model_position(w, available, total, name=what[:-1], unit=what, owner=owner)
        if pos in out:
            alias = "" if int(w) == available[pos] else f" (as {available[pos]})"
            raise ProbeError(f"{what} lists {what[:-1]} {w} twice{alias}: list each once")
        out.append(pos)
    return out


def trace_attention(
    trace: Any,
    *,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    window: tuple[int, int] | None = None,
    batch_index: int = 0,
) -> tuple[np.ndarray, list[str], list[int], list[int]]:
    """``[layer, head, query, key]`` attention of one batch item, padding removed, with the
    chosen layers / heads (the model's indices) and token window ``(start, stop)``; returns
    ``(attn, tokens, layer_indices, head_indices)``. A window cuts rows: they no longer sum
    to 1."""
    attn = getattr(trace, "attentions", None)
    if attn is None:
        raise ProbeError("this trace holds no attention (streaming capture): trace again "
                         "without streaming to use the attention views")
    if getattr(trace, "query_indices", None) is not None:
        trace.require_attentions()  # refuses a row-selected trace: the views need every row
    batch_index = _item(batch_index, attn.shape[1])
    real = _real_positions(trace, batch_index)
    n = len(real)
    layer_ids = list(trace.layer_indices)
    if trace.head_indices is None and heads is not None:
        raise ProbeError("heads were averaged during capture (one mean per layer): drop heads=, "
                         "or capture again with heads=None")
    head_ids = list(trace.head_indices) if trace.head_indices is not None else [-1]
    lpos = _positions(layer_ids, layers, "layers", int(getattr(trace, "num_model_layers", 0)))
    hpos = _positions(head_ids, heads, "heads", int(getattr(trace, "num_heads", 0)))
    check_view_finite(trace, "the HTML attention view", batch_index, lpos, hpos)
    tokens = trace_tokens(trace, batch_index)
    start, stop = 0, n
    if window is not None:
        start, stop = _window(window)
        if not 0 <= start < stop <= n:
            raise ProbeError(f"window must satisfy 0 <= start < stop <= {n}, got {window!r}")
    keep = real[start:stop]
    sel = np.asarray(_to_numpy(attn[lpos][:, batch_index][:, hpos]), dtype=np.float32)
    return (sel[:, :, keep][:, :, :, keep], tokens[start:stop],
            [layer_ids[i] for i in lpos], [head_ids[i] for i in hpos])


_item = batch_position  # ``batch_index`` as a position in ``0..n-1`` (negatives count back)


def _window(window: Any) -> tuple[int, int]:
    """``(start, stop)`` of a ``window=`` given as two integer token positions."""
    ok = isinstance(window, (tuple, list)) and len(window) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in window
    )
    if not ok:
        raise ProbeError(f"window must be (start, stop): two integer token positions, got "
                         f"{window!r}")
    return int(window[0]), int(window[1])


def _budget_hint(trace: Any, layers: Any, heads: Any, window: Any, max_values: int) -> None:
    """Check the size before copying, so a huge trace fails fast with the selection hint."""
    from probe.viewers.html._page import check_budget

    shape = trace.attentions.shape
    n_l = shape[0] if layers is None else len(layers if isinstance(layers, Sequence) else [layers])
    n_h = shape[2] if heads is None else len(heads if isinstance(heads, Sequence) else [heads])
    n = shape[-1] if window is None else max(0, _window(window)[1] - _window(window)[0])
    check_budget((n_l, n_h, n, n), max_values, "the selected attention")


def heads_html(trace: Any, *, layers: Sequence[int] | None = None,
               heads: Sequence[int] | None = None, window: tuple[int, int] | None = None,
               batch_index: int = 0, max_values: int = DEFAULT_MAX_VALUES,
               **options: Any) -> HtmlView:
    """The head view of a trace (see :func:`head_view_html`; options go there)."""
    if getattr(trace, "attentions", None) is not None:
        _budget_hint(trace, layers, heads, window, max_values)
    attn, tokens, lids, hids = trace_attention(trace, layers=layers, heads=heads,
                                               window=window, batch_index=batch_index)
    return head_view_html(attn, tokens, layers=lids, heads=hids, model_name=trace.model_name,
                          max_values=max_values, **options)


def cross_html(trace: Any, *, layers: Sequence[int] | None = None,
               heads: Sequence[int] | None = None, batch_index: int = 0,
               max_values: int = DEFAULT_MAX_VALUES, **options: Any) -> HtmlView:
    """The head view of an encoder-decoder's cross-attention: target tokens (left) linked to
    the source tokens (right) they attend to (see :func:`head_view_html`).

    ``trace`` is a :class:`probe.Trace` of an encoder-decoder (``trace.cross``), e.g.
    ``probe.trace(t5, text, decoder_inputs=...)`` or ``probe.generate(...).to_trace()``.
    """
    from probe.viewers.html._page import check_budget

    stack = getattr(trace, "cross", None)
    if stack is None or getattr(stack, "attentions", None) is None:
        raise ProbeError(
            "this trace holds no cross-attention: trace an encoder-decoder (T5, BART, Marian, "
            "toy-mt), e.g. probe.generate(model, text, tokenizer=...).to_trace()"
        )
    attn = stack.attentions
    batch_index = _item(batch_index, attn.shape[1])
    source = _real_positions(trace, batch_index)
    n_src = len(source)
    dec = getattr(trace, "decoder_labels", None) or getattr(trace, "decoder_tokens", None)
    n_tgt = int(attn.shape[-2])
    targets = list(dec[batch_index])[:n_tgt] if dec is not None else [f"t{i}" for i in range(n_tgt)]
    layer_ids = list(stack.layer_indices)
    if stack.head_indices is None and heads is not None:
        raise ProbeError("heads were averaged during capture (one mean per layer): drop heads=, "
                         "or capture again with heads=None")
    head_ids = list(stack.head_indices) if stack.head_indices is not None else [-1]
    # -1: the model's last decoder layer / head, as everywhere (when the stack knows them)
    lpos = _positions(layer_ids, layers, "layers", int(getattr(stack, "num_model_layers", 0)),
                      "the decoder")
    hpos = _positions(head_ids, heads, "heads", int(getattr(stack, "num_heads", 0)),
                      "the cross-attention")
    check_budget((len(lpos), len(hpos), n_tgt, n_src), max_values, "the selected attention")
    check_view_finite(trace, "the HTML cross view", batch_index, lpos, hpos, stack=stack,
                      stack_name="cross-attention")
    sel = np.asarray(_to_numpy(attn[lpos][:, batch_index][:, hpos]), dtype=np.float32)
    return head_view_html(
        sel[:, :, :, source], query_tokens=targets,
        key_tokens=trace_tokens(trace, batch_index), layers=[layer_ids[i] for i in lpos],
        heads=[head_ids[i] for i in hpos], model_name=trace.model_name, method="cross-attention",
        max_values=max_values, **options,
    )


def alignment_html(alignment: Any, *, layers: Sequence[int] | None = None,
                   heads: Sequence[int] | None = None, title: str | None = None,
                   **options: Any) -> HtmlView:
    """Interactive word-alignment matrices: every layer x head as a thumbnail of the
    ``[target word, source word]`` matrix of :func:`probe.alignment` (gradient and random
    alignments: one matrix); click to enlarge with the words, hover a target row to read its
    strongest source words (see :func:`model_view_html`; gold links are marked in the static
    :func:`probe.viewers.alignment_view`).

    ``layers`` / ``heads`` select the model's layers and heads embedded (as in the other
    views: the alignment's ``layer_indices`` / ``head_indices``; a negative layer or head
    counts from the model's last, as ``alignment.matrix(-1, -1)`` does, where the alignment
    knows the model's counts (gradient and random alignments: from the one they hold);
    default all): the page shows ``alignment.matrix(layer, head)`` of each selected pair.
    """
    scores = getattr(alignment, "scores", None)
    if scores is None or not hasattr(alignment, "target_words"):
        raise ProbeError(
            f"alignment_html takes the Alignment of probe.alignment(...), got "
            f"{type(alignment).__name__}"
        )
    for side in ("target", "source"):
        if not len(getattr(alignment, f"{side}_words")):
            raise ProbeError(
                f"this alignment has no {side} words (an empty "
                f"{'generation: it ended at once, e.g. on EOS' if side == 'target' else 'source'}"
                "): there is nothing to align; check gen.text and generate from another input"
            )
    if alignment.head_indices is None and heads is not None:
        raise ProbeError(
            "this alignment's heads were averaged during capture (one 'mean' matrix per "
            "layer): drop heads=, or generate without average_heads"
        )
    layer_ids = list(alignment.layer_indices)
    head_ids = list(alignment.head_indices) if alignment.head_indices is not None else ["mean"]
    # -1: the model's last layer / head, as alignment.matrix(-1, -1) reads it (when known)
    lpos = _positions(layer_ids, layers, "layers", int(getattr(alignment, "num_model_layers", 0)))
    hpos = _positions(head_ids, heads, "heads", int(getattr(alignment, "num_heads", 0)))
    values = np.asarray(_to_numpy(scores), dtype=np.float32)[lpos][:, hpos]
    return model_view_html(
        values, query_tokens=list(alignment.target_words),
        key_tokens=list(alignment.source_words), layers=[layer_ids[i] for i in lpos],
        heads=[head_ids[i] for i in hpos], method=f"{alignment.method} word alignment",
        title=title, **options,
    )


def model_html(trace: Any, *, layers: Sequence[int] | None = None,
               heads: Sequence[int] | None = None, window: tuple[int, int] | None = None,
               batch_index: int = 0, max_values: int = DEFAULT_MAX_VALUES,
               **options: Any) -> HtmlView:
    """The model view of a trace (see :func:`model_view_html`; options go there)."""
    if getattr(trace, "attentions", None) is not None:
        _budget_hint(trace, layers, heads, window, max_values)
    attn, tokens, lids, hids = trace_attention(trace, layers=layers, heads=heads,
                                               window=window, batch_index=batch_index)
    return model_view_html(attn, tokens, layers=lids, heads=hids, model_name=trace.model_name,
                           max_values=max_values, **options)


def trace_image(trace: Any, batch_index: int = 0) -> np.ndarray:
    """The model input of a vision trace as ``[H, W, 3]`` in ``0..1`` (each channel
    min-max scaled: the normalisation constants are the model's, not in the trace)."""
    pixels = getattr(trace, "pixel_values", None)
    if pixels is None:
        raise ProbeError("this trace has no pixel_values: pass image= to show it")
    img = np.asarray(_to_numpy(pixels[batch_index]), dtype=np.float64).transpose(1, 2, 0)
    lo = img.min(axis=(0, 1), keepdims=True)
    hi = img.max(axis=(0, 1), keepdims=True)
    return (img - lo) / np.where(hi > lo, hi - lo, 1.0)


def patches_html(trace: Any, *, image: Any = None, maps: Any = None,
                 layers: Sequence[int] | None = None, heads: Sequence[int] | None = None,
                 batch_index: int = 0, max_values: int = DEFAULT_MAX_VALUES,
                 **options: Any) -> HtmlView:
    """The image view of a vision trace: per-head CLS maps and hover-a-patch maps from the
    captured attention, plus any ``maps`` ``{method: [h, w]}`` given (options go to
    :func:`image_view_html`)."""
    if getattr(trace, "grid", None) is None:
        raise ProbeError("the image view needs a vision trace (with a patch grid)")
    attn, _, lids, hids = trace_attention(trace, layers=layers, heads=heads,
                                          batch_index=batch_index)
    rows, cols = trace.grid
    p0 = trace.num_prefix_tokens
    p1 = p0 + rows * cols  # YOLOS's detection tokens come after the patches
    cls = attn[:, :, 0, p0:p1].reshape(attn.shape[0], attn.shape[1], rows, cols)
    patch = attn[:, :, p0:p1, p0:p1]
    return image_view_html(trace_image(trace, batch_index) if image is None else image, maps,
                           cls_maps=cls, patch_attn=patch, layers=lids, heads=hids,
                           model_name=trace.model_name, max_values=max_values, **options)
