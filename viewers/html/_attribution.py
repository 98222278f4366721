"""Interactive attribution views: tokens coloured by score, one row per method
(:func:`token_view_html`), and an image with its saliency maps, their agreement and
faithfulness, per-head CLS maps and DINO-style query-patch maps (:func:`image_view_html`).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
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
    labels,
    view_title,
)
from probe.viewers.html._runtime import CSS, RUNTIME_JS

__all__ = ["token_view_html", "image_view_html"]

_TOKENS_JS = r"""
P.start(async (root, d) => {
  const S = await P.tensor("scores", d.scores);
  const [M, N] = S.shape;
  P.header(root, d);
  const div = P.lut(d.div), txt = P.lut(d.text);
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  bar.appendChild(P.colorbar(d.anySigned ? div : txt, 120, 10, d.anySigned ? -1 : 0, 1,
                             "score / largest |score| of the method"));
  bar.appendChild(P.el("span", "p-note", "hover a token for its scores"));
  const rows = P.el("div", "p-rows"); root.appendChild(rows);
  const spans = [];
  for (let m = 0; m < M; m++) {
    const row = P.el("div", "p-row"), flow = P.el("div", "p-flow");
    if (d.rtl) row.dir = "rtl";  // right to left: the label at the right, token 0 next to it
    const lab = P.el("div", "p-rowlab", d.methods[m]); lab.title = d.methods[m];
    row.appendChild(lab); row.appendChild(flow); rows.appendChild(row);
    const scale = P.sliceAbsMax(S, m * N, N) || 1;
    spans.push(d.tokens.map((t, i) => {
      const v = S.get(m * N + i) / scale;
      const c = d.signed[m] ? P.rgb(div, 0.5 + 0.5 * v) : P.rgb(txt, Math.max(0, v));
      const s = P.el("span", "p-tok", t);
      s.style.background = P.css(c); s.style.color = P.ink(c);
      s.addEventListener("mouseenter", ev => hover(ev, i));
      s.addEventListener("mousemove", ev => hover(ev, i));
      s.addEventListener("mouseleave", () => { P.hideTip(); mark(null); });
      flow.appendChild(s);
      return s;
    }));
  }
  function mark(i) {
    spans.forEach(r => r.forEach((s, j) => s.classList.toggle("hot", j === i)));
    root.dataset.hover = i === null ? "" : String(i);
  }
  function hover(ev, i) {
    mark(i);
    P.showTip(ev, ["\u201c" + d.tokens[i] + "\u201d (" + i + ")"].concat(
      d.methods.map((m, k) => m + ": " + P.fmt(S.get(k * N + i)))));
  }
  root.dataset.hover = "";
});
"""

_IMAGE_JS = r"""
P.start(async (root, d) => {
  P.header(root, d);
  // the input in its own colours, in a panel of its own; every map over a grey copy of it
  // (the figures' rule: a colour of the map is never a colour of the image)
  const img = new Image(), grey = new Image();
  img.src = d.image; grey.src = d.grey;
  await Promise.all([img.decode(), grey.decode()]);
  const [IH, IW] = d.size, SIDE = 300;
  const cw = IW >= IH ? SIDE : Math.round(SIDE * IW / IH), ch = IH >= IW ? SIDE :
    Math.round(SIDE * IH / IW);
  const [GH, GW] = d.grid, A8 = Math.round(d.alpha * 255);
  const seq = P.lut(d.seq), div = P.lut(d.div);
  function overlay(c, T, off, rows, cols, norm, l, w, h) {
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(grey, 0, 0, w, h);
    if (!T) return;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(P.paint(T, off, rows, cols, P.levels(T, l, norm, A8)), 0, 0, w, h);
  }
  function section(text) { root.appendChild(P.el("div", "p-sec", text)); }
  const top = P.el("div", "p-panel"); root.appendChild(top);
  const inputBox = P.el("div"), input = P.canvas(cw, ch, "p-input");
  input.getContext("2d").drawImage(img, 0, 0, cw, ch);
  inputBox.appendChild(input); inputBox.appendChild(P.el("div", "p-lab", "input"));
  top.appendChild(inputBox);
  // ---- methods: tabs, overlay, agreement and faithfulness
  if (d.methods.length) {
    const Mp = await P.tensor("maps", d.maps);
    const tabs = P.el("div", "p-tabs");
    root.insertBefore(tabs, top);
    root.insertBefore(P.el("div", "p-sec", "Attribution methods"), tabs);
    const panel = top;
    const left = P.el("div"); panel.appendChild(left);
    const main = P.canvas(cw, ch, "p-main"); left.appendChild(main);
    const legend = P.el("div"); left.appendChild(legend);
    const side = P.el("div", "p-scroll"); panel.appendChild(side);
    const buttons = d.methods.map((m, k) => {
      const b = P.el("button", "p-tab", m);
      b.addEventListener("click", () => show(k));
      tabs.appendChild(b);
      return b;
    });
    function show(k) {
      buttons.forEach((b, j) => b.classList.toggle("sel", j === k));
      const off = k * GH * GW, scale = P.sliceAbsMax(Mp, off, GH * GW) || 1;
      const signed = d.signed[k];
      overlay(main, Mp, off, GH, GW, signed ? (v => 0.5 + 0.5 * v / scale) : (v => Math.max(0,
        v / scale)),
              signed ? div : seq, cw, ch);
      legend.textContent = "";
      legend.appendChild(P.colorbar(signed ? div : seq, 120, 10, signed ? -1 : 0, 1,
        "(normalized)"));
      side.textContent = "";
      const f = d.faithfulness[d.methods[k]];
      if (f) {
        side.appendChild(P.el("div", "p-title", "faithfulness \u00b7 " + d.methods[k]));
        const t = P.el("table", "p-table");
        for (const key of Object.keys(f)) {
          const tr = P.el("tr");
          tr.appendChild(P.el("th", null, key));
          tr.appendChild(P.el("td", null, f[key] === null ? "\u2013" : P.fmt(f[key])));
          t.appendChild(tr);
        }
        side.appendChild(t);
      }
      if (d.agreement) {
        side.appendChild(P.el("div", "p-title", "rank agreement (Spearman \u03c1)"));
        const names = d.agreement.methods, t = P.el("table", "p-table"), head = P.el("tr");
        head.appendChild(P.el("th"));
        names.forEach(n => head.appendChild(P.el("th", null, n)));
        t.appendChild(head);
        names.forEach((n, i) => {
          const tr = P.el("tr", n === d.methods[k] ? "sel" : null);
          tr.appendChild(P.el("th", null, n));
          d.agreement.values[i].forEach((v, j) => {
            const td = P.el("td", null, v === null ? "\u2013" : v.toFixed(2));
            if (v !== null) { const c = P.rgb(div, 0.5 + 0.5 * v); td.style.background = P.css(c);
              td.style.color = P.ink(c); }
            if (d.agreement.bold[i][j]) td.style.fontWeight = "bold";  // p < 0.05 at this N
            tr.appendChild(td);
          });
          t.appendChild(tr);
        });
        side.appendChild(t);
        side.appendChild(P.el("div", "p-note", d.agreement.note));
      }
      root.dataset.method = String(k);
    }
    show(0);
  }
  // ---- per-head CLS maps of one layer
  if (d.cls) {
    const C = await P.tensor("cls", d.cls);
    const [L, H] = C.shape, TW = Math.round(cw * 0.45), TH = Math.round(ch * 0.45);
    section("Per-head " + d.clsName + " maps");
    const bar = P.el("div", "p-bar"); root.appendChild(bar);
    const grid = P.el("div", "p-thumbs"); root.appendChild(grid);
    const cells = d.heads.map(h => {
      const fig = P.el("figure"), c = P.canvas(TW, TH);
      fig.appendChild(c); fig.appendChild(P.el("figcaption", null, "head " + h));
      grid.appendChild(fig);
      return c;
    });
    const clsLegend = P.el("span", "p-legend");
    function layer(l) {
      const n = GH * GW, vmax = P.sliceMax(C, l * H * n, H * n) || 1;
      cells.forEach((c, h) => overlay(c, C, (l * H + h) * n, GH, GW, v => v / vmax, seq, TW, TH));
      clsLegend.textContent = "";
      clsLegend.appendChild(P.colorbar(seq, 120, 10, 0, vmax, "attention (this layer)"));
      root.dataset.clsLayer = String(l);
    }
    bar.appendChild(P.labelled("Layer", P.select(d.layers, layer, d.layers.length - 1)));
    bar.appendChild(clsLegend);
    layer(d.layers.length - 1);
  }
  // ---- hover a patch: its attention to every patch (DINO)
  if (d.patch) {
    const T = await P.tensor("patch", d.patch);
    const [L, H, NP] = T.shape;
    section("Patch attention: hover a patch (click keeps it; arrow keys move it)");
    const bar = P.el("div", "p-bar"); root.appendChild(bar);
    let l = L - 1, h = H, p = Math.floor(GH / 2) * GW + Math.floor(GW / 2), kept = false;
    bar.appendChild(P.labelled("Layer", P.select(d.layers, v => { l = v; draw(); }, l)));
    bar.appendChild(P.labelled("Head", P.select(d.heads.map(x => "head " +
      x).concat(["mean of heads"]),
                                                 v => { h = v; draw(); }, H)));
    const patchLegend = P.el("span", "p-legend"); bar.appendChild(patchLegend);
    const c = P.canvas(cw, ch, "p-patch"); c.style.cursor = "crosshair";
    root.appendChild(c);
    const readout = P.el("div", "p-readout"); root.appendChild(readout);
    const mean = {q: new Uint8Array(NP), lo: T.lo, step: T.step};
    function draw() {
      let src = T, off = ((l * H + h) * NP + p) * NP;
      if (h === H) {
        for (let k = 0; k < NP; k++) {
          let s = 0;
          for (let j = 0; j < H; j++) s += T.q[((l * H + j) * NP + p) * NP + k];
          mean.q[k] = Math.round(s / H);
        }
        src = mean; off = 0;
      }
      let m = 0;
      for (let k = 0; k < NP; k++) m = Math.max(m, src.q[off + k]);
      const vmax = T.lo + m * T.step || 1;
      overlay(c, src, off, GH, GW, v => v / vmax, seq, cw, ch);
      patchLegend.textContent = "";
      patchLegend.appendChild(P.colorbar(seq, 120, 10, 0, vmax, "attention (this map)"));
      const ctx = c.getContext("2d"), r = Math.floor(p / GW), k = p % GW;
      ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2;
      ctx.strokeRect(k * cw / GW, r * ch / GH, cw / GW, ch / GH);
      readout.textContent = "query patch (row " + r + ", col " + k + "), layer " + d.layers[l] +
        ", " +
        (h === H ? "mean of heads" : "head " + d.heads[h]) + ": max weight " + P.fmt(vmax) +
        (kept ? " (kept: click to release)" : " (click to keep)");
      root.dataset.patch = String(p);
      root.dataset.patchLayer = String(l);
      root.dataset.patchKept = kept ? "1" : "0";
    }
    function under(ev) {
      const b = c.getBoundingClientRect();
      const r = Math.min(GH - 1, Math.floor((ev.clientY - b.top) / b.height * GH));
      return r * GW + Math.min(GW - 1, Math.floor((ev.clientX - b.left) / b.width * GW));
    }
    c.addEventListener("mousemove", ev => {
      if (kept) return;
      const q = under(ev);
      if (q !== p) { p = q; draw(); }
    });
    c.addEventListener("click", ev => { kept = !kept; p = under(ev); draw(); });
    // keyboard: Tab to the map, arrow keys move the query patch (and keep it), Escape releases
    c.tabIndex = 0; c.setAttribute("aria-label", "patch attention map: arrow keys move the query");
    c.addEventListener("keydown", ev => {
      const moves = {ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]};
      if (ev.key === "Escape") { kept = false; draw(); return; }
      if (!moves[ev.key]) return;
      ev.preventDefault();
      const r = Math.max(0, Math.min(GH - 1, Math.floor(p / GW) + moves[ev.key][0]));
      const k = Math.max(0, Math.min(GW - 1, p % GW + moves[ev.key][1]));
      p = r * GW + k; kept = true; draw();
    });
    draw();
  }
});
"""


def _grey_data_url(image: Any) -> str:
    """The grey, contrast-reduced copy the figures draw maps over
    (:func:`probe.viewers._saliency.grey_image`), as a one-channel PNG ``data:`` URL."""
    from PIL import Image

    from probe.viewers._saliency import as_image, grey_image

    img = as_image(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    lum = grey_image(np.clip(img[..., :3], 0.0, 1.0))[..., 0]
    buf = io.BytesIO()
    Image.fromarray((lum * 255).round().astype(np.uint8), mode="L").save(buf, format="PNG",
                                                                         optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _image_data_url(image: Any) -> tuple[str, tuple[int, int]]:
    from PIL import Image

    from probe.viewers._saliency import as_image

    img = as_image(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    arr = (np.clip(img[..., :3], 0.0, 1.0) * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return url, (int(arr.shape[0]), int(arr.shape[1]))


def token_view_html(
    tokens: Sequence[str],
    scores: Mapping[str, Any] | Any,
    *,
    signed: bool | Mapping[str, bool] | None = None,
    model_name: str | None = None,
    method: str | None = None,
    title: str | None = None,
    direction: Direction = "auto",
) -> HtmlView:
    """Interactive token attribution view: the text once per method, each token on a
    background coloured by its score; hover a token for its score under every method.

    Each row is divided by its largest magnitude (so methods on different scales compare);
    signed rows use ``RdBu_r`` centred at 0, unsigned rows the white-based ``Reds``.

    Args:
        tokens: ``[n]`` token strings.
        scores: ``{method: [n]}``, or one ``[n]`` array (then ``method`` names the row).
        signed: ``None`` infers it per row (any negative value); or one flag, or one per
            method.
        model_name, method: go into the title; title: replaces it.
        direction: ``"auto"`` (default: right to left when the tokens' first strong letter
            is, as ``dir="auto"``), ``"ltr"`` or ``"rtl"``: right to left, each row is
            ``dir="rtl"`` (the method name at the right, token 0 next to it).

    Returns:
        An :class:`HtmlView`.
    """
    from probe.viewers._style import DIVERGING_CMAP, TEXT_SEQUENTIAL_CMAP

    def numbers(values: Any, name: str) -> np.ndarray:
        try:
            return np.asarray(_to_numpy(values), dtype=np.float64)
        except (TypeError, ValueError):  # "could not convert string to float"
            raise ProbeError(f"scores[{name!r}] must be numbers [n], one per token, got "
                             f"{type(values).__name__}") from None

    if isinstance(scores, Mapping):
        rows = {str(k): numbers(v, str(k)) for k, v in scores.items()}
    else:
        rows = {method or "score": numbers(scores, method or "score")}
    if not rows:
        raise ProbeError("scores is empty: pass {method: [n] scores} with at least one method")
    n = len(tokens) if isinstance(tokens, Sequence) else -1
    if n == 0:  # as token_strip: a page of no token shows nothing
        raise ProbeError("tokens is empty: pass at least one token and its score")
    for name, row in rows.items():
        if row.ndim != 1 or len(row) != n:
            raise ProbeError(
                f"scores[{name!r}] must be [n] with one score per token ({n} tokens), got "
                f"shape {list(row.shape)}"
            )
    toks = clean_tokens(tokens, n, "tokens", "scores")
    rtl = is_rtl(direction, toks)
    if signed is None or isinstance(signed, bool):
        flags = [bool(signed) if signed is not None else bool((r < 0).any()) for r in rows.values()]
    else:
        flags = [bool(signed.get(k, (r < 0).any())) for k, r in rows.items()]
    payload = {
        "title": view_title(model_name, f"{method or 'token attribution'}", title),
        "subtitle": f"{len(rows)} method{'s' if len(rows) != 1 else ''}, {n} tokens",
        "tokens": toks, "methods": list(rows), "signed": flags, "anySigned": any(flags),
        "scores": encode_array(np.stack(list(rows.values())), "scores"),
        "div": cmap_hex(DIVERGING_CMAP), "text": cmap_hex(TEXT_SEQUENTIAL_CMAP), "rtl": rtl,
    }
    page = build_page(title=payload["title"], css=CSS, js=RUNTIME_JS + _TOKENS_JS, data=payload)
    return HtmlView(page, view="tokens", height=min(900, 120 + 40 * len(rows) * (1 + n // 40)))


def _grid_of(array: np.ndarray, what: str, trailing: int) -> np.ndarray:
    if array.ndim != trailing:
        raise ProbeError(f"{what} must have {trailing} dimensions, got shape {list(array.shape)}")
    return array


def image_view_html(
    image: Any,
    maps: Mapping[str, Any] | None = None,
    *,
    agreement: Any = None,
    methods: Sequence[str] | None = None,
    faithfulness: Mapping[str, Mapping[str, float]] | None = None,
    cls_maps: Any = None,
    cls_name: str = "CLS attention",
    patch_attn: Any = None,
    layers: Sequence[int | str] | None = None,
    heads: Sequence[int | str] | None = None,
    alpha: float = 0.65,
    model_name: str | None = None,
    title: str | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
    image_size: tuple[int, int] | None = None,
    units: int | Sequence[int] | None = None,
) -> HtmlView:
    """Interactive image view: saliency overlays with method tabs, agreement and
    faithfulness numbers, a per-head CLS-map grid with a layer selector, and the attention
    of the patch under the mouse (DINO, Caron et al. 2021, Fig. 1) per layer and head.

    Every part is optional except the image; the maps share one patch grid ``[h, w]``. As
    in the figures, the input is shown in its own colours in a panel of its own and every map
    is drawn over a grey, contrast-reduced copy of it (both embedded as PNG), so a colour of
    the map is never mistaken for a colour of the image; each map has its colour bar.

    Args:
        image: ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1`` (or uint8), embedded as PNG.
        maps: ``{method: [h, w]}`` saliency maps (each shown divided by its largest
            magnitude; signed maps use ``RdBu_r``, unsigned ``viridis``).
        agreement: ``[m, m]`` Spearman correlations between ``methods`` (default the
            ``maps`` keys), shown as a table with the current method's row highlighted; a
            value is bold only when distinguishable from chance at its N (two-sided ``p <
            0.05``, permutation test), and a line under the table says N and what bold means.
        units: how many units the agreement is over (one count, or one per item of a mean:
            ``AgreementTable.units``); default: the cells of a map.
        faithfulness: ``{method: {metric: value}}`` shown under the current method's tab.
        cls_maps: ``[layer, head, h, w]`` CLS attention to the patches (see
            ``probe.patch_maps``); cls_name labels them.
        patch_attn: ``[layer, head, h*w, h*w]`` patch-to-patch attention (prefix tokens
            dropped), row-major patches.
        layers, heads: the model's index of each layer / head of ``cls_maps`` and
            ``patch_attn``.
        alpha: opacity of the maps over the grey image (default 0.65, as the figures).
        model_name: goes into the title; title: replaces it.
        max_values: the size budget for ``patch_attn``.
        image_size: ``(height, width)`` to show the image at, when ``image`` is the model's
            input resized from an image of another aspect ratio: image and maps are stretched
            back to the original's proportions (the maps over the whole image, as the plain
            resize showed it to the model). Default: the image's own size.

    Returns:
        An :class:`HtmlView`.
    """
    from probe.viewers._saliency import as_image, check_placement
    from probe.viewers._style import DIVERGING_CMAP, SEQUENTIAL_CMAP

    url, size = _image_data_url(image)
    drawn, _ = check_placement(as_image(image), image_size, None)
    size = drawn or size
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ProbeError(f"alpha must be in [0, 1], got {alpha!r}")
    grid: tuple[int, int] | None = None
    names: list[str] = []
    stacked = None
    flags: list[bool] = []
    if maps is not None and not isinstance(maps, Mapping):  # a lone map: name its method
        raise ProbeError(f"maps must be a {{method: [h, w] map}} dict, got "
                         f"{type(maps).__name__}: pass e.g. maps={{'ig': heatmap}}")
    if maps:
        arrays = []
        for k, v in maps.items():
            a = _grid_of(np.asarray(_to_numpy(v), dtype=np.float64), f"maps[{k!r}]", 2)
            if grid is not None and a.shape != grid:
                raise ProbeError(
                    f"maps[{k!r}] is {list(a.shape)} but the other maps are {list(grid)}: pass "
                    "all maps on one patch grid"
                )
            grid = (int(a.shape[0]), int(a.shape[1]))
            names.append(str(k))
            arrays.append(a)
            flags.append(bool((a < 0).any()))
        stacked = np.stack(arrays)
    cls = None
    if cls_maps is not None:
        cls = _grid_of(np.asarray(_to_numpy(cls_maps), dtype=np.float32), "cls_maps", 4)
        if grid is not None and cls.shape[2:] != grid:
            raise ProbeError(
                f"cls_maps grid {list(cls.shape[2:])} differs from the maps' {list(grid)}")
        grid = (int(cls.shape[2]), int(cls.shape[3]))
    patch = None
    if patch_attn is not None:
        patch = _grid_of(np.asarray(_to_numpy(patch_attn), dtype=np.float32), "patch_attn", 4)
        check_budget(patch.shape, max_values, "patch_attn")
        if grid is None or patch.shape[2] != grid[0] * grid[1] or patch.shape[3] != patch.shape[2]:
            raise ProbeError(
                "patch_attn must be [layer, head, h*w, h*w] on the grid of cls_maps or maps "
                f"(pass one of them too), got shape {list(patch.shape)}"
            )
        if cls is not None and patch.shape[:2] != cls.shape[:2]:
            raise ProbeError("patch_attn and cls_maps must have the same layers and heads")
    if grid is None:
        raise ProbeError("pass at least one of maps=, cls_maps= (with patch_attn=) to show")
    lh = cls.shape[:2] if cls is not None else (patch.shape[:2] if patch is not None else (0, 0))
    agree = None
    if agreement is not None:
        matrix = np.asarray(_to_numpy(agreement), dtype=np.float64)
        agree_names = list(names) if methods is None else [str(m) for m in methods]
        if matrix.shape != (len(agree_names), len(agree_names)):
            raise ProbeError(
                f"agreement is {list(matrix.shape)} but there are {len(agree_names)} methods: "
                "pass methods= with one name per row"
            )
        from probe.evaluation._significance import ALPHA, agreement_p_value, significance_note

        if units is None:
            units = int(np.prod(grid))
        agree = {"methods": agree_names,
                 "values": [[None if not np.isfinite(v) else float(v) for v in row]
                            for row in matrix],
                 "bold": [[i != j and agreement_p_value(float(v), units) < ALPHA
                           for j, v in enumerate(row)] for i, row in enumerate(matrix)],
                 "note": significance_note(units, "spearman", "patches")}
    faith = {}
    for m, metrics in (faithfulness or {}).items():
        faith[str(m)] = {str(k): (None if v is None or not np.isfinite(float(v)) else float(v))
                         for k, v in metrics.items()}
    payload = {
        "title": view_title(model_name, "image attribution", title),
        # width x height, as image sizes are written (a 640 x 360 photo is wide)
        "subtitle": f"{size[1]} x {size[0]} image, {grid[1]} x {grid[0]} patches",
        "image": url, "grey": _grey_data_url(image), "size": list(size), "grid": list(grid),
        "alpha": float(alpha),
        "methods": names, "signed": flags,
        "maps": encode_array(stacked, "maps") if stacked is not None else None,
        "agreement": agree, "faithfulness": faith,
        "cls": encode_array(cls, "cls_maps") if cls is not None else None, "clsName": cls_name,
        "patch": encode_array(patch, "patch_attn") if patch is not None else None,
        "layers": labels(layers, lh[0], "layers"), "heads": labels(heads, lh[1], "heads"),
        "seq": cmap_hex(SEQUENTIAL_CMAP), "div": cmap_hex(DIVERGING_CMAP),
    }
    page = build_page(title=payload["title"], css=CSS, js=RUNTIME_JS + _IMAGE_JS, data=payload)
    height = 120 + (420 if names else 0) + (260 if cls is not None else 0) + (
        400 if patch is not None else 0)
    return HtmlView(page, view="image", height=height)
