"""Interactive attention views: the head view (token link diagram) and the model view
(thumbnails of every layer x head).

Both take attention ``[layer, head, query, key]`` of one input (or ``[head, query, key]``
for one layer) with query and key tokens that may differ (cross-attention). Lines and
thumbnails are drawn on canvases, so 12 layers x 12 heads x 512 tokens stays responsive;
data over :data:`~probe.viewers.html._page.DEFAULT_MAX_VALUES` values is refused with a
message that says what to select.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._direction import Direction, is_rtl
from probe.viewers.html._page import (
    DEFAULT_MAX_VALUES,
    HtmlView,
    _to_numpy,
    build_page,
    check_budget,
    clean_tokens,
    cmap_hex,
    encode_array,
    head_colors,
    labels,
    view_title,
)
from probe.viewers.html._runtime import CSS, RUNTIME_JS

__all__ = ["head_view_html", "model_view_html"]

_HEAD_JS = r"""
P.start(async (root, d) => {
  const A = await P.tensor("attn", d.attn);
  const [L, H, Q, K] = A.shape, ROW = 18, W = 240;
  P.header(root, d);
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  let layer = d.layer0, focus = null, locked = false;
  const active = new Array(H).fill(true);
  bar.appendChild(P.labelled("Layer", P.select(d.layers, v => { layer = v; draw(); }, layer)));
  const sw = P.el("div", "p-swatches"); bar.appendChild(sw);
  const swatches = d.heads.map((lab, h) => {
    const b = P.el("button", "p-swatch", lab);
    const c = P.hex2rgb(d.colors[h]);
    b.style.background = d.colors[h]; b.style.color = P.ink(c);
    b.title = "click: this head only; ctrl/shift-click: toggle; double-click: all heads";
    b.addEventListener("click", ev => {
      if (ev.ctrlKey || ev.shiftKey || ev.metaKey) active[h] = !active[h];
      else { active.fill(false); active[h] = true; }
      draw();
    });
    b.addEventListener("dblclick", () => { active.fill(true); draw(); });
    sw.appendChild(b);
    return b;
  });
  const note = P.el("span", "p-note"); bar.appendChild(note);
  const body = P.el("div", "p-links"); root.appendChild(body);
  const rows = Math.max(Q, K);
  const left = P.el("div", "p-col p-left"), right = P.el("div", "p-col p-right");
  left.style.paddingTop = ((rows - Q) / 2 * ROW) + "px";
  right.style.paddingTop = ((rows - K) / 2 * ROW) + "px";
  const cv = P.canvas(W, rows * ROW, "p-lines");
  body.appendChild(left); body.appendChild(cv); body.appendChild(right);
  // right to left: the query column on the right, the key column on the left
  const qx = d.rtl ? W : 0, kx = d.rtl ? 0 : W;
  if (d.rtl) {  // inline: the mirrored diagram stays under its controls
    body.dir = "rtl"; body.style.display = "inline-flex";
    left.style.textAlign = "left"; right.style.textAlign = "right";
  }
  const ctx = cv.getContext("2d");
  function token(col, text, side, i) {
    const s = P.el("div", "p-tok", text);
    s.addEventListener("mouseenter", ev => { if (!locked) { focus = {side, i}; draw(); } tip(ev,
      side, i); });
    s.addEventListener("mousemove", ev => tip(ev, side, i));
    s.addEventListener("mouseleave", () => { P.hideTip(); if (!locked) { focus = null; draw(); } });
    function press() {
      if (locked && focus && focus.side === side && focus.i === i) { locked = false; focus = null; }
      else { locked = true; focus = {side, i}; }
      draw();
    }
    s.addEventListener("click", press);
    // keyboard: Tab reaches every token (focus shows its lines, as hovering does); Enter or
    // Space keeps it, as a click does; Escape releases a kept token
    s.tabIndex = 0; s.setAttribute("role", "button");
    s.setAttribute("aria-label", (side === "q" ? "query " : "key ") + i + ": " + text);
    s.addEventListener("focus", () => { if (!locked) { focus = {side, i}; draw(); } });
    s.addEventListener("blur", () => { if (!locked) { focus = null; draw(); } });
    s.addEventListener("keydown", ev => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); press(); }
      else if (ev.key === "Escape" && locked) { locked = false; focus = {side, i}; draw(); }
    });
    col.appendChild(s);
    return s;
  }
  const qs = d.qtokens.map((t, i) => token(left, t, "q", i));
  const ks = d.ktokens.map((t, i) => token(right, t, "k", i));
  function w(h, q, k) { return A.get((((layer * H) + h) * Q + q) * K + k); }
  function tip(ev, side, i) {
    const heads = [...active.keys()].filter(h => active[h]);
    const lines = [];
    if (focus && focus.side !== side) {
      const q = side === "k" ? focus.i : i, k = side === "k" ? i : focus.i;
      lines.push(d.qtokens[q] + " \u2192 " + d.ktokens[k]);
      for (const h of heads) lines.push("head " + d.heads[h] + ": " + P.fmt(w(h, q, k)));
    } else {
      const n = side === "q" ? K : Q, sums = new Float64Array(n);
      for (const h of heads) for (let j = 0; j < n; j++) sums[j] += side === "q" ? w(h, i, j) : w(h,
        j, i);
      const order = [...sums.keys()].sort((a, b) => sums[b] - sums[a]).slice(0, 5);
      lines.push((side === "q" ? d.qtokens[i] + " attends to" : d.ktokens[i] + " is attended by") +
                 " (mean of " + heads.length + " head" + (heads.length === 1 ? "" : "s") + ")");
      for (const j of order) lines.push("  " + (side === "q" ? d.ktokens[j] : d.qtokens[j]) + "  " +
                                        P.fmt(sums[j] / Math.max(1, heads.length)));
    }
    P.showTip(ev, lines);
  }
  function draw() {
    ctx.clearRect(0, 0, W, rows * ROW);
    const qOff = (rows - Q) / 2 * ROW + ROW / 2, kOff = (rows - K) / 2 * ROW + ROW / 2;
    let thr = Math.max(1, Math.ceil((d.threshold - A.lo) / (A.step || 1)));
    let n = 0;
    const q0 = focus && focus.side === "q" ? focus.i : 0, q1 = focus && focus.side === "q" ?
      focus.i + 1 : Q;
    const k0 = focus && focus.side === "k" ? focus.i : 0, k1 = focus && focus.side === "k" ?
      focus.i + 1 : K;
    // long inputs: draw only the strongest d.maxLines lines (raise the threshold level)
    const hist = new Uint32Array(256);
    for (let h = 0; h < H; h++) {
      if (!active[h]) continue;
      for (let q = q0; q < q1; q++) {
        const base = (((layer * H) + h) * Q + q) * K;
        for (let k = k0; k < k1; k++) hist[A.q[base + k]]++;
      }
    }
    let total = 0, capped = false;
    for (let v = 255; v >= thr; v--) {
      if (total + hist[v] > d.maxLines) { thr = v + 1; capped = true; break; }
      total += hist[v];
    }
    note.textContent = capped ? "showing the strongest " + total + " lines (weight ≥ " +
      P.fmt(A.lo + thr * A.step) + "); hover a token for its lines" :
        "hover a token: its lines; click: lock";
    ctx.lineWidth = 1.5;
    for (let h = 0; h < H; h++) {
      if (!active[h]) continue;
      ctx.strokeStyle = d.colors[h];
      for (let q = q0; q < q1; q++) {
        const base = (((layer * H) + h) * Q + q) * K;
        for (let k = k0; k < k1; k++) {
          const v = A.q[base + k];
          if (v < thr) continue;
          // one short path per line: the rasteriser's fast path (one big path is slow)
          ctx.globalAlpha = Math.min(1, Math.max(1 / 16, A.lo + v * A.step));
          ctx.beginPath(); ctx.moveTo(qx, qOff + q * ROW); ctx.lineTo(kx, kOff + k * ROW);
            ctx.stroke();
          n++;
        }
      }
    }
    ctx.globalAlpha = 1;
    cv.dataset.lines = String(n);
    swatches.forEach((b, h) => b.classList.toggle("off", !active[h]));
    qs.forEach((s, i) => { s.className = "p-tok"; s.style.background = ""; });
    ks.forEach((s, i) => { s.className = "p-tok"; s.style.background = ""; });
    if (focus) {
      (focus.side === "q" ? qs : ks)[focus.i].classList.add(locked ? "lock" : "on");
      const heads = [...active.keys()].filter(h => active[h]);
      const other = focus.side === "q" ? ks : qs;
      other.forEach((s, j) => {
        let m = 0;
        for (const h of heads) m += focus.side === "q" ? w(h, focus.i, j) : w(h, j, focus.i);
        m /= Math.max(1, heads.length);
        s.style.background = "rgba(31,119,180," + Math.min(1, m).toFixed(3) + ")";
        s.style.color = m > 0.5 ? "#fff" : "";
      });
    }
    root.dataset.layer = String(layer);
    root.dataset.heads = [...active.keys()].filter(h => active[h]).join(",");
    root.dataset.focus = focus ? focus.side + focus.i + (locked ? "!" : "") : "";
  }
  draw();
});
"""

_MODEL_JS = r"""
P.start(async (root, d) => {
  const A = await P.tensor("attn", d.attn);
  const [L, H, Q, K] = A.shape, TH = d.thumb;
  P.header(root, d);
  const seq = P.lut(d.cmap);
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  let perHead = false, sel = null, row = null;
  bar.appendChild(P.labelled("Colour scale", P.select(["shared by all heads", "per head"],
    v => { perHead = v === 1; thumbs(); if (sel) open(sel[0], sel[1]); }, 0)));
  const gmax = A.lo + 255 * A.step;
  bar.appendChild(P.colorbar(seq, 120, 10, 0, gmax, "attention"));
  bar.appendChild(P.el("span", "p-note", "click a thumbnail to enlarge; hover its rows"));
  const wrap = P.el("div", "p-mv"); root.appendChild(wrap);
  // the thumbnails scroll in their own box when the window is narrower than the grid
  const gridBox = P.el("div", "p-scroll p-gridbox"); wrap.appendChild(gridBox);
  const grid = P.el("div", "p-grid"); gridBox.appendChild(grid);
  if (d.rtl) grid.dir = "rtl";  // right to left: head 0 at the right, key 0 at each map's right
  function flipped(ctx, w) { if (d.rtl) ctx.setTransform(-1, 0, 0, 1, w, 0); }
  grid.style.gridTemplateColumns = "auto repeat(" + H + ", " + (TH + 2) + "px)";
  grid.appendChild(P.el("span"));
  d.heads.forEach(h => grid.appendChild(P.el("span", "p-lab", "H" + h)));
  const cells = [];
  for (let l = 0; l < L; l++) {
    grid.appendChild(P.el("span", "p-lab", "L" + d.layers[l]));
    for (let h = 0; h < H; h++) {
      const c = P.canvas(TH, TH);
      c.title = "layer " + d.layers[l] + ", head " + d.heads[h];
      c.addEventListener("click", () => open(l, h));
      // keyboard: Tab to a thumbnail, Enter or Space enlarges it
      c.tabIndex = 0; c.setAttribute("role", "button"); c.setAttribute("aria-label", c.title);
      c.addEventListener("keydown", ev => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(l, h); }
      });
      grid.appendChild(c);
      cells.push(c);
    }
  }
  function table(off) {
    const vmax = perHead ? P.sliceMax(A, off, Q * K) : gmax;
    return P.levels(A, seq, v => vmax > 0 ? v / vmax : 0);
  }
  function thumbs() {
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
      const off = ((l * H) + h) * Q * K, c = cells[l * H + h], ctx = c.getContext("2d");
      const src = P.paint(A, off, Q, K, table(off));
      ctx.imageSmoothingEnabled = Q > TH || K > TH;
      ctx.clearRect(0, 0, TH, TH);
      flipped(ctx, TH);
      ctx.drawImage(src, 0, 0, TH, TH);
    }
  }
  const detail = P.el("div", "p-detail"); wrap.appendChild(detail);
  const S = Math.max(220, Math.min(520, 10 * Math.max(Q, K)));
  // the label band: as wide as the longest label drawn (measured in the labels' font), not a
  // fixed 92 px; at most 240 px, a longer label is cut with an ellipsis
  const stepQ = Math.ceil(Q / 40), stepK = Math.ceil(K / 40);
  const M = (() => {  // measured in the browser: the labels in their own font and writing
    // mode (key labels run vertically, sideways), unclipped
    const box = P.el("div"); box.style.cssText = "position:absolute;visibility:hidden";
    const els = [];
    const add = (cls, t) => {
      const e = P.el("div", cls, t); box.appendChild(e); els.push([cls, e]);
      e.style.cssText = "position:static;display:inline-block;transform:none;" +
        (cls === "p-ylab" ? "width:auto" : "height:auto");
    };
    for (let q = 0; q < Q; q += stepQ) add("p-ylab", d.qtokens[q]);
    for (let k = 0; k < K; k += stepK) add("p-xlab", d.ktokens[k]);
    wrap.appendChild(box);
    const widest = Math.max(0, ...els.map(([cls, e]) => {
      const r = e.getBoundingClientRect(); return cls === "p-ylab" ? r.width : r.height;
    }));
    box.remove();
    return Math.min(240, Math.max(24, Math.ceil(widest) + 8));
  })();
  root.dataset.band = String(M);
  function open(l, h) {
    sel = [l, h]; row = null;
    cells.forEach((c, i) => c.classList.toggle("sel", i === l * H + h));
    detail.textContent = "";
    detail.appendChild(P.el("div", "p-title", "layer " + d.layers[l] + ", head " + d.heads[h]));
    const stack = P.el("div", "p-stack");
    stack.style.width = (M + S) + "px"; stack.style.height = (M + S) + "px";
    const big = P.canvas(S, S), over = P.canvas(S, S);
    const X0 = d.rtl ? 0 : M;  // where the map starts; right to left, the query labels follow it
    big.style.left = over.style.left = X0 + "px"; big.style.top = over.style.top = M + "px";
    stack.appendChild(big); stack.appendChild(over);
    const off = ((l * H) + h) * Q * K;
    const bctx = big.getContext("2d");
    bctx.imageSmoothingEnabled = false;
    flipped(bctx, S);
    bctx.drawImage(P.paint(A, off, Q, K, table(off)), 0, 0, S, S);
    const ch = S / Q, cw = S / K;
    for (let q = 0; q < Q; q += stepQ) {
      const t = P.el("div", "p-ylab", d.qtokens[q]);
      if (d.rtl) t.style.textAlign = "left";
      t.style.width = (M - 4) + "px";
      t.style.left = (d.rtl ? S + 2 : 0) + "px";
      t.style.top = (M + q * ch + ch / 2 - 7) + "px"; t.style.height = "14px";
      stack.appendChild(t);
    }
    for (let k = 0; k < K; k += stepK) {
      const t = P.el("div", "p-xlab", d.ktokens[k]);
      const col = d.rtl ? K - 1 - k : k;
      t.style.top = "0px"; t.style.left = (X0 + col * cw + cw / 2 - 7) + "px";
      t.style.width = "14px"; t.style.height = (M - 4) + "px";
      stack.appendChild(t);
    }
    detail.appendChild(stack);
    const readout = P.el("div", "p-readout", "hover a query row"); detail.appendChild(readout);
    const octx = over.getContext("2d");
    over.addEventListener("mousemove", ev => {
      const r = over.getBoundingClientRect();
      const q = Math.min(Q - 1, Math.floor((ev.clientY - r.top) / r.height * Q));
      const col = Math.min(K - 1, Math.floor((ev.clientX - r.left) / r.width * K));
      const k = d.rtl ? K - 1 - col : col;
      P.showTip(ev, [d.qtokens[q] + " \u2192 " + d.ktokens[k], P.fmt(A.get(off + q * K + k))]);
      if (q === row) return;
      row = q; root.dataset.row = String(q);
      octx.clearRect(0, 0, S, S);
      octx.fillStyle = "rgba(255,255,255,0.55)";
      octx.fillRect(0, 0, S, q * ch); octx.fillRect(0, (q + 1) * ch, S, S - (q + 1) * ch);
      octx.strokeStyle = "#d62728"; octx.lineWidth = 2; octx.strokeRect(1, q * ch, S - 2,
        Math.max(ch, 2));
      const ws = [];
      for (let k2 = 0; k2 < K; k2++) ws.push([A.get(off + q * K + k2), k2]);
      ws.sort((a, b) => b[0] - a[0]);
      readout.textContent = "query \u201c" + d.qtokens[q] + "\u201d (" + q + ") \u2192 " +
        ws.slice(0, 5).map(x => "\u201c" + d.ktokens[x[1]] + "\u201d " + P.fmt(x[0])).join(", ");
    });
    over.addEventListener("mouseleave", () => { P.hideTip(); });
    root.dataset.selected = l + "," + h;
    root.dataset.row = "";
  }
  thumbs();
  open(d.open[0], d.open[1]);
});
"""


def _attention_data(
    attn: Any,
    tokens: Sequence[str] | None,
    query_tokens: Sequence[str] | None,
    key_tokens: Sequence[str] | None,
    layers: Sequence[Any] | None,
    heads: Sequence[Any] | None,
    max_values: int,
) -> tuple[np.ndarray, list[str], list[str], list[str], list[str]]:
    data = _to_numpy(attn)
    if data.ndim == 3:
        data = data[None]
    if data.ndim != 4:
        raise ProbeError(
            f"attn must be [layer, head, query, key] or [head, query, key], got shape "
            f"{list(data.shape)}"
        )
    if data.size == 0:
        raise ProbeError("attn is empty: pass at least one layer, head and token")
    check_budget(data.shape, max_values, "attn")
    data = np.asarray(data, dtype=np.float32)
    if np.isfinite(data).all() and data.min() < 0:
        raise ProbeError(
            "attn has negative values: the attention views draw weights in [0, 1]; use the "
            "token or image views for signed scores"
        )
    n_l, n_h, n_q, n_k = data.shape
    if tokens is not None and (query_tokens is not None or key_tokens is not None):
        raise ProbeError("pass tokens= (self-attention) or query_tokens=/key_tokens=, not both")
    q_src = query_tokens if query_tokens is not None else tokens
    k_src = key_tokens if key_tokens is not None else tokens
    q_tok = clean_tokens(q_src, n_q, "query tokens", "attn's query axis") if q_src is not None \
        else [str(i) for i in range(n_q)]
    k_tok = clean_tokens(k_src, n_k, "key tokens", "attn's key axis") if k_src is not None \
        else [str(i) for i in range(n_k)]
    return data, q_tok, k_tok, labels(layers, n_l, "layers"), labels(heads, n_h, "heads")


def head_view_html(
    attn: Any,
    tokens: Sequence[str] | None = None,
    *,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    layers: Sequence[int | str] | None = None,
    heads: Sequence[int | str] | None = None,
    layer: int = -1,
    model_name: str | None = None,
    method: str = "attention",
    threshold: float = 0.01,
    max_lines: int = 1_500,
    title: str | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
    direction: Direction = "auto",
) -> HtmlView:
    """Interactive head view: query tokens (left) linked to key tokens (right).

    One line per (query, key) pair whose weight is at least ``threshold``, opacity = weight
    (in 16 steps), one colour per head (the static :func:`probe.viewers.link_view`'s
    colours). A layer selector; head swatches (click: that head only, ctrl/shift-click:
    toggle, double-click: all heads); hover a token to see only its lines and the weights
    (tooltip, and the other column shaded by the mean weight), click to lock.

    Args:
        attn: ``[layer, head, query, key]`` (or ``[head, query, key]``) weights in
            ``[0, 1]`` of one input.
        tokens: one label per position (self-attention); or ``query_tokens`` (left column)
            and ``key_tokens`` (right column), which may differ (cross-attention).
        layers, heads: the model's index (or a name) of each layer / head, for the selector
            and swatches (default ``0..n-1``).
        layer: the position in ``attn`` of the layer shown first (default the last).
        model_name, method: go into the title; title: replaces it.
        threshold: lines below this weight are not drawn (default 0.01).
        max_lines: at most this many lines are drawn at once (default 1500: the strongest;
            the page says so; a software canvas rasterises about one long line per ms), which
            keeps 512-token inputs responsive; a hovered token shows all its lines.
        max_values: the size budget (see :data:`DEFAULT_MAX_VALUES`).
        direction: ``"auto"`` (default: right to left when the tokens' first strong letter
            is, as ``dir="auto"``), ``"ltr"`` or ``"rtl"``: right to left, the query column
            is on the right and the key column on the left.

    Returns:
        An :class:`HtmlView`.
    """
    data, q_tok, k_tok, layer_labels, head_labels = _attention_data(
        attn, tokens, query_tokens, key_tokens, layers, heads, max_values
    )
    n_l = data.shape[0]
    if (
        isinstance(layer, bool) or not isinstance(layer, (int, np.integer))
        or not -n_l <= layer < n_l
    ):
        raise ProbeError(f"layer must be a position in attn's {n_l} layers, got {layer!r}")
    if isinstance(max_lines, bool) or not isinstance(max_lines, int) or max_lines < 1:
        raise ProbeError(f"max_lines must be a positive integer, got {max_lines!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise ProbeError(f"threshold must be a number >= 0, got {threshold!r}")
    payload = {
        "title": view_title(model_name, f"{method} \u00b7 head view", title),
        "subtitle": f"{data.shape[2]} query x {data.shape[3]} key tokens, "
                    f"{_count(data.shape[0], 'layer')} x {_count(data.shape[1], 'head')}",
        "attn": encode_array(data, "attn"),
        "qtokens": q_tok, "ktokens": k_tok, "layers": layer_labels, "heads": head_labels,
        "layer0": int(layer) % n_l, "threshold": float(threshold), "maxLines": int(max_lines),
        "colors": head_colors(data.shape[1]), "rtl": is_rtl(direction, q_tok, k_tok),
    }
    page = build_page(title=payload["title"], css=CSS, js=RUNTIME_JS + _HEAD_JS, data=payload)
    height = min(900, 140 + 18 * max(data.shape[2], data.shape[3]))
    return HtmlView(page, view="heads", height=height)


def model_view_html(
    attn: Any,
    tokens: Sequence[str] | None = None,
    *,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    layers: Sequence[int | str] | None = None,
    heads: Sequence[int | str] | None = None,
    model_name: str | None = None,
    method: str = "attention",
    thumb: int = 56,
    selected: tuple[int, int] | None = None,
    title: str | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
    direction: Direction = "auto",
) -> HtmlView:
    """Interactive model view: a thumbnail of every layer x head.

    Thumbnails are heatmaps (``viridis``, one scale shared by all heads, or per head by the
    selector). Click one to enlarge it with token labels; hover a query row of the enlarged
    map to highlight it and read its strongest keys.

    Args:
        attn: ``[layer, head, query, key]`` weights of one input.
        tokens, query_tokens, key_tokens, layers, heads: as in :func:`head_view_html`.
        model_name, method: go into the title; title: replaces it.
        thumb: thumbnail side in CSS pixels (default 56).
        selected: ``(layer, head)`` positions of the map enlarged at the start (default the
            last layer's first head).
        max_values: the size budget (see :data:`DEFAULT_MAX_VALUES`).
        direction: as in :func:`head_view_html`, read from the key tokens: right to left,
            head 0 is the right column of thumbnails and each map's key axis runs from right
            to left (key 0 at the right; the query labels at the map's right).

    Returns:
        An :class:`HtmlView`.
    """
    from probe.viewers._style import SEQUENTIAL_CMAP

    data, q_tok, k_tok, layer_labels, head_labels = _attention_data(
        attn, tokens, query_tokens, key_tokens, layers, heads, max_values
    )
    if isinstance(thumb, bool) or not isinstance(thumb, int) or not 16 <= thumb <= 256:
        raise ProbeError(f"thumb must be a size in pixels in [16, 256], got {thumb!r}")
    n_l, n_h = data.shape[:2]
    first = (n_l - 1, 0) if selected is None else selected
    if (not isinstance(first, (tuple, list)) or len(first) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in first)
            or not (0 <= first[0] < n_l and 0 <= first[1] < n_h)):
        raise ProbeError(
            f"selected must be (layer, head) positions in 0..{n_l - 1} and 0..{n_h - 1}, got "
            f"{selected!r}"
        )
    payload = {
        "title": view_title(model_name, f"{method} \u00b7 model view", title),
        "subtitle": f"{_count(n_l, 'layer')} x {_count(n_h, 'head')}, "
                    f"{data.shape[2]} query x {data.shape[3]} key tokens",
        "attn": encode_array(data, "attn"),
        "qtokens": q_tok, "ktokens": k_tok, "layers": layer_labels, "heads": head_labels,
        "thumb": thumb, "cmap": cmap_hex(SEQUENTIAL_CMAP), "open": [int(first[0]), int(first[1])],
        "rtl": is_rtl(direction, k_tok),
    }
    page = build_page(title=payload["title"], css=CSS, js=RUNTIME_JS + _MODEL_JS, data=payload)
    height = min(1000, max(140 + n_l * (thumb + 5), 760))
    return HtmlView(page, view="model", height=height)


def _count(n: int, noun: str) -> str:
    """``1 head``, ``12 heads``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
