"""Interactive coreference view: choose a word, see the words it attends to, its candidate
antecedents ranked with their weights, and the heads ranked as ``probe.coref`` ranks them
(click a head to show its weights)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from probe._errors import ProbeError
from probe.analysis._unknown import check_partly, partly_listed, unknown_phrase
from probe.viewers._direction import Direction, is_rtl
from probe.viewers.html._page import (
    HtmlView,
    _to_numpy,
    build_page,
    clean_tokens,
    cmap_hex,
    encode_array,
    labels,
)
from probe.viewers.html._runtime import CSS, RUNTIME_JS

__all__ = ["coref_view_html"]

_COREF_JS = r"""
P.start(async (root, d) => {
  const Wt = await P.tensor("weights", d.weights);
  const [C, L, H, N] = Wt.shape;
  P.header(root, d);
  const reds = P.lut(d.cmap);
  const bar = P.el("div", "p-bar"); root.appendChild(bar);
  let c = 0, head = null;  // head: null = mean of all heads, else [layerPos, headPos]
  const chooser = P.select(d.choices.map(x => "\u201c" + d.words[x.index] + "\u201d (" + x.index +
    ")"),
                           v => choose(v), 0);
  bar.appendChild(P.labelled("Word", chooser));
  bar.appendChild(P.el("span", "p-note",
    "click an underlined word to follow it; click a head to see its weights"));
  const unk = P.el("div", "p-note p-unknown"); root.appendChild(unk);
  unk.style.color = "#a50f15"; unk.style.margin = "0 0 6px";
  const flow = P.el("div", "p-flow"); root.appendChild(flow);
  if (d.rtl) flow.dir = "rtl";  // right to left: word 0 at the right
  const byIndex = new Map(d.choices.map((x, i) => [x.index, i]));
  const spans = d.words.map((w, i) => {
    const s = P.el("span", "p-tok", w);
    if (byIndex.has(i)) { s.classList.add("cand"); s.addEventListener("click", () => {
      chooser.value = String(byIndex.get(i)); choose(byIndex.get(i)); }); }
    s.addEventListener("mousemove", ev => P.showTip(ev, [w + " (" + i + ")", "weight " +
      P.fmt(weights()[i])]));
    s.addEventListener("mouseleave", P.hideTip);
    flow.appendChild(s);
    return s;
  });
  const panel = P.el("div", "p-panel"); root.appendChild(panel);
  const antes = P.el("div"), heads = P.el("div");
  panel.appendChild(antes); panel.appendChild(heads);
  function weights() {
    const out = new Float64Array(N);
    if (head === null) {
      for (let l = 0; l < L; l++) for (let h = 0; h < H; h++)
        for (let k = 0; k < N; k++) out[k] += Wt.get(((c * L + l) * H + h) * N + k) / (L * H);
    } else {
      for (let k = 0; k < N; k++) out[k] = Wt.get(((c * L + head[0]) * H + head[1]) * N + k);
    }
    return out;
  }
  function draw() {
    const ch = d.choices[c], w = weights();
    unk.textContent = ch.note;  // words (partly) made of the unknown token, as the figure says
    unk.hidden = !ch.note;
    let vmax = 0;
    for (let k = 0; k < N; k++) if (k !== ch.index) vmax = Math.max(vmax, w[k]);
    spans.forEach((s, k) => {
      s.classList.toggle("chosen", k === ch.index);
      const col = k === ch.index ? [219, 233, 246] : P.rgb(reds, vmax > 0 ? w[k] / vmax : 0);
      s.style.background = P.css(col); s.style.color = P.ink(col);
    });
    const cands = ch.candidates.slice().sort((a, b) => w[b] - w[a]);
    antes.textContent = "";
    antes.appendChild(P.el("div", "p-title", "antecedents of \u201c" + d.words[ch.index] +
      "\u201d \u00b7 " +
      (head === null ? "mean of all heads" : "layer " + d.layers[head[0]] + ", head " +
        d.heads[head[1]])));
    const ol = P.el("ol", "p-antes");
    cands.slice(0, d.topK).forEach(k => ol.appendChild(P.el("li", null, d.words[k] + " (" + k +
      ")  " + P.fmt(w[k]))));
    antes.appendChild(ol);
    heads.textContent = "";
    heads.appendChild(P.el("div", "p-title", "heads ranked (probe.coref)"));
    const t = P.el("table", "p-table"), hr = P.el("tr");
    ["rank", "layer", "head", "antecedent", "weight"].forEach(x => hr.appendChild(P.el("th", null,
      x)));
    t.appendChild(hr);
    const all = P.el("tr", "click" + (head === null ? " sel" : ""));
    all.appendChild(P.el("td", null, "\u2013"));
    const td = P.el("td", null, "mean of all heads"); td.colSpan = 4; all.appendChild(td);
    all.addEventListener("click", () => { head = null; draw(); });
    t.appendChild(all);
    ch.top.forEach((r, i) => {
      const tr = P.el("tr", "click" + (head && head[0] === r[0] && head[1] === r[1] ? " sel" : ""));
      [String(i + 1), d.layers[r[0]], d.heads[r[1]], d.words[r[2]],
        P.fmt(r[3])].forEach(x => tr.appendChild(P.el("td", null, x)));
      tr.addEventListener("click", () => { head = [r[0], r[1]]; draw(); });
      t.appendChild(tr);
    });
    heads.appendChild(t);
    root.dataset.word = String(ch.index);
    root.dataset.head = head === null ? "mean" : head.join(",");
    root.dataset.top = cands.slice(0, d.topK).join(",");
  }
  function choose(i) { c = i; const top = d.choices[c].top; head = top.length ? [top[0][0],
    top[0][1]] : null; draw(); }
  choose(0);
});
"""


def coref_view_html(
    words: Sequence[str],
    weights: Mapping[int, Any],
    *,
    top: Mapping[int, Sequence[tuple[int, int, int, float]]] | None = None,
    candidates: Mapping[int, Sequence[int]] | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    top_k: int = 5,
    table_rows: int = 12,
    model_name: str | None = None,
    title: str | None = None,
    direction: Direction = "auto",
    unknown: Sequence[int] | None = None,
    unknown_token: str = "[UNK]",
    partly_unknown: Mapping[int, Sequence[str]] | None = None,
) -> HtmlView:
    """Interactive coreference view.

    Choose a word (selector, or click an underlined word): the sentence is shaded by the
    attention that word sends to every word (white-based ``Reds``, for the top-ranked head
    first, or the mean of all heads), its candidate antecedents are ranked with their
    weights, and a table ranks the heads as ``probe.coref`` does; click a row to show that
    head's weights.

    Args:
        words: ``[num_words]`` words (word-level data, e.g. ``trace.words[0]``).
        weights: ``{word_index: [layer, head, num_words]}`` word-level attention of each
            word that can be chosen (``probe.word_attention``).
        top: ``{word_index: [(layer, head, antecedent_index, weight), ...]}`` the heads
            ranked strongest first (from ``probe.coref``), ``layer``/``head`` in the model's
            numbering (see ``layers``/``heads``); default: none.
        candidates: ``{word_index: [candidate word indices]}`` to rank as antecedents
            (default: every other word).
        layers, heads: the model's index of each layer / head of ``weights``.
        top_k: antecedents listed; table_rows: heads tabulated (default 12).
        model_name: goes into the title; title: replaces it.
        direction: ``"auto"`` (default: right to left when the words' first strong letter
            is), ``"ltr"`` or ``"rtl"``: right to left, the sentence is ``dir="rtl"``.
        unknown: indices of the words that reach the model as its unknown token
            (``probe.analysis._unknown.unknown_words(trace)``): for the chosen word, those
            among it and its candidates are named in a line above the sentence (``它, 马路
            reach the model as [UNK]: their weights say nothing about these words``);
            ``unknown_token``: the tokenizer's spelling of it.
        partly_unknown: word index -> the parts of it that reach the model as the unknown
            token, for words only partly unknown
            (``probe.analysis._unknown.partly_unknown_words(trace)``): named in the same note
            with their parts (``part of 小猫 (猫) reaches the model as [UNK]: ...``).

    Returns:
        An :class:`HtmlView`.
    """
    from probe.viewers._style import TEXT_SEQUENTIAL_CMAP

    if not isinstance(weights, Mapping) or not weights:
        raise ProbeError("weights must be a non-empty {word_index: [layer, head, num_words]} dict")
    n = len(words) if isinstance(words, Sequence) and not isinstance(words, str) else -1
    arrays = []
    shape = None
    for idx, value in weights.items():
        a = np.asarray(_to_numpy(value), dtype=np.float64)
        if a.ndim == 1:
            a = a[None, None]
        if a.ndim != 3 or a.shape[2] != n:
            raise ProbeError(
                f"weights[{idx!r}] must be [layer, head, num_words] with {n} words, got shape "
                f"{list(a.shape)}"
            )
        if shape is not None and a.shape != shape:
            raise ProbeError(
                "every weights entry must have the same [layer, head, num_words] shape")
        if (a < 0).any():
            raise ProbeError(f"weights[{idx!r}] has negative values: pass attention weights")
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) or not 0 <= idx < n:
            raise ProbeError(f"weights key {idx!r} is not a word index in 0..{n - 1}")
        shape = a.shape
        arrays.append(a)
    toks = clean_tokens(words, n, "words", "weights")
    layer_labels = labels(layers, shape[0], "layers")
    head_labels = labels(heads, shape[1], "heads")
    for name, value in (("top_k", top_k), ("table_rows", table_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProbeError(f"{name} must be a positive integer, got {value!r}")
    if unknown is None:
        unknown = []
    if isinstance(unknown, (str, bytes)) or not isinstance(unknown, Sequence) or not all(
            isinstance(u, (int, np.integer)) and not isinstance(u, bool) and 0 <= u < n
            for u in unknown):
        raise ProbeError(f"unknown must be a list of word indices in 0..{n - 1}, got "
                         f"{unknown!r}")
    unknown_set = {int(u) for u in unknown}
    partly = check_partly(partly_unknown, n)
    choices = []
    for idx in weights:
        rows = []
        for row in list((top or {}).get(idx, ()))[:table_rows]:
            layer, head, ante, w = row
            try:
                pos = (layer_labels.index(str(layer)), head_labels.index(str(head)))
            except ValueError:
                raise ProbeError(
                    f"top row {row!r}: layer {layer} / head {head} is not among layers="
                    f"{layer_labels} / heads={head_labels}"
                ) from None
            if not 0 <= int(ante) < n:
                raise ProbeError(f"top row {row!r}: antecedent {ante} is not a word index")
            rows.append([pos[0], pos[1], int(ante), float(w)])
        cands = (candidates or {}).get(idx)
        cand_list = [int(c) for c in cands] if cands is not None else [
            i for i in range(n) if i != idx
        ]
        asked = list(dict.fromkeys([int(idx), *sorted(cand_list)]))
        named = [i for i in asked if i in unknown_set]
        part = [i for i in asked if i in partly]
        note = unknown_phrase([toks[i] for i in named], str(unknown_token),
                              partly_listed([toks[i] for i in part], [partly[i] for i in part]))
        choices.append({"index": int(idx), "top": rows, "candidates": cand_list,
                        "unknown": named, "partly": part, "note": note})
    payload = {
        "title": (str(title) if title is not None else
                  (f"{model_name} \u00b7 coreference" if model_name else "coreference")),
        "subtitle": f"{n} words, {shape[0]} layers x {shape[1]} heads",
        "words": toks, "choices": choices, "layers": layer_labels, "heads": head_labels,
        "weights": encode_array(np.stack(arrays), "weights"), "topK": top_k,
        "cmap": cmap_hex(TEXT_SEQUENTIAL_CMAP), "rtl": is_rtl(direction, toks),
        "unk": str(unknown_token),
    }
    page = build_page(title=payload["title"], css=CSS, js=RUNTIME_JS + _COREF_JS, data=payload)
    return HtmlView(page, view="coref", height=520)
