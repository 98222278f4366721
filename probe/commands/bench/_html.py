"""``probe bench --part html``: size and time-to-interactive of the interactive HTML views
in headless Chromium (selenium), on synthetic attention of BERT-base-like shapes, and of the
detr, curves, gates and window views on synthetic data of real models' shapes
(``_html_views.py``).

Goals (the issue's): model view at 6 layers x 12 heads x 128 tokens under 1.5 MB and
interactive in under 1 s; 12 x 12 x 512 usable (under 3 s) or refused with a clear message.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

__all__ = ["bench_html", "GOAL_MODEL_128_MB", "GOAL_MODEL_128_S", "GOAL_LARGE_S"]

GOAL_MODEL_128_MB = 1.5
GOAL_MODEL_128_S = 1.0
GOAL_LARGE_S = 3.0


def _attention(layers: int, heads: int, n: int, seed: int = 0) -> np.ndarray:
    """Peaked softmax attention like a trained model's (a few strong keys per row)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((layers, heads, n, n), dtype=np.float32) * 2.5
    x -= x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def _browser() -> Any:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    binary = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def _interactive_s(drv: Any, path: str, timeout: float = 30.0) -> float | None:
    """Seconds from navigation start until the view reported ready (``None``: failed)."""
    drv.get("file://" + path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = drv.execute_script("var r = document.getElementById('probe-root');"
                                   "return [r && r.dataset.ready, window.probeReadyMs];")
        if state[0] == "1" and state[1] is not None:
            return float(state[1]) / 1000.0
        if state[0] == "error":
            return None
        time.sleep(0.02)
    return None


def bench_html(repeats: int, quick: bool) -> dict[str, Any]:
    """Measure every case; returns ``{"cases": [...], "browser": bool, "goals": {...}}``.

    Each case has ``view``, ``shape``, ``size_mb``, ``build_s`` (Python, median) and
    ``interactive_s`` (median over ``repeats`` page loads; ``None`` without a browser), or
    ``refused`` with the message when the data is over the budget.
    """
    from probe._errors import ProbeError
    from probe.viewers.html import head_view_html, image_view_html, model_view_html

    sizes = [128] if quick else [128, 512]
    cases: list[tuple[str, Any]] = []
    for n in sizes:
        attn = _attention(6, 12, n)
        tokens = [f"tok{i}" for i in range(n)]
        cases.append((f"model 6x12x{n}", lambda a=attn, t=tokens: model_view_html(a, t)))
        cases.append((f"heads 6x12x{n}", lambda a=attn, t=tokens: head_view_html(a, t)))
    if not quick:
        cases.append(("model 12x12x512",
                      lambda: model_view_html(_attention(12, 12, 512),
                                              [f"t{i}" for i in range(512)])))
    grid = 14
    patch = _attention(12, 12, grid * grid) if not quick else _attention(4, 12, grid * grid)
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    image = np.stack([xx, yy, 0.5 + 0 * xx], -1)
    rng = np.random.default_rng(1)
    maps = {m: rng.random((grid, grid)) for m in ("attention", "rollout", "relevance", "ig",
                                                  "saliency", "gradcam")}
    cases.append((f"image compare ({patch.shape[0]}x12 heads, {grid}x{grid} patches)",
                  lambda: image_view_html(image, maps, agreement=np.eye(6),
                                          cls_maps=patch[:, :, 0].reshape(-1, 12, grid, grid),
                                          patch_attn=patch)))
    from probe.commands.bench._html_views import view_cases

    cases += view_cases(quick)  # detr, curves, gates, window
    import torch  # noqa: F401  (the window view imports it: no case's clock pays for that)

    drv = _browser()
    out: list[dict[str, Any]] = []
    folder = tempfile.mkdtemp(prefix="probe-bench-html-")
    try:
        for name, build in cases:
            row: dict[str, Any] = {"view": name}
            try:
                times = []
                for _ in range(max(1, min(repeats, 3))):
                    t0 = time.perf_counter()
                    page = build()
                    times.append(time.perf_counter() - t0)
            except ProbeError as exc:
                row["refused"] = str(exc)
                out.append(row)
                continue
            row["size_mb"] = round(page.size_bytes / 1e6, 3)
            row["build_s"] = round(float(np.median(times)), 3)
            path = os.path.join(folder, "view.html")
            page.save(path)
            if drv is not None:
                loads = [_interactive_s(drv, path) for _ in range(max(1, repeats))]
                ok = [t for t in loads if t is not None]
                row["interactive_s"] = round(float(np.median(ok)), 3) if ok else None
            else:
                row["interactive_s"] = None
            out.append(row)
    finally:
        if drv is not None:
            drv.quit()
        shutil.rmtree(folder, ignore_errors=True)
    first = out[0]
    goals = {
        "model_128_size_ok": first.get("size_mb", 1e9) < GOAL_MODEL_128_MB,
        "model_128_interactive_ok": (None if first.get("interactive_s") is None
                                     else first["interactive_s"] < GOAL_MODEL_128_S),
    }
    large = next((r for r in out if r["view"] == "model 12x12x512"), None)
    if large is not None:
        goals["large_usable_or_refused"] = bool(
            "refused" in large or (large.get("interactive_s") or 1e9) < GOAL_LARGE_S
        )
    return {"cases": out, "browser": drv is not None, "goals": goals}


def to_markdown(result: dict[str, Any]) -> str:
    """The html part as a markdown table."""
    lines = ["| view | size (MB) | build (s) | interactive (s) |", "|---|---|---|---|"]
    for r in result["cases"]:
        if "refused" in r:
            lines.append(f"| {r['view']} | refused: {r['refused']} | | |")
            continue
        inter = "n/a" if r["interactive_s"] is None else f"{r['interactive_s']:.3f}"
        lines.append(f"| {r['view']} | {r['size_mb']:.3f} | {r['build_s']:.3f} | {inter} |")
    lines.append("goals: " + ", ".join(f"{k}={v}" for k, v in result["goals"].items()))
    return "\n".join(lines)
