"""One call from a trace (or an attribution) to a figure: :func:`plot`.

``probe.plot(trace, "coref", word="it")`` does what a notebook user would otherwise do by
hand: pick the batch item and its real tokens, find the layer and head positions, compute
the word-level weights, the candidates and the top heads, and call the matching viewer. The
trace is read duck-typed (``attentions``, ``tokens``, ``words``, ``attention_mask``, ...), so
nothing here imports the capture code; the analyses used are pure functions over a trace.

Views of a trace: ``"model"`` (every layer x head), ``"heads"`` (every head of ``layer=``;
without it the model view), ``"head"`` (one head's heatmap), ``"links"`` (link view of
``layer=``, all heads or ``head=``; ``word=`` highlights a word), ``"coref"`` (``word=``,
the top head unless ``layer=``/``head=``), ``"rollout"`` (text: token strip; vision:
overlay), ``"cls"`` (vision: per-head CLS maps of ``layer=``), ``"window"``
(windowed attention, Swin: where token ``query=(row, col)`` of block ``layer=`` attends,
per head), ``"cross"`` (image-to-text, a trace or a generation: where each written token
looked in the image, :func:`probe.token_patch_maps`). Views of an attribution
(``probe.attribute`` output): ``"strip"`` (text) and ``"saliency"`` (vision), or ``None``
for the right one. Remaining keyword options go to the viewer (``title=``, ``width=``...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe._index import batch_position

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot", "quoted_sentence", "TRACE_VIEWS", "ATTRIBUTION_VIEWS"]

TRACE_VIEWS = ("model", "heads", "head", "links", "coref", "rollout", "cls", "window", "cross")
ATTRIBUTION_VIEWS = ("strip", "saliency")


def _call(viewer: Callable[..., Figure], view: str, args: tuple, kwargs: dict,
          options: dict[str, Any]) -> Figure:
    """Call ``viewer`` with the computed ``kwargs`` and the user's ``options``."""
    allowed = set(inspect.signature(viewer).parameters) - set(kwargs)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ProbeError(
            f"the {view!r} view does not take option(s) {unknown}; it takes "
            f"{sorted(allowed - {'attn', 'tokens'})}"
        )
    return viewer(*args, **kwargs, **options)


def _batch(trace: Any, batch_index: int) -> int:
    return batch_position(batch_index, int(trace.attention_mask.shape[0]))


def _real(trace: Any, b: int) -> np.ndarray:
    """Positions of the real (non-padding) tokens of item ``b``."""
    return np.nonzero(trace.attention_mask[b].bool().cpu().numpy())[0]


def strip_note(trace: Any, b: int, query: Any = None, model: Any = None) -> str:
    """The line under a text strip's title: which query rows its scores were read from
    (``query``: a method's ``query`` option, ``None`` for a method that reads none) and which
    tokens it leaves out (the special tokens, [CLS] and [SEP]), e.g. ``"mean over the query
    rows · [CLS], [SEP] not shown"``; what ``probe.plot(trace, "rollout")`` and ``probe render
    rollout|saliency`` print alike."""
    from probe.attribution._attention import query_rows_note

    parts = [] if query is None else [query_rows_note(trace, query, b, model)]
    special = trace.special_tokens_mask[b].bool().cpu().numpy()
    labels = trace.labels[b] if trace.labels is not None else None
    hidden = [str(labels[i]) if labels else str(i) for i in _real(trace, b) if special[i]]
    if hidden:
        parts.append(f"{', '.join(dict.fromkeys(hidden))} not shown")
    return " · ".join(parts)


def _tokens(trace: Any, b: int, keep: np.ndarray) -> list[str] | None:
    labels = trace.labels  # the tokens, byte-level symbols decoded for display
    if labels is None:
        return None
    return [labels[b][i] for i in keep]


def sentence_of(words: Sequence[str]) -> str:
    """The words joined back into a sentence for titles (no space before "." or in "didn't")."""
    from probe.viewers._tokens import attached_words

    glue = attached_words(words)
    return "".join(("" if glue[i] or i == 0 else " ") + w for i, w in enumerate(words))


def quoted_sentence(trace: Any, b: int, max_chars: int = 70) -> str | None:
    if not trace.words:
        return None
    from probe._text import visible_text

    text = visible_text(sentence_of(list(trace.words[b])))  # as the token labels show it
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "\u2026"
    return f"\u201c{text}\u201d"


def _layer(trace: Any, layer: int | None) -> tuple[int, int]:
    """(model index, position in the trace) of ``layer`` (default: the last captured)."""
    if layer is None:
        return int(trace.layer_indices[-1]), len(trace.layer_indices) - 1
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise ProbeError(f"layer must be a layer index (int), got {layer!r}")
    pos = trace.layer_position(int(layer))
    return int(trace.layer_indices[pos]), pos


def _head(trace: Any, head: int | None, default: int | None = 0) -> tuple[int | None, int | None]:
    if head is None:
        if default is None:
            return None, None
        head = default
    if isinstance(head, bool) or not isinstance(head, (int, np.integer)):
        raise ProbeError(f"head must be a head index (int), got {head!r}")
    pos = trace.head_position(int(head))
    return int(trace.head_indices[pos]), pos


def _display_image(trace: Any, b: int, image: Any) -> Any:
    """The image to draw under a vision map: ``image=`` if given, else the trace's pixel
    input rescaled to 0..1 (the model's normalisation is not known here)."""
    if image is not None:
        return image
    return _pixel_image(getattr(trace, "pixel_values", None), b)


def _pixel_image(pixels: Any, b: int) -> Any:
    """Item ``b`` of a pixel input ``[batch, channel, height, width]`` rescaled to 0..1."""
    if pixels is None:
        raise ProbeError(
            "this trace keeps no pixel input: pass image= ([H, W, 3] in 0..1) to draw the map on"
        )
    img = pixels[b].detach().double().cpu().numpy()
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def _plot_attribution(attr: Any, view: str | None, b: int, options: dict[str, Any]) -> Figure:
    from probe.viewers._saliency import saliency_overlay
    from probe.viewers._tokens import token_strip

    vision = getattr(attr, "modality", "text") == "vision"
    view = view or ("saliency" if vision else "strip")
    if view not in ATTRIBUTION_VIEWS:
        raise ProbeError(
            f"unknown view {view!r} for an attribution: use one of {list(ATTRIBUTION_VIEWS)}"
        )
    b = batch_position(b, int(attr.scores.shape[0]))
    base = {"model_name": attr.model_name or None, "method": attr.method}
    # "ig attribution", "rollout score": the quantity, as probe render names it
    label = f"{attr.label} {'attribution' if attr.signed else 'score'}"
    if not vision and options.get("normalize"):
        label += " (normalized per method)"
    options.setdefault("colorbar_label", label)
    # a signed method's scale is symmetric around 0 even where this input's scores are all
    # positive, as in probe render and the comparison views
    options.setdefault("signed", bool(attr.signed))
    if view == "saliency":
        if not vision:
            raise ProbeError("the saliency view needs a vision attribution; use view='strip'")
        image = options.pop("image", None)
        if image is None:
            raise ProbeError(
                "an attribution keeps no image: pass image= ([H, W, 3] or [3, H, W] in 0..1, "
                "or uint8) to draw the saliency map on, e.g. image=batch.to_display(i) for "
                "probe.make_shapes images; or plot the trace: probe.plot(trace, 'rollout')"
            )
        return _call(saliency_overlay, view, (image, attr.as_grid()[b]), base, options)
    if vision:
        raise ProbeError("the strip view needs a text attribution; use view='saliency'")
    scores = attr.scores[b].detach().double().cpu().numpy()
    labels = attr.token_labels  # the tokens, byte-level symbols decoded for display
    tokens = list(labels[b]) if labels else [str(i) for i in range(len(scores))]
    keep = [i for i, t in enumerate(tokens) if i < len(scores)]
    return _call(token_strip, view, ([tokens[i] for i in keep], scores[keep]), base, options)


def plot(obj: Any, view: str | None = None, *, batch_index: int = 0, **options: Any) -> Figure:
    """The figure ``view`` of a trace or an attribution, in one call.

    Args:
        obj: a :class:`probe.Trace` (``probe.trace``) or a :class:`probe.Attribution`
            (``probe.attribute``).
        view: for a trace, one of ``"model"``, ``"heads"``, ``"head"``, ``"links"``,
            ``"coref"``, ``"rollout"``, ``"cls"``, ``"window"``, ``"cross"`` (required); for an
            attribution
            ``"strip"`` (text) or ``"saliency"`` (vision; pass ``image=``), default the one
            that fits.
        batch_index: which item of the batch to draw.
        **options: ``layer=`` / ``head=`` (model indices; default the last layer, head 0),
            ``word=`` (``coref``; highlighted in ``links``), ``occurrence=`` and
            ``candidates=`` (``coref``, as in :func:`probe.coref`), ``fusion=`` and
            ``discard=`` (``rollout``), ``image=`` (vision views), ``query=`` (``window``: a
            ``(row, col)`` token of the block's grid, default its centre), ``layers=``,
            ``fusion=`` and ``prefix=`` (``cross``, as in :func:`probe.token_patch_maps`);
            anything else goes to
            the viewer (e.g. ``title=``, ``width=``, ``top_k=``; ``direction="auto" | "ltr" |
            "rtl"`` for the views that lay tokens out, where ``"auto"`` runs an Arabic or Hebrew
            sentence right to left; the image views refuse it).

    Returns:
        The ``Figure`` (matplotlib object API; save it with ``probe.viewers.save_figure``).

    Raises:
        ProbeError: unknown view or option, a view that does not fit the trace (e.g.
            ``coref`` on a vision trace), a word not in the sentence.
    """
    if hasattr(obj, "target_words") and hasattr(obj, "source_words"):  # an Alignment
        raise ProbeError(
            "plot draws traces and attributions, not an Alignment: draw it with "
            "probe.viewers.alignment_view(al.matrix(layer), al.target_words, al.source_words) "
            "or probe.show(al, 'alignment')"
        )
    if hasattr(obj, "gates") and hasattr(obj, "stack"):  # a GateTrace
        raise ProbeError(
            "plot draws traces and attributions, not a GateTrace: draw it with "
            "probe.viewers.gate_figures(gates, image) or probe.show(model, 'gates', images)"
        )
    if hasattr(obj, "scores") and hasattr(obj, "method"):
        return _plot_attribution(obj, view, batch_index, options)
    if not hasattr(obj, "attention_mask") or not hasattr(obj, "layer_indices"):
        raise ProbeError(
            f"plot needs a probe Trace or Attribution, got {type(obj).__name__}: pass what "
            "probe.trace(...) or probe.attribute(...) returned"
        )
    trace = obj
    if view is None:
        raise ProbeError(
            f"pass a view name: one of {list(TRACE_VIEWS)}, e.g. probe.plot(trace, 'heads')"
        )
    if view not in TRACE_VIEWS:
        raise ProbeError(f"unknown view {view!r} for a trace: use one of {list(TRACE_VIEWS)}")
    b = _batch(trace, batch_index)
    vision = trace.family == "vision"
    if vision and view in ("links", "coref"):
        raise ProbeError(f"the {view!r} view needs a text trace; for images use 'rollout' or 'cls'")
    if not vision and view == "cls":
        raise ProbeError("the 'cls' view needs a vision trace; for text use 'heads' or 'links'")
    return _VIEWS[view](trace, b, options)


# ------------------------------------------------------------------ the views


def _attention(trace: Any, b: int, view: str, layers: list[int] | None = None,
               heads: list[int] | None = None) -> tuple[Any, np.ndarray]:
    """Item ``b``'s real tokens ``[layer, head, q, k]``, after refusing non-finite values in
    the drawn ``layers`` / ``heads`` (positions; ``None``: all) with their layer and head."""
    from probe.analysis._finite import check_view_finite

    attn = trace.require_attentions()[:, b]  # [layer, head, q, k]
    check_view_finite(trace, f"probe.plot {view!r} view", b, layers, heads)
    keep = _real(trace, b)
    return attn[:, :, keep][:, :, :, keep], keep


def _model(trace: Any, b: int, options: dict[str, Any], view: str = "model") -> Figure:
    from probe.viewers._heatmaps import model_view

    attn, keep = _attention(trace, b, view)
    heads = list(trace.head_indices) if trace.head_indices is not None else ["mean"]
    kwargs = {"model_name": trace.model_name, "layers": list(trace.layer_indices),
              "heads": heads, "sentence": quoted_sentence(trace, b)}
    return _call(model_view, view, (attn, _tokens(trace, b, keep)), kwargs, options)


def _heads(trace: Any, b: int, options: dict[str, Any]) -> Figure:
    from probe.viewers._heatmaps import head_grid

    if options.get("layer") is None:
        options.pop("layer", None)
        return _model(trace, b, options, "heads")  # its errors name the view asked for
    layer, pos = _layer(trace, options.pop("layer"))
    attn, keep = _attention(trace, b, "heads", [pos])
    heads = list(trace.head_indices) if trace.head_indices is not None else ["mean"]
    kwargs = {"model_name": trace.model_name, "layer": layer, "heads": heads,
              "sentence": quoted_sentence(trace, b)}
    return _call(head_grid, "heads", (attn[pos], _tokens(trace, b, keep)), kwargs, options)


def _one_head(trace: Any, b: int, options: dict[str, Any]) -> Figure:
    from probe.viewers._heatmaps import head_heatmap

    layer, pos = _layer(trace, options.pop("layer", None))
    if trace.head_indices is None:
        if options.get("head") is not None:
            trace.head_position(options["head"])  # refuses: heads were averaged during capture
        options.pop("head", None)
        head, hpos = "mean", 0
    else:
        head, hpos = _head(trace, options.pop("head", None))
    attn, keep = _attention(trace, b, "head", [pos], [hpos])
    kwargs = {"model_name": trace.model_name, "layer": layer, "head": head}
    return _call(head_heatmap, "head", (attn[pos, hpos], _tokens(trace, b, keep)), kwargs,
                 options)


def coref_rows(words: Sequence[str], links: Sequence[Any]) -> list[tuple[int, int, Any, float]]:
    """``coref_view``'s ``top`` rows of ``probe.coref`` links: the antecedent as its word, or
    as its index where the word occurs more than once (the table then says which: "的 (0)")."""
    from probe.analysis._coref import word_key

    counts: dict[str, int] = {}
    for w in words:
        counts[word_key(w)] = counts.get(word_key(w), 0) + 1
    return [(lk.layer, lk.head,
             lk.antecedent_index if counts.get(word_key(lk.antecedent), 0) > 1
             else lk.antecedent, lk.weight) for lk in links]


def group_spans(trace: Any, b: int, *wanted: Any) -> Any:
    """``trace`` with every wanted string that is no word of item ``b`` but spells several
    consecutive words or part of one made one word (``"马路"`` over ``马`` ``路``, ``"マット"``
    out of ``がマットの``: probe.group_words, which refuses a string whose edges fall inside
    a token)."""
    from probe.analysis._word_groups import group_words, spells_part

    if trace.words is None or trace.word_ids is None:
        return trace  # the views say what is missing
    strings = [w for w in wanted if isinstance(w, str) and spells_part(trace, b, w)]
    return group_words(trace, strings) if strings else trace


def word_positions(trace: Any, b: int, word: Any, occurrence: int) -> list[int]:
    """The token positions of ``word`` (its ``occurrence``) in item ``b``, a string over several
    words (or inside one) grouped first (:func:`group_spans`): what the links view highlights,
    for ``probe.plot(trace, "links", word=)`` and ``probe render links --word`` alike."""
    from probe.analysis._coref import resolve_word, word_membership

    trace = group_spans(trace, b, word)
    w = resolve_word(list(trace.words[b]), word_membership(trace, b), word, occurrence)
    return [i for i, word_id in enumerate(trace.word_ids[b]) if word_id == w]


def _links(trace: Any, b: int, options: dict[str, Any]) -> Figure:
    from probe.viewers._links import link_view

    layer, pos = _layer(trace, options.pop("layer", None))
    kwargs: dict[str, Any] = {"model_name": trace.model_name, "layer": layer,
                              "sentence": quoted_sentence(trace, b)}
    head = options.pop("head", None)
    drawn = None  # every head, or only head= (the others may hold a NaN: not drawn, not read)
    if head is not None:
        kwargs["heads"] = drawn = [_head(trace, head)[1]]
    attn, keep = _attention(trace, b, "links", [pos], drawn)
    if trace.head_indices is not None:
        kwargs["head_names"] = list(trace.head_indices)
    word = options.pop("word", None)
    occurrence = options.pop("occurrence", 0)
    if word is not None:
        positions = set(word_positions(trace, b, word, occurrence))
        kwargs["highlight"] = [j for j, i in enumerate(keep) if i in positions]  # every token
    return _call(link_view, "links", (attn[pos], _tokens(trace, b, keep)), kwargs, options)


def unknown_options(trace: Any, b: int) -> dict[str, Any]:
    """``coref_view``'s ``unknown=`` / ``partly_unknown=`` / ``unknown_token=`` of item ``b``:
    the words made only or partly of the tokenizer's unknown token (the figure names those it
    follows or ranks)."""
    from probe.analysis._unknown import partly_unknown_words, unknown_words

    unknown, partly = unknown_words(trace, b), partly_unknown_words(trace, b)
    if not unknown and not partly:
        return {}
    return {"unknown": unknown, "partly_unknown": partly, "unknown_token": trace.unk_token}


def _coref(trace: Any, b: int, options: dict[str, Any]) -> Figure:
    from probe.analysis._coref import antecedents, word_rows
    from probe.viewers._coref import coref_view

    word = options.pop("word", None)
    if word is None:
        raise ProbeError("the coref view needs word=, e.g. probe.plot(trace, 'coref', word='it')")
    occurrence = options.pop("occurrence", 0)
    candidates = options.pop("candidates", None)
    cands = [candidates] if isinstance(candidates, str) else list(candidates or [])
    trace = group_spans(trace, b, word, *cands)
    report = antecedents(trace, word, b, candidates, occurrence=occurrence, with_rollout=False)
    links = sorted(report.per_head, key=lambda lk: (-lk.weight, lk.layer, lk.head))
    layer, head = options.pop("layer", None), options.pop("head", None)
    if layer is None and head is None:
        layer, head = links[0].layer, links[0].head
    layer_i, lpos = _layer(trace, layer)
    head_i, hpos = (("mean", 0) if trace.head_indices is None else _head(trace, head))
    weights = word_rows(trace, report.word_index, b)[0][lpos, hpos]
    kwargs = {
        "top": coref_rows(trace.words[b], links[:8]),
        "candidates": list(report.candidates), "model_name": trace.model_name,
        "layer": layer_i, "head": head_i, **unknown_options(trace, b),
    }
    return _call(coref_view, "coref", (list(trace.words[b]), report.word_index, weights),
                 kwargs, options)


def _rollout(trace: Any, b: int, options: dict[str, Any]) -> Figure:
    import probe
    from probe.attribution._attention import reduce_map
    from probe.viewers._saliency import saliency_overlay
    from probe.viewers._tokens import token_strip

    given = sorted(key for key in ("layer", "head") if key in options)
    if given:  # went to the title only: "layer 1" over a rollout of every layer
        raise ProbeError(
            f"the 'rollout' view folds every layer and head, so "
            f"{' and '.join(k + '=' for k in given)} {'do' if len(given) > 1 else 'does'} not "
            "apply; drop it (the view takes fusion= and discard=), or draw one head with the "
            "'head' view"
        )
    from probe.attribution._registry import method_label

    fusion = options.pop("fusion", "mean")
    discard = options.pop("discard", 0.0)
    image = options.pop("image", None)
    # named as probe render rollout names it (Attribution.label): "rollout[head_fusion=max]"
    options_given = {"head_fusion": fusion} | ({"discard_ratio": discard} if discard else {})
    method = method_label("rollout", options_given)
    result = probe.rollout(trace, head_fusion=fusion, discard_ratio=discard)
    scores = reduce_map(trace, result)[b]
    kwargs = {"model_name": trace.model_name, "method": method}
    # the quantity, as probe render rollout names it over tokens and over an image
    options.setdefault("colorbar_label", f"{method} score")
    if trace.family == "vision":
        grid = scores.reshape(*trace.grid)
        return _call(saliency_overlay, "rollout", (_display_image(trace, b, image), grid),
                     kwargs, options)
    keep = _real(trace, b)
    special = trace.special_tokens_mask[b].bool().cpu().numpy()
    keep = np.array([i for i in keep if not special[i]], dtype=int)
    values = scores.detach().double().cpu().numpy()[keep]
    # one row labelled with the method, the rows read and the tokens left out under the title,
    # as probe render rollout draws it
    options.setdefault("note", strip_note(trace, b, "auto"))
    return _call(token_strip, "rollout", (_tokens(trace, b, keep), {method: values}), kwargs,
                 options)


def _cls(trace: Any, b: int, options: dict[str, Any]) -> Figure:
    import probe
    from probe.viewers._grid import cls_head_grid

    layer, pos = _layer(trace, options.pop("layer", None))
    image = _display_image(trace, b, options.pop("image", None))
    maps = probe.patch_maps(trace)[pos, b]  # [head, rows, cols]
    heads = list(trace.head_indices) if trace.head_indices is not None else ["mean"]
    kwargs = {"model_name": trace.model_name, "layer": layer, "heads": heads}
    return _call(cls_head_grid, "cls", (image, maps), kwargs, options)


def _window(trace: Any, b: int, options: dict[str, Any]) -> Figure:
    from probe.viewers._style import title
    from probe.viewers._windows import window_query_view

    windows = getattr(trace, "windows", None)
    if windows is None:
        raise ProbeError(
            "the 'window' view needs a windowed-attention trace (Swin); for other vision "
            "models use 'cls' or 'rollout'"
        )
    layer, pos = _layer(trace, options.pop("layer", None))
    block = windows[pos]
    query = options.pop("query", None)
    if query is None:
        query = (block.grid[0] // 2, block.grid[1] // 2)
    if not isinstance(query, (tuple, list)) or len(query) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in query
    ):
        raise ProbeError(f"query must be a (row, col) token of the block's grid, got {query!r}")
    query = (int(query[0]), int(query[1]))
    image = _display_image(trace, b, options.pop("image", None))
    maps = block.query_map(*query)[b]
    name = title(trace.model_name, layer, method=f"stage {block.stage}, token {query}")
    kwargs = {"heads": list(range(block.num_heads)), "title": name}
    if "title" in options:
        kwargs["title"] = options.pop("title")
    return _call(window_query_view, "window", (image, maps, query, block.token_size), kwargs,
                 options)


def _cross(trace: Any, b: int, options: dict[str, Any]) -> Figure:
    """Image-to-text: each written token's cross-attention over the image. A trace's last
    decoder step wrote a token it does not hold: left out when there are others."""
    from probe.analysis._image_text import (
        image_geometry,
        token_patch_maps,
        token_prefix_share,
        written_labels,
    )
    from probe.viewers._image_text import token_patches_view

    generation = hasattr(trace, "num_prompt_tokens")
    layers = options.pop("layers", options.pop("layer", None))
    fusion, prefix = options.pop("fusion", "mean"), options.pop("prefix", "drop")
    maps = token_patch_maps(trace, batch_index=b, layers=layers, head_fusion=fusion,
                            prefix=prefix)
    n_prefix = image_geometry(trace)[1]
    share = (token_prefix_share(trace, batch_index=b, layers=layers, head_fusion=fusion)
             if n_prefix and prefix == "drop" else None)
    labels = written_labels(trace, b) or [f"step {i}" for i in range(int(maps.shape[0]))]
    if not generation and maps.shape[0] > 1:
        maps, labels = maps[:-1], labels[:-1]
        share = None if share is None else share[:-1]
    if generation:  # the steps after this item's EOS only pad it to the batch's longest
        real = max(1, int(trace.generated_mask[b].sum()))
        maps, labels = maps[:real], labels[:real]
        share = None if share is None else share[:real]
    image = options.pop("image", None)
    if image is None:
        image = _pixel_image(trace.source_pixel_values if generation else trace.pixel_values, b)
    cross = trace.cross
    kept = (list(cross.layer_indices) if layers is None else
            [cross.layer_indices[p] for p in _cross_positions(cross, layers)])
    which = ("decoder layers " + ", ".join(map(str, kept)) if len(kept) > 1
             else f"decoder layer {kept[0]}")
    left = [] if not n_prefix else ["CLS left out" if prefix == "drop" else
                                     "renormalised over the patches"]
    parts = [str(trace.model_name), "where each written token looked", which,
             f"heads {fusion}", *left]
    kwargs = {"prefix_share": None if share is None else [float(v) for v in share],
              "prefix_name": "CLS" if n_prefix == 1 else "CLS+dist",
              "title": " \u00b7 ".join(parts)}
    kwargs.update({k: options.pop(k) for k in list(kwargs) if k in options})
    return _call(token_patches_view, "cross", (image, maps.numpy(), labels), kwargs, options)


def _cross_positions(cross: Any, layers: Any) -> list[int]:
    from probe.analysis._image_text import layer_positions

    return layer_positions(cross, layers)


_VIEWS: dict[str, Callable[[Any, int, dict[str, Any]], Figure]] = {
    "model": _model, "heads": _heads, "head": _one_head, "links": _links, "coref": _coref,
    "rollout": _rollout, "cls": _cls, "window": _window, "cross": _cross,
}
