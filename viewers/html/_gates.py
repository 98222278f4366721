"""Interactive CNN attention-gate view: every gate block with a map over the image (spatial
gates such as CBAM's, global-context pooling maps) and every block with attention between
positions (non-local, bilinear with the groups averaged), listed by stage; hover or click a
block to overlay its map, and over an attention block hover a position of the image to see
where that position attends (the static :func:`probe.viewers.gate_figures` fixes it at the
GradCAM peak and shows the last block of each stage).

Each block's array is embedded on its own (uint8 over its own range); channel, branch and
channel-spatial gates (one factor per channel) stay in the static figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers.html._attribution import _grey_data_url, _image_data_url
from probe.viewers.html._page import (
    DEFAULT_MAX_VALUES,
    HtmlView,
    _to_numpy,
    build_page,
    check_budget,
    cmap_hex,
    encode_array,
    view_title,
)
from probe.viewers.html._runtime import CSS, RUNTIME_JS

__all__ = ["gates_view_html"]

_GATES_CSS = """
.p-gates{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.p-gates canvas{border:1px solid #ccc;display:block}
.p-gates canvas.p-scene{cursor:crosshair}
.p-gates .p-readout{max-width:280px}
.p-blocks td.p-name{text-align:left;max-width:16em;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap}
.p-blocks tr.hot td{background:#fff3c4}
"""

_GATES_JS = r"""
P.start(async (root, d) => {
  P.header(root, d);
  const B = d.blocks.length, T = [];
  for (let b = 0; b < B; b++) T.push(await P.tensor("block" + b, d.blocks[b].data));
  // the input in its own colours in a panel of its own; the maps over a grey copy of it
  const img = new Image(), grey = new Image();
  img.src = d.image; grey.src = d.grey;
  await Promise.all([img.decode(), grey.decode()]);
  const [IH, IW] = d.size, SIDE = 280;
  const cw = IW >= IH ? SIDE : Math.round(SIDE * IW / IH);
  const ch = IH >= IW ? SIDE : Math.round(SIDE * IH / IW);
  const seq = P.lut(d.cmap), A8 = Math.round(d.alpha * 255);
  let locked = d.first, hover = null, query = null, qlock = false;
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  const legend = P.el("span"); bar.appendChild(legend);
  const note = P.el("span", "p-note"); bar.appendChild(note);
  const wrap = P.el("div", "p-gates"); root.appendChild(wrap);
  const table = P.el("table", "p-table p-blocks"), h0 = P.el("tr");
  ["stage", "block", "kind", "map"].forEach(t => h0.appendChild(P.el("th", null, t)));
  table.appendChild(h0);
  const rows = d.blocks.map((blk, b) => {
    const tr = P.el("tr", "click");
    tr.appendChild(P.el("td", null, blk.stage));
    const n = P.el("td", "p-name", blk.name); n.title = blk.name + " (" + blk.type + ")";
    tr.appendChild(n);
    tr.appendChild(P.el("td", null, blk.kind));
    tr.appendChild(P.el("td", null, blk.grid[0] + "\u00d7" + blk.grid[1]));
    tr.addEventListener("mouseenter", () => { hover = b; draw(); });
    tr.addEventListener("mouseleave", () => { hover = null; draw(); });
    tr.addEventListener("click", () => { locked = b; qlock = false; query = null; draw(); });
    table.appendChild(tr);
    return tr;
  });
  wrap.appendChild(table);
  const inputBox = P.el("div"); wrap.appendChild(inputBox);
  inputBox.appendChild(P.el("div", "p-title", "input"));
  const input = P.canvas(cw, ch, "p-input"); inputBox.appendChild(input);
  input.getContext("2d").drawImage(img, 0, 0, cw, ch);
  const mid = P.el("div"); wrap.appendChild(mid);
  const scene = P.canvas(cw, ch, "p-scene"); mid.appendChild(scene);
  const readout = P.el("div", "p-readout"); mid.appendChild(readout);
  let camCanvas = null;
  if (d.cam) {
    const C = await P.tensor("cam", d.cam), fig = P.el("div");
    fig.appendChild(P.el("div", "p-title", d.camLabel));
    camCanvas = P.canvas(cw, ch, "p-cam"); fig.appendChild(camCanvas); wrap.appendChild(fig);
    const ctx = camCanvas.getContext("2d"), [GH, GW] = C.shape;
    const vmax = P.sliceMax(C, 0, GH * GW) || 1;
    ctx.drawImage(grey, 0, 0, cw, ch); ctx.imageSmoothingEnabled = true;
    ctx.drawImage(P.paint(C, 0, GH, GW, P.levels(C, seq, v => Math.max(0, v / vmax), A8)), 0, 0,
                  cw, ch);
    const camLegend = P.el("div", "p-legend"); fig.appendChild(camLegend);
    camLegend.appendChild(P.colorbar(seq, 110, 10, 0, vmax, "GradCAM"));
  }
  function cell(ev, blk) {
    const r = scene.getBoundingClientRect(), [GH, GW] = blk.grid;
    const row = Math.min(GH - 1, Math.floor((ev.clientY - r.top) / r.height * GH));
    const col = Math.min(GW - 1, Math.floor((ev.clientX - r.left) / r.width * GW));
    return row * GW + col;
  }
  scene.addEventListener("mousemove", ev => {
    const blk = d.blocks[hover !== null ? hover : locked];
    if (!blk.attention || qlock) return;
    const q = cell(ev, blk);
    if (q !== query) { query = q; draw(); }
  });
  scene.addEventListener("click", ev => {
    const blk = d.blocks[hover !== null ? hover : locked];
    if (!blk.attention) return;
    qlock = !qlock; query = cell(ev, blk); draw();
  });
  function draw() {
    const b = hover !== null ? hover : locked, blk = d.blocks[b], M = T[b], [GH, GW] = blk.grid;
    const n = GH * GW;
    let q = null, off = 0;
    if (blk.attention) { q = query !== null && query < n ? query : blk.query; off = q * n; }
    let mx = 0, mn = 255;
    for (let i = 0; i < n; i++) {
      mx = Math.max(mx, M.q[off + i]); mn = Math.min(mn, M.q[off + i]);
    }
    const lo = blk.attention ? 0 : M.lo + mn * M.step, hi = M.lo + mx * M.step;
    const span = hi - lo || 1;
    const ctx = scene.getContext("2d");
    ctx.clearRect(0, 0, cw, ch); ctx.drawImage(grey, 0, 0, cw, ch);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(P.paint(M, off, GH, GW, P.levels(M, seq, v => (v - lo) / span, A8)), 0, 0, cw,
                  ch);
    if (q !== null) {
      const r = Math.floor(q / GW), c = q % GW;
      ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2;
      ctx.strokeRect(c * cw / GW, r * ch / GH, cw / GW, ch / GH);
    }
    legend.textContent = "";
    legend.appendChild(P.colorbar(seq, 110, 10, lo, hi, blk.attention ? "attention weight" :
                                  blk.unit));
    note.textContent = blk.attention ? "hover the image: where that position attends; click: " +
      (qlock ? "release" : "keep") + " it" : "hover or click a block in the list";
    readout.textContent = "stage " + blk.stage + " \u00b7 " + blk.name + " (" + blk.type + ", " +
      blk.kind + ", " + GH + "\u00d7" + GW + ")" + (q !== null ? " \u00b7 query position (row " +
      Math.floor(q / GW) + ", col " + (q % GW) + ")" : "") + " \u00b7 range " + P.fmt(lo) +
      " to " + P.fmt(hi);
    rows.forEach((tr, j) => { tr.classList.toggle("sel", j === locked);
      tr.classList.toggle("hot", j === hover); });
    root.dataset.block = String(b);
    root.dataset.locked = String(locked);
    root.dataset.query = q === null ? "" : String(q);
  }
  draw();
});
"""

_UNITS = {"spatial": "gate factor", "context": "pooling weight"}


def gates_view_html(
    image: Any,
    blocks: Mapping[str, Mapping[str, Any]],
    *,
    cam: Any = None,
    cam_label: str = "GradCAM",
    alpha: float = 0.6,
    image_size: tuple[int, int] | None = None,
    model_name: str | None = None,
    title: str | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
) -> HtmlView:
    """Interactive gate view of one image.

    Args:
        image: the model's input ``[H, W, 3]`` in ``0..1`` (or uint8).
        blocks: ``{module name: {"kind", "stage", "type", "values"}}`` in model order; ``kind``
            ``"spatial"`` or ``"context"`` with ``values [h, w]`` (a map over the image), or
            ``"nonlocal"`` / ``"bilinear"`` with ``values [h, w, h, w]`` (query row, col ->
            key row, col; rows non-negative), whose map is the row of the hovered position
            (at the start ``"query": (row, col)``, default the centre).
        cam: ``[h, w]`` map shown beside (GradCAM), cam_label its title.
        alpha: opacity of the maps over the grey copy of the image (the input is shown in
            its own colours in a panel of its own, as in the figures).
        image_size: ``(height, width)`` to draw the image at (the file's proportions).
        model_name: goes into the title; title: replaces it.
        max_values: the size budget over all blocks.

    Returns:
        An :class:`HtmlView`.
    """
    from probe.viewers._saliency import as_image, check_placement
    from probe.viewers._style import SEQUENTIAL_CMAP

    if not isinstance(blocks, Mapping) or not blocks:
        raise ProbeError("blocks must be {module name: {kind, stage, type, values}}, one or more")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ProbeError(f"alpha must be in [0, 1], got {alpha!r}")
    shapes = []
    parsed = []
    for name, blk in blocks.items():
        kind = blk.get("kind") if isinstance(blk, Mapping) else None
        if kind not in ("spatial", "context", "nonlocal", "bilinear"):
            raise ProbeError(
                f"blocks[{name!r}] kind must be spatial, context, nonlocal or bilinear, got "
                f"{kind!r} (channel, branch and channel-spatial gates have no map to show here)"
            )
        values = np.asarray(_to_numpy(blk["values"]), dtype=np.float32)
        attention = kind in ("nonlocal", "bilinear")
        want = 4 if attention else 2
        if values.ndim != want or values.size == 0 or (
                attention and values.shape[:2] != values.shape[2:]):
            raise ProbeError(
                f"blocks[{name!r}] values must be "
                f"{'[h, w, h, w] attention' if attention else '[h, w] map'}, got shape "
                f"{list(values.shape)}"
            )
        if not np.isfinite(values).all():
            raise ProbeError(f"blocks[{name!r}] has NaN or infinite values")
        if attention and values.min() < 0:
            raise ProbeError(f"blocks[{name!r}] attention has negative values")
        gh, gw = int(values.shape[0]), int(values.shape[1])
        row, col = blk.get("query") or (gh // 2, gw // 2)
        if not (0 <= int(row) < gh and 0 <= int(col) < gw):
            raise ProbeError(f"blocks[{name!r}] query {(row, col)} is outside its {gh}x{gw} map")
        shapes.append(values.size)
        parsed.append({
            "name": str(name), "kind": kind, "stage": int(blk.get("stage", -1)),
            "type": str(blk.get("type", "")), "grid": [gh, gw], "attention": attention,
            "query": int(row) * gw + int(col), "unit": _UNITS.get(kind, ""),
            "data": values.reshape(gh * gw, gh * gw) if attention else values,
        })
    check_budget((int(np.sum(shapes)),), max_values, "the gate maps together",
                 "pass fewer blocks (probe.show(model, 'gates', x, stage=S): one stage), a smaller "
                 "image", plural=True)
    for p in parsed:
        p["data"] = encode_array(p["data"], p["name"])
    url, size = _image_data_url(image)
    drawn, _ = check_placement(as_image(image), image_size, None)
    cam_enc = None
    if cam is not None:
        c = np.asarray(_to_numpy(cam), dtype=np.float32)
        if c.ndim != 2:
            raise ProbeError(f"cam must be an [h, w] map, got shape {list(c.shape)}")
        cam_enc = encode_array(c, "cam")
    stages = sorted({p["stage"] for p in parsed})
    payload = {
        "title": view_title(model_name, "attention gates", title),
        "subtitle": f"{len(parsed)} gate block{'s' if len(parsed) != 1 else ''} with a map over "
                    f"the image, stages {', '.join(map(str, stages))}",
        "image": url, "grey": _grey_data_url(image), "size": list(drawn or size),
        "alpha": float(alpha), "blocks": parsed,
        "first": len(parsed) - 1, "cam": cam_enc, "camLabel": str(cam_label),
        "cmap": cmap_hex(SEQUENTIAL_CMAP),
    }
    page = build_page(title=payload["title"], css=CSS + _GATES_CSS, js=RUNTIME_JS + _GATES_JS,
                      data=payload)
    return HtmlView(page, view="gates", height=max(460, 60 + 24 * len(parsed)))
