"""Interactive DETR view: the image with the detector's object queries, each kept query's
box drawn; hover or click a query (its box or its row in the list) to see its decoder
cross-attention over the image, per decoder layer and per head or the mean of the heads,
with its class and score (the decoder-attention figure of Carion et al. 2020, Fig. 6, made
interactive; the static twin is :func:`probe.viewers.detr_queries_view`).

Each map is embedded divided by its own maximum (so a diffuse map keeps all 256 levels;
the error is at most ``max / 510`` of that map), with the maxima as numbers beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from probe._errors import ProbeError
from probe._index import batch_position
from probe.viewers.html._attribution import _grey_data_url, _image_data_url
from probe.viewers.html._page import (
    DEFAULT_MAX_VALUES,
    HtmlView,
    _to_numpy,
    build_page,
    check_budget,
    check_finite,
    cmap_hex,
    encode_array,
    head_colors,
    labels,
    view_title,
)
from probe.viewers.html._runtime import CSS, RUNTIME_JS

__all__ = ["detr_html", "detr_view_html"]

_DETR_HINT = ("pass fewer queries or layers (e.g. maps[:, :, kept] with their boxes, classes and "
              "scores), a smaller image")
_TRACE_HINT = ("keep fewer decoder layers or heads (probe.show(trace, 'detr', layers=[...], "
               "heads=[...])), a smaller image")

_DETR_CSS = """
.p-detr{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.p-detr canvas.p-scene{cursor:pointer;border:1px solid #ccc;display:block}
.p-detr canvas.p-input{border:1px solid #ccc;display:block}
.p-detr > div{max-width:100%}
.p-qlist tr.off td{color:#999}
.p-qlist td.p-sw{width:12px;padding:0}
.p-qlist td.p-cls{text-align:left;max-width:12em;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap}
.p-qlist tr.hot td{background:#fff3c4}
"""

_DETR_JS = r"""
P.start(async (root, d) => {
  const M = await P.tensor("maps", d.maps);
  const [L, H1, Q, GH, GW] = M.shape, N = GH * GW;
  P.header(root, d);
  // the input in its own colours in a panel of its own; the maps over a grey copy of it
  const img = new Image(), grey = new Image();
  img.src = d.image; grey.src = d.grey;
  await Promise.all([img.decode(), grey.decode()]);
  const [IH, IW] = d.size, SIDE = d.side;
  const cw = IW >= IH ? SIDE : Math.round(SIDE * IW / IH);
  const ch = IH >= IW ? SIDE : Math.round(SIDE * IH / IW);
  const seq = P.lut(d.cmap), A8 = Math.round(d.alpha * 255);
  const kept = new Set(d.kept);
  let layer = d.layer0, head = H1 - 1, locked = d.kept.length ? d.kept[0] : 0, hover = null;
  let allBoxes = false;
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  bar.appendChild(P.labelled("Decoder layer", P.select(d.layers, v => { layer = v; draw(); },
    layer)));
  bar.appendChild(P.labelled("Head", P.select(d.heads.map(h => "head " + h).concat(
    ["mean of heads"]), v => { head = v; draw(); }, head)));
  const box = P.el("input"); box.type = "checkbox";
  box.addEventListener("change", () => { allBoxes = box.checked; draw(); });
  bar.appendChild(P.labelled("boxes of all " + Q + " queries", box));
  const legend = P.el("span"); bar.appendChild(legend);
  const wrap = P.el("div", "p-detr"); root.appendChild(wrap);
  const inputBox = P.el("div"); wrap.appendChild(inputBox);
  const input = P.canvas(Math.round(cw / 2), Math.round(ch / 2), "p-input");
  input.getContext("2d").drawImage(img, 0, 0, Math.round(cw / 2), Math.round(ch / 2));
  inputBox.appendChild(input); inputBox.appendChild(P.el("div", "p-lab", "input"));
  const left = P.el("div"); wrap.appendChild(left);
  const scene = P.canvas(cw, ch, "p-scene p-fit"); left.appendChild(scene);
  const readout = P.el("div", "p-readout"); left.appendChild(readout);
  // the query list, best score first; kept queries in their box colour
  const order = [...Array(Q).keys()].sort((a, b) => d.scores[b] - d.scores[a]);
  const table = P.el("table", "p-table p-qlist"), head0 = P.el("tr");
  ["", "query", "class", "score"].forEach(t => head0.appendChild(P.el("th", null, t)));
  table.appendChild(head0);
  const rows = {};
  for (const q of order) {
    const tr = P.el("tr", "click" + (kept.has(q) ? "" : " off"));
    const sw = P.el("td", "p-sw");
    if (kept.has(q)) sw.style.background = d.colors[q];
    tr.appendChild(sw);
    tr.appendChild(P.el("td", null, d.queries[q]));
    const c = P.el("td", "p-cls", d.labels[q]); c.title = d.labels[q]; tr.appendChild(c);
    tr.appendChild(P.el("td", null, d.score_text[q]));
    tr.dataset.query = String(q);
    tr.addEventListener("mouseenter", () => { hover = q; draw(); });
    tr.addEventListener("mouseleave", () => { hover = null; draw(); });
    tr.addEventListener("click", () => { locked = q; draw(); });
    table.appendChild(tr);
    rows[q] = tr;
  }
  const side = P.el("div"); side.appendChild(table); wrap.appendChild(side);
  function rect(q) {
    const [bx, by, bw, bh] = d.boxes[q];
    return [(bx - bw / 2) * cw, (by - bh / 2) * ch, bw * cw, bh * ch];
  }
  function drawn(q) { return kept.has(q) || allBoxes; }
  // the query under the pointer: the smallest drawn box that contains it
  function at(ev) {
    const b = scene.getBoundingClientRect();
    const x = (ev.clientX - b.left) / b.width * cw, y = (ev.clientY - b.top) / b.height * ch;
    let best = null, area = Infinity;
    for (let q = 0; q < Q; q++) {
      if (!drawn(q)) continue;
      const [rx, ry, rw, rh] = rect(q);
      if (x >= rx && x <= rx + rw && y >= ry && y <= ry + rh && rw * rh < area) {
        best = q; area = rw * rh;
      }
    }
    return best;
  }
  scene.addEventListener("mousemove", ev => {
    const q = at(ev);
    if (q !== hover) { hover = q; draw(); }
  });
  scene.addEventListener("mouseleave", () => { if (hover !== null) { hover = null; draw(); } });
  scene.addEventListener("click", ev => { const q = at(ev); if (q !== null) { locked = q;
    draw(); } });
  const tab = P.levels(M, seq, v => v, A8);  // embedded values are map / its max: 0..1
  function draw() {
    const q = hover !== null ? hover : locked;
    const off = ((layer * H1 + head) * Q + q) * N, vmax = d.scale[layer][head][q];
    const ctx = scene.getContext("2d");
    ctx.clearRect(0, 0, cw, ch);
    ctx.drawImage(grey, 0, 0, cw, ch);
    const src = P.paint(M, off, GH, GW, tab);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(src, 0, 0, cw, ch);
    for (let j = 0; j < Q; j++) {
      if (!drawn(j) && j !== q) continue;
      const [rx, ry, rw, rh] = rect(j);
      ctx.setLineDash(kept.has(j) ? [] : [4, 3]);
      ctx.lineWidth = j === q ? 3.5 : 1.8;
      ctx.strokeStyle = kept.has(j) ? d.colors[j] : "#888";
      ctx.strokeRect(rx, ry, rw, rh);
    }
    ctx.setLineDash([]);
    legend.textContent = "";
    legend.appendChild(P.colorbar(seq, 110, 10, 0, vmax, "attention (this map)"));
    readout.textContent = "query " + d.queries[q] + ": " + d.labels[q] + " " +
      d.score_text[q] + " \u00b7 decoder layer " + d.layers[layer] + ", " +
      (head === H1 - 1 ? "mean of heads" : "head " + d.heads[head]) + " \u00b7 max weight " +
      P.fmt(vmax) + (hover === null ? "" : "  (click to keep)");
    for (const j of order) {
      rows[j].classList.toggle("sel", j === locked);
      rows[j].classList.toggle("hot", j === hover);
    }
    root.dataset.query = String(q);
    root.dataset.locked = String(locked);
    root.dataset.layer = String(layer);
    root.dataset.head = head === H1 - 1 ? "mean" : String(head);
  }
  draw();
});
"""


def detr_view_html(
    image: Any,
    maps: Any,
    boxes: Any,
    classes: Sequence[str],
    scores: Sequence[float],
    *,
    kept: Sequence[int] | None = None,
    queries: Sequence[int | str] | None = None,
    layers: Sequence[int | str] | None = None,
    heads: Sequence[int | str] | None = None,
    layer: int = -1,
    alpha: float = 0.6,
    image_size: tuple[int, int] | None = None,
    side: int = 420,
    model_name: str | None = None,
    title: str | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
) -> HtmlView:
    """Interactive DETR object-query view.

    The image (at its own proportions, or ``image_size``'s) with the box of every kept query
    in its colour; beside it the list of all queries, best score first. Hover a box or a list
    row to overlay that query's cross-attention on the image (click to keep it shown); the
    layer selector picks the decoder layer, the head selector one head or the mean of the
    heads (the map :func:`probe.analysis.query_maps` gives and the static view draws). Each
    map is coloured from 0 to its own maximum (``viridis``), as in the static view.

    Args:
        image: ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1`` (or uint8): the model's input.
        maps: ``[layer, head, query, h, w]`` cross-attention of every query over the
            feature-map grid (keys row-major), non-negative.
        boxes: ``[query, 4]`` predicted boxes ``(cx, cy, w, h)`` relative to the image.
        classes: ``[query]`` predicted class name of each query.
        scores: ``[query]`` probability of that class (shown with three decimals, rounded
            down as in the static view: 0.9996 reads 0.999, never 1.000).
        kept: positions (on the query axis) of the queries whose boxes are drawn, the first
            shown at the start; default all of them.
        queries, layers, heads: the model's index of each query / decoder layer / head
            (default ``0..n-1``).
        layer: the layer shown at the start (position on the layer axis; default the last).
        alpha: opacity of the map over the grey copy of the image (as the figures; the
            input is shown in its own colours in a small panel of its own).
        image_size: ``(height, width)`` to draw at when ``image`` is the model's input
            resized from an image of another aspect ratio (maps and boxes follow).
        side: the longer side of the drawn image in CSS pixels (160..1200).
        model_name: goes into the title; title: replaces it.
        max_values: the size budget for ``maps`` (with the mean of the heads added).

    Returns:
        An :class:`HtmlView`.
    """
    from probe.viewers._gates import score_text
    from probe.viewers._saliency import as_image, check_placement
    from probe.viewers._style import SEQUENTIAL_CMAP

    heat = np.asarray(_to_numpy(maps), dtype=np.float32)
    if heat.ndim != 5 or heat.size == 0:
        raise ProbeError(
            f"maps must be [layer, head, query, h, w] cross-attention, got shape "
            f"{list(heat.shape)}"
        )
    n_l, n_h, n_q, gh, gw = heat.shape
    check_budget((n_l, n_h + 1, n_q, gh, gw), max_values, "maps (with the mean of the heads)",
                 _DETR_HINT)
    check_finite(heat, "maps")
    if heat.min() < 0:
        raise ProbeError("maps has negative values: pass attention weights (in [0, 1])")
    box = np.asarray(_to_numpy(boxes), dtype=np.float64)
    if box.shape != (n_q, 4) or not np.isfinite(box).all():
        raise ProbeError(
            f"boxes must be [query, 4] finite (cx, cy, w, h) with one box per query ({n_q}), "
            f"got shape {list(box.shape)}"
        )
    names = labels(classes, n_q, "classes")
    score = [float(v) for v in np.asarray(_to_numpy(scores), dtype=np.float64).reshape(-1)]
    if len(score) != n_q or not all(np.isfinite(score)):
        raise ProbeError(f"scores must hold one finite score per query ({n_q}), got {len(score)}")
    shown = list(range(n_q)) if kept is None else list(
        dict.fromkeys(_position(k, n_q, "kept") for k in kept))
    if not shown:
        raise ProbeError("kept is empty: pass the queries whose boxes to draw (or None: all)")
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or \
            not -n_l <= layer < n_l:
        raise ProbeError(f"layer must be a position in -{n_l}..{n_l - 1}, got {layer!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ProbeError(f"alpha must be in [0, 1], got {alpha!r}")
    if isinstance(side, bool) or not isinstance(side, int) or not 160 <= side <= 1200:
        raise ProbeError(f"side must be a size in pixels in [160, 1200], got {side!r}")
    url, size = _image_data_url(image)
    drawn, _ = check_placement(as_image(image), image_size, None)
    size = drawn or size
    full = np.concatenate([heat, heat.mean(axis=1, keepdims=True)], axis=1)  # [L, H+1, Q, h, w]
    scale = full.reshape(n_l, n_h + 1, n_q, -1).max(-1)
    unit = full / np.where(scale > 0, scale, 1.0)[..., None, None]
    palette = head_colors(len(shown))
    colors = ["#888888"] * n_q
    for i, q in enumerate(shown):
        colors[q] = palette[i]
    kept_note = "all queries" if kept is None else f"{len(shown)} of {n_q} queries drawn"
    payload = {
        "title": view_title(model_name, "object queries' cross-attention", title),
        "subtitle": f"{n_q} object queries ({kept_note}), {n_l} decoder layers x {n_h} heads, "
                    f"{gh} x {gw} feature map; hover a box or a row, click to keep it",
        "image": url, "grey": _grey_data_url(image), "size": list(size), "side": side,
        "alpha": float(alpha),
        "maps": encode_array(unit, "maps"),
        "scale": [[[float(v) for v in row] for row in per_layer] for per_layer in scale],
        "boxes": [[float(v) for v in b] for b in box], "labels": names, "scores": score,
        # shown rounded DOWN, as the static view rounds: 0.9996 never reads as 1.000
        "score_text": [score_text(v, 3) for v in score],
        "kept": shown, "colors": colors,
        "queries": labels(queries, n_q, "queries"), "layers": labels(layers, n_l, "layers"),
        "heads": labels(heads, n_h, "heads"), "layer0": int(layer) % n_l,
        "cmap": cmap_hex(SEQUENTIAL_CMAP),
    }
    page = build_page(title=payload["title"], css=CSS + _DETR_CSS, js=RUNTIME_JS + _DETR_JS,
                      data=payload)
    return HtmlView(page, view="detr", height=max(side, 26 * n_q) + 180)


def _position(value: Any, n: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -n <= value < n:
        raise ProbeError(f"{what} holds {value!r}: pass positions on the query axis in 0..{n - 1}")
    return int(value) % n


def detr_html(
    trace: Any,
    boxes: Any,
    classes: Sequence[str],
    scores: Sequence[float],
    *,
    image: Any = None,
    batch_index: int = 0,
    **options: Any,
) -> HtmlView:
    """The DETR view of a trace of a ``DetrForObjectDetection`` (see :func:`detr_view_html`;
    options go there): every query's cross-attention ``trace.cross`` of batch item
    ``batch_index`` on the feature-map grid ``trace.grid``, over ``image`` (default the
    trace's ``pixel_values``, min-max scaled).

    Args:
        trace: a :class:`probe.Trace` of a DETR detector.
        boxes, classes, scores: that item's predictions, one per query (e.g. from
            ``probe.analysis.detr_predictions`` and the detector's class names).
        layer (option): the decoder layer the page opens on: the MODEL's decoder layer, as
            ``layer=`` everywhere (negative counts back from its last), one the trace kept;
            default the last kept (see :func:`probe.analysis.decoder_layer_position`).
    """
    from probe.analysis._detr import decoder_layer_position
    from probe.viewers.html._trace import trace_image

    cross = getattr(trace, "cross", None)
    if cross is None or getattr(cross, "attentions", None) is None or trace.grid is None:
        raise ProbeError(
            "the DETR view needs a trace of a DETR detector (cross-attention on a feature-map "
            "grid): probe.trace(detr, pixels) without stream=True"
        )
    attn = cross.attentions
    batch_index = batch_position(batch_index, int(attn.shape[1]))
    rows, cols = trace.grid
    n_l, _, n_h, n_q, n_k = attn.shape
    if n_k != rows * cols:
        raise ProbeError(f"cross-attention has {n_k} keys but the grid is {rows}x{cols}")
    check_budget((n_l, n_h + 1, n_q, rows, cols), options.get("max_values", DEFAULT_MAX_VALUES),
                 "maps (with the mean of the heads)", _TRACE_HINT)
    maps = np.asarray(_to_numpy(attn[:, batch_index]), dtype=np.float32)
    heads = list(cross.head_indices) if cross.head_indices is not None else None
    options["layer"] = decoder_layer_position(cross, options.get("layer"))  # now a position
    options.setdefault("layers", list(cross.layer_indices))
    options.setdefault("heads", heads)
    options.setdefault("model_name", trace.model_name)
    return detr_view_html(
        trace_image(trace, batch_index) if image is None else image,
        maps.reshape(n_l, n_h, n_q, rows, cols), boxes, classes, scores, **options,
    )
