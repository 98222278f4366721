"""Interactive windowed-attention (Swin) view: the image with a block selector (stage, block,
shifted or not); hover a patch to see where it attends within its window, per head or the
mean of the heads, with the block's window outlines drawn (a shifted block's windows wrap
around the image edges: each piece is outlined); click to keep the query. The readout names
the block, head, query patch and the strongest keys. The static twin is
:func:`probe.viewers.window_query_view`.

The page embeds each block's raw windows, not the dense ``L x L`` maps: the weights
``[windows, head, N, N]`` with every query row divided by its own maximum (uint8, so a
diffuse row keeps all 256 levels; error at most ``max / 510`` of that row) and the row maxima
as float32, plus a slot table (token -> window, slot, and window slot -> token, the cyclic
shift and the padding undone, from :meth:`WindowLayout.token_index`) and, for shifted blocks,
the pairs the model's shift mask separates. The page builds a query's map from them exactly
as :func:`probe.analysis.window_query_map` does.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
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
    cmap_hex,
    encode_array,
    labels,
    view_title,
)
from probe.viewers.html._runtime import CSS, RUNTIME_JS

__all__ = ["window_view_html", "windows_html"]

_HINT = "pass fewer blocks (windows_html(trace, layers=[...]), or blocks=), a smaller image"

_WIN_CSS = """
.p-win{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.p-win canvas.p-scene{cursor:crosshair;border:1px solid #ccc;display:block}
.p-win canvas.p-input{border:1px solid #ccc;display:block}
.p-win > div{max-width:100%}
.p-win .p-readout{max-width:520px;white-space:pre-line}
"""

_WIN_JS = r"""
P.start(async (root, d) => {
  P.header(root, d);
  const B = d.blocks.length, X = [];
  for (let b = 0; b < B; b++) {
    const blk = d.blocks[b], bin = atob(blk.scale), raw = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) raw[i] = bin.charCodeAt(i);
    X.push({T: await P.tensor("block" + b, blk.weights), S: new Float32Array(raw.buffer),
            K: blk.cut ? await P.tensor("cut" + b, blk.cut) : null});
  }
  // the input in its own colours in a panel of its own; the maps over a grey copy of it
  const img = new Image(), grey = new Image();
  img.src = d.image; grey.src = d.grey;
  await Promise.all([img.decode(), grey.decode()]);
  const [IH, IW] = d.size, [INH, INW] = d.input, SIDE = d.side;
  const cw = IW >= IH ? SIDE : Math.round(SIDE * IW / IH);
  const ch = IH >= IW ? SIDE : Math.round(SIDE * IH / IW);
  const seq = P.lut(d.cmap), A8 = Math.round(d.alpha * 255);
  let block = d.open, head = -1, query = d.query, locked = false, shown = null;
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  bar.appendChild(P.labelled("Block", P.select(d.blocks.map(k => k.label), v => {
    const [y, x] = centre(block, query); block = v; query = cell(block, y, x); heads(); draw();
  }, block)));
  const headSlot = P.el("span"); bar.appendChild(headSlot);
  const legend = P.el("span"); bar.appendChild(legend);
  const wrap = P.el("div", "p-win"); root.appendChild(wrap);
  const inputBox = P.el("div"); wrap.appendChild(inputBox);
  const input = P.canvas(Math.round(cw / 2), Math.round(ch / 2), "p-input");
  input.getContext("2d").drawImage(img, 0, 0, Math.round(cw / 2), Math.round(ch / 2));
  inputBox.appendChild(input); inputBox.appendChild(P.el("div", "p-lab", "input"));
  const left = P.el("div"); wrap.appendChild(left);
  const scene = P.canvas(cw, ch, "p-scene p-fit"); left.appendChild(scene);
  const readout = P.el("div", "p-readout"); wrap.appendChild(readout);
  function heads() {
    const names = d.blocks[block].heads.map(h => "head " + h).concat(["mean of heads"]);
    if (head >= names.length - 1) head = -1;
    headSlot.textContent = "";
    headSlot.appendChild(P.labelled("Head", P.select(names, v => {
      head = v === names.length - 1 ? -1 : v; draw(); }, head < 0 ? names.length - 1 : head)));
  }
  // a token's centre in model-input pixels, and the token of a block under such a point
  function centre(b, q) {
    const blk = d.blocks[b], C = blk.grid[1], [th, tw] = blk.token;
    return [(Math.floor(q / C) + 0.5) * th, (q % C + 0.5) * tw];
  }
  function cell(b, y, x) {
    const [R, C] = d.blocks[b].grid, [th, tw] = d.blocks[b].token;
    const r = Math.max(0, Math.min(R - 1, Math.floor(y / th)));
    return r * C + Math.max(0, Math.min(C - 1, Math.floor(x / tw)));
  }
  // the query's weights on the block's grid: window_query_map's row, from the raw windows
  function values(b, h, q) {
    const blk = d.blocks[b], Z = X[b], [R, C] = blk.grid, N = blk.area, H = blk.heads.length;
    const w = blk.win[q], s = blk.slot[q], out = new Float64Array(R * C);
    const hs = h < 0 ? [...Array(H).keys()] : [h];
    for (let k = 0; k < N; k++) {
      const t = blk.index[w * N + k];
      if (t < 0 || (Z.K && Z.K.get((w * N + s) * N + k) > 0.5)) continue;
      let v = 0;
      for (const g of hs) { const r = (w * H + g) * N + s; v += Z.T.get(r * N + k) * Z.S[r]; }
      out[t] = v / hs.length;
    }
    return out;
  }
  function point(ev) {
    const r = scene.getBoundingClientRect();
    return [(ev.clientY - r.top) / r.height * INH, (ev.clientX - r.left) / r.width * INW];
  }
  scene.addEventListener("mousemove", ev => {
    if (locked) return;
    const q = cell(block, ...point(ev));
    if (q !== query) { query = q; draw(); }
  });
  scene.addEventListener("click", ev => { locked = !locked; query = cell(block, ...point(ev));
    draw(); });
  function outline(ctx, blk, keep, sx, sy) {
    const [R, C] = blk.grid, [th, tw] = blk.token, win = blk.win;
    ctx.beginPath();
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) {
      const w = win[r * C + c];
      const x0 = c * tw * sx, x1 = (c + 1) * tw * sx, y0 = r * th * sy, y1 = (r + 1) * th * sy;
      const edges = [[c === C - 1 || win[r * C + c + 1] !== w, x1, y0, x1, y1],
        [r === R - 1 || win[(r + 1) * C + c] !== w, x0, y1, x1, y1],
        [c === 0 || win[r * C + c - 1] !== w, x0, y0, x0, y1],
        [r === 0 || win[(r - 1) * C + c] !== w, x0, y0, x1, y0]];
      for (const [on, a, b2, e, f] of edges)
        if (on && keep(w)) { ctx.moveTo(a, b2); ctx.lineTo(e, f); }
    }
    ctx.stroke();
  }
  const scratch = document.createElement("canvas");
  function draw() {
    const blk = d.blocks[block], [R, C] = blk.grid, [th, tw] = blk.token, L = R * C;
    const vals = values(block, head, query);
    let vmax = 0;
    for (let i = 0; i < L; i++) vmax = Math.max(vmax, vals[i]);
    const top = vmax || 1;
    scratch.width = C; scratch.height = R;
    const sctx = scratch.getContext("2d"), im = sctx.createImageData(C, R);
    for (let i = 0; i < L; i++) {
      const c = P.rgb(seq, vals[i] / top);
      im.data.set([c[0], c[1], c[2], A8], 4 * i);
    }
    sctx.putImageData(im, 0, 0);
    const ctx = scene.getContext("2d"), sx = cw / INW, sy = ch / INH;
    ctx.clearRect(0, 0, cw, ch); ctx.imageSmoothingEnabled = true;
    ctx.drawImage(grey, 0, 0, cw, ch);
    ctx.imageSmoothingEnabled = false;  // one colour per token, as the static view
    ctx.drawImage(scratch, 0, 0, C * tw * sx, R * th * sy);
    ctx.lineWidth = 1; ctx.strokeStyle = "rgba(255,255,255,0.55)";
    outline(ctx, blk, () => true, sx, sy);
    const wq = blk.win[query];
    ctx.lineWidth = 2.5; ctx.strokeStyle = "#ffd400";
    outline(ctx, blk, w => w === wq, sx, sy);
    const qr = Math.floor(query / C), qc = query % C;
    ctx.lineWidth = 2; ctx.strokeStyle = "#d62728";
    ctx.strokeRect(qc * tw * sx, qr * th * sy, tw * sx, th * sy);
    legend.textContent = "";
    legend.appendChild(P.colorbar(seq, 110, 10, 0, vmax, "attention (this map)"));
    const order = [...Array(L).keys()].filter(i => vals[i] > 0)
      .sort((a, b) => vals[b] - vals[a]).slice(0, 5);
    const H = blk.heads.length;
    readout.textContent = blk.label + "\n" + (head < 0 ? "mean of " + H + " heads" :
      "head " + blk.heads[head]) + " \u00b7 query patch (row " + qr + ", col " + qc + ") in " +
      "window " + wq + " of " + blk.windows + (locked ? " (kept: click to release)" :
      " (click to keep)") + "\nstrongest keys: " + order.map(i => "(" + Math.floor(i / C) +
      ", " + (i % C) + ") " + P.fmt(vals[i])).join(", ");
    shown = vals;
    root.dataset.block = String(block);
    root.dataset.head = head < 0 ? "mean" : String(head);
    root.dataset.query = String(query);
    root.dataset.locked = locked ? "1" : "0";
  }
  window.probeShown = () => Array.from(shown);
  window.probeMap = (b, h, q) => Array.from(values(b, h, q));
  heads();
  draw();
});
"""


def _pair(value: Any, what: str, positive: bool = True) -> tuple[float, float]:
    ok = (not isinstance(value, (str, bytes)) and hasattr(value, "__len__") and len(value) == 2
          and all(not isinstance(v, bool) and isinstance(v, (int, float, np.integer,
                                                              np.floating)) for v in value))
    if not ok or (positive and min(float(v) for v in value) <= 0):
        raise ProbeError(f"{what} must be two positive numbers (height, width), got {value!r}")
    return float(value[0]), float(value[1])


def _block(i: int, blk: Mapping[str, Any]) -> dict[str, Any]:
    """One block checked and turned into the page's data (arrays still numpy)."""
    if not isinstance(blk, Mapping) or not {"weights", "layout", "token_size"} <= set(blk):
        raise ProbeError(
            f"blocks[{i}] must be a mapping with weights, layout and token_size (and mask, "
            "layer, stage, name, heads): e.g. from trace.windows[i]"
        )
    layout = blk["layout"]
    if not all(hasattr(layout, a) for a in ("grid", "window", "shift", "token_index")):
        raise ProbeError(f"blocks[{i}] layout must be a probe.WindowLayout, got {layout!r}")
    n_w, area = layout.num_windows, layout.window_area
    w = np.asarray(_to_numpy(blk["weights"]), dtype=np.float64)
    if w.ndim != 4 or w.shape[0] != n_w or w.shape[2:] != (area, area) or w.shape[1] < 1:
        raise ProbeError(
            f"blocks[{i}] weights must be [{n_w} windows, head, {area}, {area}] (one image) for "
            f"layout {layout}, got {list(w.shape)}"
        )
    if not np.isfinite(w).all():
        raise ProbeError(f"blocks[{i}] weights have NaN or infinite values")
    if w.min() < 0:
        raise ProbeError(f"blocks[{i}] weights have negative values: pass softmax weights")
    index = np.asarray(_to_numpy(layout.token_index()), dtype=np.int64)  # [windows, N]
    rows, cols = layout.grid
    win = np.zeros(rows * cols, dtype=np.int64)
    slot = np.zeros(rows * cols, dtype=np.int64)
    real = np.nonzero(index >= 0)
    win[index[real]], slot[index[real]] = real
    cut = None
    mask = blk.get("mask")
    if mask is not None:
        m = np.asarray(_to_numpy(mask))
        if m.shape != (n_w, area, area):
            raise ProbeError(f"blocks[{i}] mask must be [{n_w}, {area}, {area}], got "
                             f"{list(m.shape)}")
        cut = (m != 0).astype(np.float64)
    scale = w.max(axis=-1)  # [windows, head, N]: each query row's maximum
    unit = w / np.where(scale > 0, scale, 1.0)[..., None]
    n_h = w.shape[1]
    heads = labels(blk.get("heads"), n_h, f"blocks[{i}] heads")
    layer, stage = blk.get("layer", i), blk.get("stage", 0)
    shift = tuple(int(v) for v in layout.shift)
    how = f"shifted by {shift}" if any(shift) else "not shifted"
    name = str(blk.get("name", ""))
    return {
        "label": f"stage {stage} \u00b7 block {layer} ({how}; {rows}\u00d7{cols} tokens, "
                 f"{layout.window[0]}\u00d7{layout.window[1]} windows)",
        "name": name, "stage": int(stage), "grid": [rows, cols], "area": area, "windows": n_w,
        "heads": heads,
        "token": list(_pair(blk["token_size"], f"blocks[{i}] token_size")),
        "index": index.reshape(-1).tolist(), "win": win.tolist(), "slot": slot.tolist(),
        "unit": unit, "scale": scale,
        "cut": cut if cut is not None and cut.any() else None,
    }


def window_view_html(
    image: Any,
    blocks: Sequence[Mapping[str, Any]],
    *,
    input_size: tuple[int, int] | None = None,
    open: int = -1,  # noqa: A002 - the block the page opens on
    query: tuple[int, int] | None = None,
    alpha: float = 0.65,
    image_size: tuple[int, int] | None = None,
    side: int = 420,
    model_name: str | None = None,
    title: str | None = None,
    note: str | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
) -> HtmlView:
    """Interactive windowed-attention (Swin) view of one image.

    Args:
        image: ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1`` (or uint8): the model's input.
        blocks: one mapping per block, in model order: ``weights`` ``[windows, head, N, N]``
            the block's window attention for this image (``trace.windows[i].windows()[b]``),
            ``layout`` its :class:`probe.WindowLayout`, ``token_size`` ``(height, width)`` of
            one token in model-input pixels, and optionally ``mask`` ``[windows, N, N]`` (the
            shift mask, 0 where a pair may attend), ``layer``, ``stage``, ``name`` and
            ``heads`` (the model's head indices).
        input_size: ``(height, width)`` of the model input in pixels (what ``token_size`` is
            measured in); default the image's own size.
        open: the block the page opens on (position in ``blocks``; default the last).
        query: ``(row, col)`` of the query token shown at the start, on that block's grid
            (default its centre).
        alpha: opacity of the map over the grey copy of the image (default 0.65, as the
            figures; the input is shown in its own colours in a small panel of its own).
        image_size: ``(height, width)`` to draw the image at (the file's proportions).
        side: the longer side of the drawn image in CSS pixels (160..1200).
        model_name: goes into the title; title: replaces it.
        note: a sentence added to the subtitle (e.g. which blocks were left out).
        max_values: the size budget over all blocks' weights.

    Returns:
        An :class:`HtmlView`; a query's map on the page equals
        :func:`probe.window_query_map` within each row's quantisation step (``max / 510``).
    """
    from probe.viewers._saliency import as_image, check_placement
    from probe.viewers._style import SEQUENTIAL_CMAP

    if isinstance(blocks, Mapping) or not isinstance(blocks, Sequence) or not blocks:
        raise ProbeError("blocks must be a list of one or more block mappings (weights, layout, "
                         "token_size, ...), e.g. from trace.windows")
    total = 0
    for i, blk in enumerate(blocks):
        w = blk.get("weights") if isinstance(blk, Mapping) else None
        total += int(np.prod(getattr(w, "shape", (0,))))
    check_budget((total,), max_values, "the blocks' window weights together", _HINT,
                 plural=True)
    parsed = [_block(i, blk) for i, blk in enumerate(blocks)]
    n = len(parsed)
    if isinstance(open, bool) or not isinstance(open, (int, np.integer)) or not -n <= open < n:
        raise ProbeError(f"open must be a block position in -{n}..{n - 1}, got {open!r}")
    first = parsed[int(open) % n]
    rows, cols = first["grid"]
    row, col = (rows // 2, cols // 2) if query is None else query
    if isinstance(row, bool) or isinstance(col, bool) or not (
            isinstance(row, (int, np.integer)) and isinstance(col, (int, np.integer))
            and 0 <= row < rows and 0 <= col < cols):
        raise ProbeError(f"query {query!r} is outside the opened block's {rows}x{cols} grid: "
                         "pass (row, col) on that grid")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ProbeError(f"alpha must be in [0, 1], got {alpha!r}")
    if isinstance(side, bool) or not isinstance(side, int) or not 160 <= side <= 1200:
        raise ProbeError(f"side must be a size in pixels in [160, 1200], got {side!r}")
    url, size = _image_data_url(image)
    drawn, _ = check_placement(as_image(image), image_size, None)
    in_size = size if input_size is None else _pair(input_size, "input_size")
    for i, p in enumerate(parsed):
        p["weights"] = encode_array(p.pop("unit"), f"blocks[{i}] weights")
        p["scale"] = base64.b64encode(np.asarray(p["scale"], dtype="<f4").tobytes()).decode()
        if p["cut"] is not None:
            p["cut"] = encode_array(p["cut"], f"blocks[{i}] mask")
    stages = ", ".join(str(v) for v in sorted({p["stage"] for p in parsed}))
    payload = {
        "title": view_title(model_name, "windowed attention", title),
        "subtitle": f"{n} windowed block{'s' if n != 1 else ''} (stages {stages}); hover a "
                    "patch: where it attends within its window; click to keep it"
                    + ("" if note is None else f" \u00b7 {note}"),
        "image": url, "grey": _grey_data_url(image), "size": list(drawn or size),
        "input": [float(v) for v in in_size],
        "side": side, "alpha": float(alpha), "blocks": parsed, "open": int(open) % n,
        "query": int(row) * cols + int(col), "cmap": cmap_hex(SEQUENTIAL_CMAP),
    }
    page = build_page(title=payload["title"], css=CSS + _WIN_CSS, js=RUNTIME_JS + _WIN_JS,
                      data=payload)
    return HtmlView(page, view="window", height=side + 140)


def windows_html(
    trace: Any, *, image: Any = None, batch_index: int = 0,
    layers: Sequence[int] | None = None, layer: int = -1, **options: Any
) -> HtmlView:
    """The window view of a Swin trace (``trace.windows``, see :func:`window_view_html`;
    options go there): the captured blocks of batch item ``batch_index``, over ``image``
    (default the trace's ``pixel_values``, min-max scaled); token sizes are in the trace's
    ``image_size`` pixels.

    Args:
        layers: the model's block indices to embed (``trace.layer_indices``, negative counts
            back), default every captured block.
        layer: the block the page opens on (a model block index; default the last embedded).
    """
    from probe.viewers.html._trace import trace_image

    windows = getattr(trace, "windows", None)
    if not windows:
        raise ProbeError("the window view needs a trace of a Swin model (windowed attention, "
                         "trace.windows): probe.trace(swin, pixels)")
    batch = int(windows[0].batch)
    batch_index = batch_position(batch_index, batch)
    wanted = [trace.layer_position(v) for v in (layers if layers is not None else
                                                trace.layer_indices)]
    if not wanted:
        raise ProbeError("layers is empty: pass the block indices to show (or None: all)")
    chosen = [windows[p] for p in sorted(set(wanted))]
    at = chosen[-1] if layer == -1 else windows[trace.layer_position(layer)]
    if all(b is not at for b in chosen):
        raise ProbeError(f"layer {layer} is not among the blocks shown "
                         f"({[b.layer for b in chosen]}): open one of them")
    total = sum(int(b.weights[0].numel()) * b.layout.num_windows for b in chosen)
    check_budget((total,), options.get("max_values", DEFAULT_MAX_VALUES),
                 "the blocks' window weights together", _HINT, plural=True)
    blocks = [{"weights": b.windows()[batch_index], "layout": b.layout, "mask": b.mask,
               "token_size": b.token_size, "layer": b.layer, "stage": b.stage, "name": b.name}
              for b in chosen]
    options.setdefault("model_name", trace.model_name)
    options.setdefault("input_size", tuple(trace.image_size))
    return window_view_html(trace_image(trace, batch_index) if image is None else image,
                            blocks, open=[b is at for b in chosen].index(True), **options)
