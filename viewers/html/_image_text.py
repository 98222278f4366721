"""Interactive image-to-text view: the image and the tokens the model wrote; hover or click a
token to see where its decoder step looked (cross-attention over the image's patches), per
decoder layer and per head or the mean of the heads. The static twin is
:func:`probe.viewers.token_patches_view` (``probe.plot(trace, "cross")``).

Each map is embedded divided by its own maximum (the error is at most ``max / 510`` of that
map), with the maxima as numbers beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    check_finite,
    clean_tokens,
    cmap_hex,
    encode_array,
    labels,
    view_title,
)
from probe.viewers.html._runtime import CSS, RUNTIME_JS

__all__ = ["token_patches_html", "token_patches_view_html"]

_HINT = ("keep fewer decoder layers or heads (layers=[...], heads=[...]), fewer tokens or a "
         "smaller image")

_CSS = """
.p-i2t{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.p-i2t canvas.p-scene,.p-i2t canvas.p-input{border:1px solid #ccc;display:block}
.p-toks{display:flex;flex-wrap:wrap;gap:4px;margin:8px 0;max-width:100%}
.p-toks span{border:1px solid #bbb;border-radius:3px;padding:1px 5px;cursor:pointer;
white-space:pre}
.p-toks span.sel{border-color:#333;background:#eee}
.p-toks span.hot{background:#fff3c4}
"""

_JS = r"""
P.start(async (root, d) => {
  const M = await P.tensor("maps", d.maps);
  const [L, H1, T, GH, GW] = M.shape, N = GH * GW;
  P.header(root, d);
  const img = new Image(), grey = new Image();
  img.src = d.image; grey.src = d.grey;
  await Promise.all([img.decode(), grey.decode()]);
  const [IH, IW] = d.size, SIDE = d.side;
  const cw = IW >= IH ? SIDE : Math.round(SIDE * IW / IH);
  const ch = IH >= IW ? SIDE : Math.round(SIDE * IH / IW);
  const seq = P.lut(d.cmap), A8 = Math.round(d.alpha * 255);
  let layer = d.layer0, head = H1 - 1, locked = 0, hover = null;
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  bar.appendChild(P.labelled("Decoder layer", P.select(d.layers, v => { layer = v; draw(); },
    layer)));
  bar.appendChild(P.labelled("Head", P.select(d.heads.map(h => "head " + h).concat(
    ["mean of heads"]), v => { head = v; draw(); }, head)));
  const legend = P.el("span"); bar.appendChild(legend);
  const toks = P.el("div", "p-toks"); root.appendChild(toks);
  const chips = [];
  for (let t = 0; t < T; t++) {
    const c = P.el("span", null, d.tokens[t]);
    c.dataset.token = String(t);
    c.addEventListener("mouseenter", () => { hover = t; draw(); });
    c.addEventListener("mouseleave", () => { hover = null; draw(); });
    c.addEventListener("click", () => { locked = t; draw(); });
    toks.appendChild(c); chips.push(c);
  }
  const wrap = P.el("div", "p-i2t"); root.appendChild(wrap);
  const inputBox = P.el("div"); wrap.appendChild(inputBox);
  const input = P.canvas(Math.round(cw / 2), Math.round(ch / 2), "p-input");
  input.getContext("2d").drawImage(img, 0, 0, Math.round(cw / 2), Math.round(ch / 2));
  inputBox.appendChild(input); inputBox.appendChild(P.el("div", "p-lab", "input"));
  const left = P.el("div"); wrap.appendChild(left);
  const scene = P.canvas(cw, ch, "p-scene p-fit"); left.appendChild(scene);
  const readout = P.el("div", "p-readout"); left.appendChild(readout);
  const tab = P.levels(M, seq, v => v, A8);  // embedded values are map / its max: 0..1
  function draw() {
    const t = hover !== null ? hover : locked;
    const off = ((layer * H1 + head) * T + t) * N, vmax = d.scale[layer][head][t];
    const ctx = scene.getContext("2d");
    ctx.clearRect(0, 0, cw, ch);
    ctx.drawImage(grey, 0, 0, cw, ch);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(P.paint(M, off, GH, GW, tab), 0, 0, cw, ch);
    legend.textContent = "";
    legend.appendChild(P.colorbar(seq, 110, 10, 0, vmax, "attention (this map)"));
    readout.textContent = "wrote " + JSON.stringify(d.tokens[t]) + " \u00b7 decoder layer " +
      d.layers[layer] + ", " + (head === H1 - 1 ? "mean of heads" : "head " + d.heads[head]) +
      " \u00b7 max weight " + P.fmt(vmax) + " \u00b7 " + d.prefix_name + " " +
      P.fmt(d.prefix[layer][head][t]) + (hover === null ? "" : "  (click to keep)");
    chips.forEach((c, j) => { c.classList.toggle("sel", j === locked);
      c.classList.toggle("hot", j === hover); });
    root.dataset.token = String(t);
    root.dataset.layer = String(layer);
    root.dataset.head = head === H1 - 1 ? "mean" : String(head);
  }
  draw();
});
"""


def token_patches_view_html(
    image: Any,
    maps: Any,
    tokens: Sequence[str],
    *,
    prefix: Any = None,
    prefix_name: str = "CLS",
    layers: Sequence[int | str] | None = None,
    heads: Sequence[int | str] | None = None,
    layer: int = -1,
    alpha: float = 0.6,
    side: int = 420,
    model_name: str | None = None,
    title: str | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
) -> HtmlView:
    """Interactive image-to-text view: hover or click a written token to overlay its decoder
    step's cross-attention on the image; selectors for the decoder layer and one head or the
    mean of the heads. Each map is coloured from 0 to its own maximum (``viridis``).

    Args:
        image: ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1`` (or uint8): the model's input.
        maps: ``[layer, head, token, rows, cols]`` cross-attention over the patch grid
            (the prefix tokens, CLS, left out), non-negative.
        tokens: the token each step wrote (escaped on the page).
        prefix: ``[layer, head, token]`` the weight on the prefix tokens (default 0).
        prefix_name: what the prefix tokens are called in the readout.
        layers, heads: the model's index of each decoder layer / head (default ``0..n-1``).
        layer: the layer shown at the start (position on the layer axis; default the last).
        alpha: opacity of the map over the grey copy of the image.
        side: the longer side of the drawn image in CSS pixels (160..1200).
        model_name: goes into the title; title: replaces it.
        max_values: the size budget for ``maps`` (with the mean of the heads added).
    """
    from probe.viewers._style import SEQUENTIAL_CMAP

    heat = np.asarray(_to_numpy(maps), dtype=np.float32)
    if heat.ndim != 5 or heat.size == 0:
        raise ProbeError(f"maps must be [layer, head, token, rows, cols] cross-attention, got "
                         f"shape {list(heat.shape)}")
    n_l, n_h, n_t, gh, gw = heat.shape
    check_budget((n_l, n_h + 1, n_t, gh, gw), max_values, "maps (with the mean of the heads)",
                 _HINT)
    check_finite(heat, "maps")
    if heat.min() < 0:
        raise ProbeError("maps has negative values: pass attention weights (in [0, 1])")
    share = np.zeros((n_l, n_h, n_t)) if prefix is None else np.asarray(
        _to_numpy(prefix), dtype=np.float64)
    if share.shape != (n_l, n_h, n_t):
        raise ProbeError(f"prefix must be [layer, head, token] = {[n_l, n_h, n_t]}, got "
                         f"{list(share.shape)}")
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or \
            not -n_l <= layer < n_l:
        raise ProbeError(f"layer must be a position in -{n_l}..{n_l - 1}, got {layer!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ProbeError(f"alpha must be in [0, 1], got {alpha!r}")
    if isinstance(side, bool) or not isinstance(side, int) or not 160 <= side <= 1200:
        raise ProbeError(f"side must be a size in pixels in [160, 1200], got {side!r}")
    url, size = _image_data_url(image)
    full = np.concatenate([heat, heat.mean(axis=1, keepdims=True)], axis=1)
    scale = full.reshape(n_l, n_h + 1, n_t, -1).max(-1)
    unit = full / np.where(scale > 0, scale, 1.0)[..., None, None]
    share = np.concatenate([share, share.mean(axis=1, keepdims=True)], axis=1)
    payload = {
        "title": view_title(model_name, "where each written token looked", title),
        "subtitle": f"{n_t} tokens, {n_l} decoder layers x {n_h} heads, {gh} x {gw} patches "
                    f"({prefix_name} left out); hover a token, click to keep it",
        "image": url, "grey": _grey_data_url(image), "size": list(size), "side": side,
        "alpha": float(alpha), "maps": encode_array(unit, "maps"),
        "scale": scale.tolist(), "prefix": share.tolist(), "prefix_name": str(prefix_name),
        "tokens": clean_tokens(tokens, n_t, "tokens", "maps"),
        "layers": labels(layers, n_l, "layers"),
        "heads": labels(heads, n_h, "heads"), "layer0": int(layer) % n_l,
        "cmap": cmap_hex(SEQUENTIAL_CMAP),
    }
    page = build_page(title=payload["title"], css=CSS + _CSS, js=RUNTIME_JS + _JS, data=payload)
    return HtmlView(page, view="cross", height=side + 220)


def token_patches_html(trace: Any, *, image: Any = None, batch_index: int = 0,
                       layers: Sequence[int] | None = None, heads: Sequence[int] | None = None,
                       **options: Any) -> HtmlView:
    """The image-to-text view of a trace or a generation of a ``VisionEncoderDecoderModel``
    (see :func:`token_patches_view_html`; options go there): the decoder ``layers`` and
    ``heads`` (model indices, negative from the last; default every kept one) of
    ``trace.cross`` over the patch grid, for the tokens each step wrote (a trace's last step,
    whose token it does not hold, left out when there are others)."""
    from probe._index import batch_position, model_position
    from probe.analysis._image_text import image_geometry, layer_positions, written_labels

    cross = getattr(trace, "cross", None)
    grid, n_prefix = image_geometry(trace)
    if cross is None or getattr(cross, "attentions", None) is None or grid is None:
        raise ProbeError(
            "the image-to-text view needs a trace of a VisionEncoderDecoderModel (cross-"
            "attention over a patch grid): probe.trace(model, pixel_values, "
            "decoder_inputs=ids) or probe.generate(model, pixel_values)")
    attn = cross.attentions
    b = batch_position(batch_index, int(attn.shape[1]))
    rows, cols = grid
    n_l, _, n_h, n_t, n_k = attn.shape
    if n_k != n_prefix + rows * cols:
        raise ProbeError(f"cross-attention has {n_k} keys but {n_prefix} prefix tokens and a "
                         f"{rows}x{cols} grid need {n_prefix + rows * cols}")
    generation = hasattr(trace, "num_prompt_tokens")
    shown = n_t if generation or n_t == 1 else n_t - 1
    if generation:  # the steps after this item's EOS only pad it to the batch's longest
        shown = min(n_t, max(1, int(trace.generated_mask[b].sum())))
    kept_l = layer_positions(cross, layers)
    kept_h = list(range(n_h)) if heads is None else [
        model_position(h, cross.head_indices or (), cross.num_heads, name="head",
                       unit="heads per layer") for h in heads]
    att = np.asarray(_to_numpy(attn[kept_l][:, b][:, kept_h, :shown]), dtype=np.float32)
    n_l, n_h = len(kept_l), len(kept_h)
    tokens = written_labels(trace, b) or [f"step {i}" for i in range(n_t)]
    if image is None:
        pixels = trace.source_pixel_values if generation else trace.pixel_values
        if pixels is None:
            raise ProbeError("this trace keeps no pixel input: pass image= to show it")
        img = np.asarray(_to_numpy(pixels[b]), dtype=np.float64).transpose(1, 2, 0)
        lo, hi = img.min(axis=(0, 1), keepdims=True), img.max(axis=(0, 1), keepdims=True)
        image = (img - lo) / np.where(hi > lo, hi - lo, 1.0)
    options.setdefault("layers", [cross.layer_indices[p] for p in kept_l])
    if cross.head_indices is not None:
        options.setdefault("heads", [cross.head_indices[p] for p in kept_h])
    options.setdefault("model_name", trace.model_name)
    options.setdefault("prefix_name", "CLS" if n_prefix == 1 else "CLS+dist")
    return token_patches_view_html(
        image, att[..., n_prefix:].reshape(n_l, n_h, shown, rows, cols), tokens[:shown],
        prefix=att[..., :n_prefix].sum(-1), **options)
