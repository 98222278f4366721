"""The shared inline code of every interactive view: CSS and the JavaScript runtime.

Written by us, no third-party code. The runtime (global ``P``) decodes the embedded arrays
(base64 -> uint8, inflated with the browser's ``DecompressionStream`` when deflated), builds
DOM nodes with ``textContent`` only, maps values through colour lookup tables, and starts a
view: ``P.start(fn)`` parses the JSON data block, runs ``fn(root, data)`` and marks
``#probe-root`` with ``data-ready="1"`` (or ``"error"`` with a message on the page).

For tests and tools, ``window.probeValues(name, start, count)`` returns decoded values of an
embedded array and ``window.probeReadyMs`` the time from navigation to interactive.
"""

from __future__ import annotations

__all__ = ["CSS", "RUNTIME_JS", "SYSTEM_FONTS"]

#: The page's font stack (system fonts only; fonts a page embeds are appended to it).
SYSTEM_FONTS = 'system-ui,-apple-system,"Segoe UI",Roboto,sans-serif'

CSS = """
:root{color-scheme:light}
body{margin:0;padding:8px;font:13px/1.35 """ + SYSTEM_FONTS + """;
color:#222;background:#fff}
.probe-view{max-width:100%}
.p-head{margin:0 0 6px}
.p-title{font-weight:600;font-size:15px}
.p-sub{color:#555;font-size:12px}
.p-bar{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center;margin:6px 0 8px}
.p-ctl{display:inline-flex;gap:5px;align-items:center}
.p-swatches{display:flex;flex-wrap:wrap;gap:3px}
.p-swatch{border:2px solid transparent;border-radius:3px;padding:1px 6px;font:inherit;
font-size:11px;cursor:pointer;min-width:24px}
.p-swatch.off{opacity:.25}
.p-links{display:flex;align-items:flex-start;gap:0;position:relative}
.p-col{display:flex;flex-direction:column}
.p-left{text-align:right}
.p-tok{height:18px;line-height:18px;padding:0 4px;white-space:pre;cursor:pointer;
border-radius:2px;max-width:14em;overflow:hidden;text-overflow:ellipsis;font-size:12px}
.p-tok.on{outline:2px solid #1f77b4}
.p-tok.lock{outline:2px solid #d62728}
.p-tok:focus-visible{box-shadow:0 0 0 2px #1f77b4 inset;outline-offset:0}
.p-grid{display:grid;gap:3px;align-items:center}
.p-grid canvas{cursor:pointer;border:1px solid #ccc;display:block}
.p-grid canvas.sel{border-color:#d62728;outline:2px solid #d62728}
.p-grid canvas:focus-visible{outline:2px solid #1f77b4;outline-offset:1px}
.p-gridbox{padding:3px}
.p-lab{font-size:11px;color:#555;white-space:nowrap}
.p-mv{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.p-detail{position:relative}
.p-stack{position:relative}
.p-stack canvas{position:absolute;left:0;top:0}
.p-ylab,.p-xlab{position:absolute;font-size:10px;white-space:pre;color:#333;overflow:hidden;
  text-overflow:ellipsis}
.p-ylab{text-align:right;width:90px}
.p-xlab{writing-mode:vertical-rl;text-orientation:sideways;transform:rotate(180deg);
  height:90px;text-align:left}
.p-readout{min-height:2.8em;font-size:12px;color:#333;max-width:560px}
.p-tip{position:fixed;z-index:10;background:#fff;border:1px solid #999;border-radius:3px;
padding:3px 6px;font-size:12px;pointer-events:none;display:none;box-shadow:0 1px 4px #0003;
white-space:pre}
.p-rows{display:flex;flex-direction:column;gap:6px}
.p-row{display:flex;gap:8px;align-items:flex-start}
.p-rowlab{flex:0 0 9em;font-weight:600;font-size:12px;padding-top:2px;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}
.p-flow{display:flex;flex-wrap:wrap;gap:2px}
.p-flow .p-tok{height:auto;border:1px solid transparent}
.p-flow .p-tok.hot{border-color:#000}
.p-flow .p-tok.chosen{outline:2px solid #1f77b4}
.p-flow .p-tok.cand{text-decoration:underline dotted}
table.p-table{border-collapse:collapse;font-size:12px}
table.p-table td,table.p-table th{border:1px solid #ccc;padding:2px 6px;text-align:center}
table.p-table th{background:#eee}
table.p-table tr.sel td{background:#fde2e2}
table.p-table tr.click{cursor:pointer}
.p-tabs{display:flex;flex-wrap:wrap;gap:2px;margin-bottom:6px}
.p-tab{border:1px solid #bbb;background:#f4f4f4;padding:3px 9px;cursor:pointer;font:inherit}
.p-tab.sel{background:#1f77b4;color:#fff;border-color:#1f77b4}
.p-sec{margin:14px 0 4px;font-weight:600}
.p-panel{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.p-scroll{max-width:100%;overflow-x:auto}
.p-fit{max-width:100%;height:auto!important}
.p-ctl{max-width:100%}
.p-ctl>.p-lab{white-space:normal}
.p-ctl select{min-width:0;max-width:100%}
.p-thumbs{display:flex;flex-wrap:wrap;gap:6px}
.p-thumbs figure{margin:0;text-align:center;font-size:11px}
.p-error{color:#b00;font-weight:600}
.p-note{color:#555;font-size:12px}
.p-bar canvas{border:1px solid #ccc}
"""

RUNTIME_JS = r"""
"use strict";
const P = (() => {
  const store = {};
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function bytes64(s) {
    const bin = atob(s), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  async function inflate(bytes) {
    if (typeof DecompressionStream === "undefined")
      throw new Error("this browser cannot inflate the embedded data (no DecompressionStream)");
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  async function tensor(name, t) {
    let q = bytes64(t.b64);
    if (t.z) q = await inflate(q);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (q.length !== n) throw new Error("embedded array " + name + " is damaged");
    const T = {q: q, shape: t.shape, lo: t.lo, step: t.step,
               get(i) { return this.lo + this.q[i] * this.step; }};
    store[name] = T;
    return T;
  }
  function lut(hex) {
    const a = new Uint8Array(768);
    for (let i = 0; i < 768; i++) a[i] = parseInt(hex.substr(2 * i, 2), 16);
    return a;
  }
  function rgb(l, v) {
    const i = 3 * Math.max(0, Math.min(255, Math.round(v * 255)));
    return [l[i], l[i + 1], l[i + 2]];
  }
  function css(c, a) {
    return a === undefined ? "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"
                           : "rgba(" + c[0] + "," + c[1] + "," + c[2] + "," + a + ")";
  }
  function ink(c) { return (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) > 145 ? "#000" : "#fff"; }
  function hex2rgb(h) { return [1, 3, 5].map(i => parseInt(h.substr(i, 2), 16)); }
  function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3); }
  let tip = null;
  function showTip(ev, lines) {
    if (!tip) { tip = el("div", "p-tip"); document.body.appendChild(tip); }
    tip.textContent = lines.join("\n");
    tip.style.display = "block";
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 220) + "px";
    tip.style.top = (ev.clientY + 14) + "px";
  }
  function hideTip() { if (tip) tip.style.display = "none"; }
  function header(root, d) {
    const h = el("div", "p-head");
    h.appendChild(el("div", "p-title", d.title));
    if (d.subtitle) h.appendChild(el("div", "p-sub", d.subtitle));
    root.appendChild(h);
    return h;
  }
  function select(labels, onchange, value) {
    const s = el("select");
    labels.forEach((lab, i) => { const o = el("option", null, lab); o.value = String(i);
      s.appendChild(o); });
    s.value = String(value || 0);
    s.addEventListener("change", () => onchange(Number(s.value)));
    return s;
  }
  function labelled(text, control) {
    const w = el("label", "p-ctl");
    w.appendChild(el("span", null, text));
    w.appendChild(control);
    return w;
  }
  function canvas(w, h, cls) {
    const c = el("canvas", cls);
    const r = window.devicePixelRatio || 1;
    c.width = Math.round(w * r); c.height = Math.round(h * r);
    c.style.width = w + "px"; c.style.height = h + "px";
    const ctx = c.getContext("2d");
    ctx.setTransform(r, 0, 0, r, 0, 0);
    return c;
  }
  // colour of each of the 256 quantised levels of T under value -> [0, 1] mapping norm
  function levels(T, l, norm, alpha) {
    const tab = new Uint8ClampedArray(1024);
    for (let q = 0; q < 256; q++) {
      const c = rgb(l, norm(T.lo + q * T.step));
      tab.set([c[0], c[1], c[2], alpha === undefined ? 255 : alpha], 4 * q);
    }
    return tab;
  }
  // paint rows x cols values of T starting at offset into a scratch canvas; return it
  const scratch = document.createElement("canvas");
  function paint(T, offset, rows, cols, tab) {
    scratch.width = cols; scratch.height = rows;
    const ctx = scratch.getContext("2d");
    const img = ctx.createImageData(cols, rows), px = img.data, q = T.q;
    for (let i = 0, n = rows * cols; i < n; i++) {
      const t = 4 * q[offset + i];
      px[4 * i] = tab[t]; px[4 * i + 1] = tab[t + 1]; px[4 * i + 2] = tab[t + 2]; px[4 * i +
        3] = tab[t + 3];
    }
    ctx.putImageData(img, 0, 0);
    return scratch;
  }
  function sliceMax(T, offset, n) {
    let m = 0;
    for (let i = 0; i < n; i++) if (T.q[offset + i] > m) m = T.q[offset + i];
    return T.lo + m * T.step;
  }
  function sliceAbsMax(T, offset, n) {
    let m = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(T.lo + T.q[offset + i] * T.step));
    return m;
  }
  function colorbar(l, w, h, lo, hi, label) {
    const wrap = el("span", "p-ctl");
    wrap.appendChild(el("span", "p-lab", fmt(lo)));
    const c = canvas(w, h);
    const ctx = c.getContext("2d");
    for (let x = 0; x < w; x++) { ctx.fillStyle = css(rgb(l, x / (w - 1))); ctx.fillRect(x, 0, 1,
      h); }
    wrap.appendChild(c);
    wrap.appendChild(el("span", "p-lab", fmt(hi) + (label ? "  " + label : "")));
    return wrap;
  }
  async function start(view) {
    const root = document.getElementById("probe-root");
    try {
      const d = JSON.parse(document.getElementById("probe-data").textContent);
      root.textContent = "";
      await view(root, d);
      root.dataset.ready = "1";
    } catch (e) {
      root.textContent = "";
      root.appendChild(el("div", "p-error", "probe view failed: " + (e && e.message)));
      root.dataset.ready = "error";
    }
    // time to interactive: after the first paint that follows the view's set-up
    requestAnimationFrame(() => setTimeout(() => { window.probeReadyMs = performance.now(); }, 0));
  }
  window.probeValues = (name, start, count) => {
    const T = store[name], out = [];
    for (let i = start; i < start + count; i++) out.push(T.get(i));
    return out;
  };
  return {el, tensor, lut, rgb, css, ink, hex2rgb, fmt, showTip, hideTip, header, select,
          labelled, canvas, levels, paint, sliceMax, sliceAbsMax, colorbar, start};
})();
"""
