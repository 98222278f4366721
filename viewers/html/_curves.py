"""Interactive faithfulness curves: the deletion and insertion curves of several methods side
by side; hover a point to see the input the model scored at that step: the image with the
removed or not yet revealed patches replaced by the baseline's own pixels (``baseline=``, e.g.
from :func:`probe.perturbed_input`; without it they are greyed), or the text with those
tokens replaced by what the model read in their place (``replacements=``, e.g. ``[MASK]``: the
tokens of the input with every unit removed, from :func:`probe.perturbed_input`; without it
they are struck through).

The units replaced at step ``s`` follow the curves' own rule (:mod:`probe.evaluation`): units
ranked by decreasing score, ties by position; after step ``s`` of ``steps`` the
``round(s * n / steps)`` top-ranked units are removed (deletion) or are the only ones revealed
(insertion). The ranks and counts are computed here from the exact scores, not from a
quantised copy. A patch is the curves' pixel block: ``H // rows`` x ``W // cols`` pixels from
the top left (pixels beyond the last full patch are never replaced), so the page composes,
pixel for pixel, the input :func:`probe.perturbed_input` builds (both images embedded as
8-bit PNG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._direction import Direction, check_direction, is_rtl
from probe.viewers.html._attribution import _image_data_url
from probe.viewers.html._page import (
    HtmlView,
    _to_numpy,
    build_page,
    clean_tokens,
    head_colors,
    view_title,
)
from probe.viewers.html._runtime import CSS, RUNTIME_JS

__all__ = ["curves_view_html"]

#: the most units (patches or tokens) the view draws, with every method's ranks
MAX_UNITS = 100_000

_CURVES_CSS = """
.p-curves{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.p-curves .p-readout{max-width:300px}
.p-auc{white-space:pre-line}
.p-auc-row{white-space:pre;font-weight:600}
.p-auc-key{display:inline-block;width:16px;margin-right:4px;vertical-align:middle;
  border-top:2px solid}
.p-curves canvas.p-chart{border:1px solid #ccc;cursor:crosshair;display:block}
.p-flow .p-tok.gone{background:#bbb;color:#666;text-decoration:line-through}
.p-flow .p-tok.swap{background:#ffe08a;color:#333;font-style:italic}
.p-flow .p-tok.swap.unseen{background:#ddd;color:#777;border:1px dashed #999}
.p-swatch.base{border-style:dashed}
"""

_CURVES_JS = r"""
P.start(async (root, d) => {
  P.header(root, d);
  const M = d.methods.length, CW = 300, CH = 210, PAD = [34, 10, 10, 30];  // left top right bottom
  const shown = new Array(M).fill(true);
  let kind = 0, m = d.first, step = Math.round((d.kinds[0].counts.length - 1) / 4);
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  const sw = P.el("div", "p-swatches"); bar.appendChild(sw);
  const swatches = d.methods.map((name, i) => {
    const b = P.el("button", "p-swatch" + (d.ranks[i] ? "" : " base"), name);
    b.style.borderColor = d.colors[i];
    b.title = "click: show or hide this method";
    b.addEventListener("click", () => { shown[i] = !shown[i]; draw(); });
    sw.appendChild(b);
    return b;
  });
  bar.appendChild(P.el("span", "p-note", "hover a curve point: the input at that step"));
  const wrap = P.el("div", "p-curves"); root.appendChild(wrap);
  const side = P.el("div"); wrap.appendChild(side);
  const charts = d.kinds.map((k, ki) => {
    const box = P.el("div");
    box.style.width = (CW + 2) + "px";
    box.appendChild(P.el("div", "p-title", k.name));
    box.appendChild(P.el("div", "p-note p-ylabel", "y: " + d.ylabel));
    const c = P.canvas(CW, CH, "p-chart"); box.appendChild(c);
    const auc = P.el("div", "p-note p-auc"); box.appendChild(auc);
    wrap.appendChild(box);
    c.addEventListener("mousemove", ev => pick(ev, ki, c));
    return {c, auc};
  });
  let scene = null, spans = null, cw = 0, ch = 0, img = null, base = null, inp = null;
  if (d.image) {
    img = new Image(); img.src = d.image; await img.decode();
    if (d.baseline) {  // the model's input composed at its own pixels, then drawn scaled
      base = new Image(); base.src = d.baseline; await base.decode();
      inp = document.createElement("canvas"); inp.className = "p-input";
      inp.width = img.naturalWidth; inp.height = img.naturalHeight; inp.style.display = "none";
    }
    const [IH, IW] = d.size, S = 260;
    cw = IW >= IH ? S : Math.round(S * IW / IH); ch = IH >= IW ? S : Math.round(S * IH / IW);
    scene = P.canvas(cw, ch, "p-scene"); side.appendChild(scene);
    if (inp) side.appendChild(inp);
  } else {
    const flow = P.el("div", "p-flow"); flow.style.maxWidth = "300px"; side.appendChild(flow);
    if (d.rtl) flow.dir = "rtl";  // right to left: token 0 at the right
    spans = d.tokens.map(t => { const s = P.el("span", "p-tok", t); flow.appendChild(s);
      return s; });
  }
  const readout = P.el("div", "p-readout"); side.appendChild(readout);
  const [Y0, Y1] = d.yrange;
  function px(f) { return PAD[0] + f * (CW - PAD[0] - PAD[2]); }
  function py(v) { return CH - PAD[3] - (v - Y0) / ((Y1 - Y0) || 1) * (CH - PAD[1] - PAD[3]); }
  function pick(ev, ki, c) {
    const b = c.getBoundingClientRect(), x = ev.clientX - b.left, y = ev.clientY - b.top;
    const K = d.kinds[ki];
    let best = null, dist = Infinity;
    for (let i = 0; i < M; i++) {
      if (!shown[i]) continue;
      const fr = K.fractions[i], vs = K.values[i];
      for (let s = 0; s < fr.length; s++) {
        const dd = Math.hypot(px(fr[s]) - x, py(vs[s]) - y);
        if (dd < dist) { dist = dd; best = [i, s]; }
      }
    }
    if (best && (ki !== kind || best[0] !== m || best[1] !== step)) {
      kind = ki; m = best[0]; step = best[1]; draw();
    }
  }
  function chart(ki) {
    const K = d.kinds[ki], {c, auc} = charts[ki], ctx = c.getContext("2d");
    ctx.clearRect(0, 0, CW, CH);
    ctx.strokeStyle = "#999"; ctx.lineWidth = 1; ctx.fillStyle = "#555";
    ctx.font = "10px sans-serif";
    ctx.strokeRect(PAD[0], PAD[1], CW - PAD[0] - PAD[2], CH - PAD[1] - PAD[3]);
    for (const f of [0, 0.5, 1]) ctx.fillText(String(f), px(f) - 6, CH - PAD[3] + 12);
    // the scores' own extremes, not the padded ends of the axis (a probability of 1.050)
    for (const v of d.yticks) {
      ctx.fillText(P.fmt(v), 2, py(v) + 4);
      ctx.beginPath(); ctx.moveTo(PAD[0] - 3, py(v)); ctx.lineTo(PAD[0], py(v)); ctx.stroke();
    }
    ctx.fillText(K.axis, PAD[0] + 40, CH - 4);
    const rows = [];
    for (let i = 0; i < M; i++) {
      if (!shown[i]) continue;
      const fr = K.fractions[i], vs = K.values[i];
      ctx.strokeStyle = d.colors[i]; ctx.lineWidth = 1.8;
      ctx.setLineDash(d.ranks[i] ? [] : [5, 3]);
      ctx.beginPath();
      fr.forEach((f, s) => s ? ctx.lineTo(px(f), py(vs[s])) : ctx.moveTo(px(f), py(vs[s])));
      ctx.stroke();
      // one row per method in its curve's colour (a baseline's key dashed, as its curve)
      const row = P.el("div", "p-auc-row"), key = P.el("span", "p-auc-key");
      key.style.borderTopColor = d.colors[i];
      key.style.borderTopStyle = d.ranks[i] ? "solid" : "dashed";
      row.style.color = d.colors[i]; row.dataset.method = d.methods[i];
      row.appendChild(key); row.appendChild(document.createTextNode(
        d.methods[i] + " AUC " + K.auc[i].toFixed(3)));
      rows.push(row);
    }
    ctx.setLineDash([]);
    if (ki === kind && shown[m]) {
      const x = px(K.fractions[m][step]), y = py(K.values[m][step]);
      ctx.fillStyle = d.colors[m]; ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    }
    auc.textContent = K.better + ":";
    rows.forEach(r => auc.appendChild(r));
  }
  function draw() {
    charts.forEach((_, ki) => chart(ki));
    swatches.forEach((b, i) => b.classList.toggle("off", !shown[i]));
    const K = d.kinds[kind], R = d.ranks[m], del = K.name === "deletion";
    const count = R ? K.counts[step] : 0, grey = [];
    if (R) for (let u = 0; u < R.length; u++) if (del ? R[u] < count : R[u] >= count) grey.push(u);
    if (scene) {
      const ctx = scene.getContext("2d"), [GH, GW] = d.grid;
      ctx.clearRect(0, 0, cw, ch);
      if (inp) {
        const ic = inp.getContext("2d"), [PH, PW] = d.patch;
        ic.drawImage(img, 0, 0);
        for (const u of grey) {
          const x0 = (u % GW) * PW, y0 = Math.floor(u / GW) * PH;
          ic.drawImage(base, x0, y0, PW, PH, x0, y0, PW, PH);
        }
        ctx.drawImage(inp, 0, 0, cw, ch);
      }
      ctx.fillStyle = "rgba(128,128,128,0.92)";
      if (!inp) for (const u of grey) {
        const r = Math.floor(u / GW), k = u % GW;
        const x0 = Math.round(k * cw / GW), y0 = Math.round(r * ch / GH);
        ctx.fillRect(x0, y0, Math.round((k + 1) * cw / GW) - x0,
                     Math.round((r + 1) * ch / GH) - y0);
      }
    } else {
      const g = new Set(grey);
      spans.forEach((s, u) => {
        const out = g.has(u);
        if (!d.replacements) { s.classList.toggle("gone", out); return; }
        s.textContent = out ? d.replacements[u] : d.tokens[u];  // what the model read there
        s.classList.toggle("swap", out);
        s.classList.toggle("unseen", out && d.unseen);
        s.title = out ? "replaced: " + d.tokens[u] : "";
      });
    }
    const frac = K.fractions[m][step], n = R ? R.length : 0;
    readout.textContent = K.name + " \u00b7 " + d.methods[m] + " \u00b7 step " + step + " of " +
      (K.fractions[m].length - 1) + ": " + d.ylabel + " " + P.fmt(K.values[m][step]) + " at " +
      Math.round(100 * frac) + "% " + (del ? "removed" : "revealed") + (R ? " (" +
      count + " of " + n + " " + d.unit + "; " + (scene ? (inp ? "the baseline's pixels" :
      "grey") : d.replacements ? (d.unseen ? "the replacement token, masked out of attention" :
      "the replacement token") : "struck through") +
      ": " + (del ? "removed" : "not yet revealed") + ")" :
      " (random orders: no single input to show)");
    root.dataset.kind = K.name;
    root.dataset.method = String(m);
    root.dataset.step = String(step);
    root.dataset.grey = grey.join(",");
  }
  draw();
});
"""

CurveMap = Mapping[str, tuple[Any, Any]]


def _curve_set(curves: CurveMap, what: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(curves, Mapping) or not curves:
        raise ProbeError(
            f"{what} must be {{method: (fractions, values)}} with one method or more")
    out = {}
    for name, pair in curves.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ProbeError(f"{what}[{name!r}] must be a pair (fractions [s], values [s])")
        f = np.asarray(_to_numpy(pair[0]), dtype=np.float64).reshape(-1)
        v = np.asarray(_to_numpy(pair[1]), dtype=np.float64).reshape(-1)
        steps = len(f) - 1
        if steps < 1 or v.shape != f.shape or not np.isfinite(v).all():
            raise ProbeError(
                f"{what}[{name!r}] must hold two finite arrays of the same length >= 2 (fractions "
                f"and values), got {len(f)} and {len(v)}"
            )
        if not np.allclose(f, np.arange(steps + 1) / steps, rtol=0, atol=1e-6):
            raise ProbeError(
                f"{what}[{name!r}] fractions must be 0, 1/steps, ..., 1 (the curves of "
                "probe.deletion_curve / insertion_curve)"
            )
        out[str(name)] = (f, v)
    return out


def _auc(f: np.ndarray, v: np.ndarray) -> float:
    return float(np.sum((f[1:] - f[:-1]) * (v[1:] + v[:-1]) / 2))


def curves_view_html(
    deletion: CurveMap | None,
    insertion: CurveMap | None,
    scores: Mapping[str, Any],
    *,
    image: Any = None,
    grid: tuple[int, int] | None = None,
    baseline: Any = None,
    tokens: Sequence[str] | None = None,
    replacements: Sequence[str] | None = None,
    unseen: bool = False,
    image_size: tuple[int, int] | None = None,
    model_name: str | None = None,
    title: str | None = None,
    direction: Direction = "auto",
    ylabel: str = "model score",
) -> HtmlView:
    """Interactive deletion and insertion curves (Petsiuk et al. 2018) with the perturbed input
    of every step: hover a point of a curve to see what the model scored there.

    Args:
        deletion, insertion: ``{method: (fractions [steps + 1], values [steps + 1])}`` (e.g.
            ``curve.fractions, curve.values[0]`` of :func:`probe.deletion_curve` /
            :func:`probe.insertion_curve`); either may be ``None``, not both.
        scores: ``{method: [n]}`` the unit scores each method's curves ranked (patches
            row-major over ``grid``, or the tokens); a method left out (``random``, a mean of
            random orders) is drawn dashed and shows no input.
        image, grid: the model's input ``[H, W, 3]`` in ``0..1`` and its ``(rows, cols)`` patch
            grid; or ``tokens``: ``[n]`` the units' token strings.
        baseline: ``[H, W, 3]`` in ``0..1``, the image with every unit removed (the input of
            the last deletion step, e.g. :func:`probe.perturbed_input` scaled as ``image``):
            a replaced patch shows its pixels; without it, replaced patches are greyed.
        replacements: with ``tokens``: ``[n]`` the token the model reads in place of each
            removed unit (the input with every unit removed, e.g. the labels of
            :func:`probe.perturbed_input`'s ``input_ids`` at the last deletion step): a
            replaced token shows it; without it, replaced tokens are struck through.
        unseen: the replaced tokens are also masked out of attention (the ``"pad"``
            baseline): they are drawn dashed and the readout says so.
        image_size: ``(height, width)`` to draw the image at (the file's proportions).
        model_name: goes into the title; title: replaces it.
        direction: tokens only: ``"auto"`` (default: right to left when the tokens' first
            strong letter is), ``"ltr"`` or ``"rtl"``.
        ylabel: what the curves' values are, written under each chart's name and in the
            readout (e.g. ``"probability (target class)"``, ``"cosine similarity (to the
            second sentence)"``: :func:`probe.evaluation._curves.score_label`).

    Returns:
        An :class:`HtmlView`.
    """
    from probe.viewers._saliency import as_image, check_placement

    if not isinstance(ylabel, str) or not ylabel.strip():
        raise ProbeError(f"ylabel must be a non-blank string, got {ylabel!r}")

    kinds = [(k, _curve_set(c, k)) for k, c in (("deletion", deletion), ("insertion", insertion))
             if c is not None]
    if not kinds:
        raise ProbeError("pass deletion= or insertion= curves (or both)")
    methods = list(kinds[0][1])
    for k, c in kinds[1:]:
        if list(c) != methods:
            raise ProbeError(f"{k} has methods {list(c)} but {kinds[0][0]} has {methods}: pass the "
                             "same methods in the same order")
    if not isinstance(scores, Mapping):
        raise ProbeError("scores must be {method: [n] unit scores}")
    unknown = [m for m in scores if str(m) not in methods]
    if unknown:
        raise ProbeError(f"scores names methods with no curve: {unknown}; use the curves' keys")
    if (image is None) == (tokens is None):
        raise ProbeError("pass image= with grid=, or tokens=: the input the units belong to")
    if (replacements is not None or unseen) and tokens is None:
        raise ProbeError("replacements= and unseen= describe replaced tokens: pass tokens= too "
                         "(an image's replaced patches come from baseline=)")
    n = None
    ranks: list[list[int] | None] = []
    for m in methods:
        if m not in scores:
            ranks.append(None)
            continue
        s = np.asarray(_to_numpy(scores[m]), dtype=np.float64).reshape(-1)
        if np.isnan(s).any():
            raise ProbeError(f"scores[{m!r}] has NaN: fix the attribution first")
        if n is not None and len(s) != n:
            raise ProbeError(f"scores[{m!r}] has {len(s)} units, the others {n}: one per unit")
        n = len(s)
        order = np.argsort(-s, kind="stable")  # decreasing score, ties by position
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        ranks.append([int(r) for r in rank])
    if n is not None and n > MAX_UNITS:
        raise ProbeError(f"{n:,} units is over the view's budget of {MAX_UNITS:,}: use a coarser "
                         "grid or fewer tokens")
    payload: dict[str, Any] = {}
    if image is not None:
        if check_direction(direction) != "auto":
            raise ProbeError("direction lays out tokens: drop it for an image")
        if grid is None or len(grid) != 2 or any(int(g) < 1 for g in grid):
            raise ProbeError(f"grid must be the (rows, cols) of the image's units, got {grid!r}")
        rows, cols = int(grid[0]), int(grid[1])
        if n is not None and rows * cols != n:
            raise ProbeError(f"grid {rows}x{cols} has {rows * cols} patches but scores have {n}")
        url, size = _image_data_url(image)
        drawn, _ = check_placement(as_image(image), image_size, None)
        payload.update(image=url, size=list(drawn or size), grid=[rows, cols], unit="patches",
                       baseline=None)
        if baseline is not None:
            base_url, base_size = _image_data_url(baseline)
            if base_size != size:
                raise ProbeError(f"baseline is {base_size[0]}x{base_size[1]} but image is "
                                 f"{size[0]}x{size[1]}: pass the baseline at the image's size")
            if size[0] < rows or size[1] < cols:
                raise ProbeError(f"a {rows}x{cols} grid does not fit a {size[0]}x{size[1]} "
                                 "image: pass the model's input (baseline= composes its pixels)")
            payload.update(baseline=base_url, patch=[size[0] // rows, size[1] // cols])
    else:
        toks = clean_tokens(tokens, len(tokens) if isinstance(tokens, Sequence) else -1,
                            "tokens", "the units")
        if n is not None and len(toks) != n:
            raise ProbeError(f"tokens has {len(toks)} entries but scores have {n}: one per unit")
        reps = None
        if replacements is not None:
            reps = clean_tokens(replacements, len(toks), "replacements", "tokens")
        payload.update(image=None, tokens=toks, unit="tokens", replacements=reps,
                       unseen=bool(unseen), rtl=is_rtl(direction, toks))
    allv = np.concatenate([v for _, c in kinds for _, v in c.values()])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    ks = []
    for k, c in kinds:
        steps = len(next(iter(c.values()))[0]) - 1
        count = [(2 * s * (n or 0) + steps) // (2 * steps) for s in range(steps + 1)]
        if any(len(f) - 1 != steps for f, _ in c.values()):
            raise ProbeError(f"every {k} curve must have the same number of steps")
        ks.append({
            "name": k, "fractions": [list(map(float, f)) for f, _ in c.values()],
            "values": [list(map(float, v)) for _, v in c.values()],
            "auc": [_auc(f, v) for f, v in c.values()], "counts": count,
            "axis": f"fraction of {payload['unit']} {'removed' if k == 'deletion' else 'revealed'}",
            "better": "lower AUC is better" if k == "deletion" else "higher AUC is better",
        })
    colors = head_colors(len(methods))
    colors = [c if r is not None else "#888888" for c, r in zip(colors, ranks)]
    first = next((i for i, r in enumerate(ranks) if r is not None), 0)
    payload.update({
        "title": view_title(model_name, "deletion and insertion curves", title),
        "subtitle": f"{len(methods)} method{'s' if len(methods) != 1 else ''}, "
                    f"{n if n is not None else '?'} {payload['unit']}; hover a point",
        "methods": methods, "ranks": ranks, "colors": colors, "kinds": ks, "first": first,
        "yrange": [lo - pad, hi + pad], "yticks": [lo, hi] if hi > lo else [lo],
        "ylabel": str(ylabel),
    })
    page = build_page(title=payload["title"], css=CSS + _CURVES_CSS, js=RUNTIME_JS + _CURVES_JS,
                      data=payload)
    return HtmlView(page, view="curves", height=420)
