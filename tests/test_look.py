"""The look of the demo figures, measured: every text inside the canvas, no two texts
overlapping, no font below ``MIN_FONT_PT`` at the saved size.

Each demo figure (``python -m probe.recipes.demo``) is rebuilt once from small synthetic
inputs with the same viewer calls and options as the recipes, and measured with matplotlib's
Agg renderer (``Text.get_window_extent``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from probe.viewers import (
    cls_head_grid,
    comparison_panel,
    coref_view,
    curves_view,
    link_view,
    model_view,
)
from probe.viewers._style import MIN_FONT_PT

WORDS = ["The", "animal", "didn", "'", "t", "cross", "the", "street", "because", "it", "was",
         "too", "tired", "."]
TOKENS = ["[CLS]", *[w.lower() for w in WORDS], "[SEP]"]
SENTENCE = "\u201cThe animal didn't cross the street because it was too tired.\u201d"
VISION = ["attention", "rollout", "rollout-max", "rollout-min", "relevance", "ig", "saliency",
          "inputxgrad", "gradcam", "random"]
TEXT = ["attention", "rollout", "relevance", "ig", "saliency", "inputxgrad", "random"]


def _attn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    a = rng.random(shape) ** 4
    return a / a.sum(-1, keepdims=True)


def _figures() -> dict:
    rng = np.random.default_rng(0)
    n = len(TOKENS)
    img = np.zeros((32, 32, 3))
    img[...] = (0.3, 0.5, 0.2)
    img[10:22, 6:20] = (0.9, 0.2, 0.2)
    weights = rng.random(len(WORDS)) * 0.1
    weights[1] = 0.68
    agreement = np.corrcoef(rng.random((len(VISION), 30)))
    text_agreement = np.corrcoef(rng.random((len(TEXT), 30)))
    fractions = np.linspace(0, 1, 17)
    return {
        "coref": coref_view(
            WORDS, 9, weights, candidates=[1, 5, 7],
            top=[(3, 1, "animal", 0.677), (5, 11, "animal", 0.673), (5, 5, "street", 0.222)],
            model_name="minilm", layer=3, head=1,
        ),
        "model_view": model_view(_attn(rng, 3, 4, n, n), TOKENS, model_name="minilm",
                                 sentence=SENTENCE),
        "links": link_view(_attn(rng, 12, n, n), TOKENS, heads=[1], layer=3,
                           model_name="minilm", highlight=10, sentence=SENTENCE),
        "similarity_compare": comparison_panel(
            ["a", "man", "is", "playing", "a", "guitar", "on", "the", "stage", "."],
            {m: rng.random(10) - (0.3 if m == "inputxgrad" else 0) for m in TEXT},
            agreement=text_agreement, methods=TEXT, model_name="minilm",
            faithfulness={m: {"comprehensiveness": rng.random(), "sufficiency": rng.random()}
                          for m in TEXT},
            title="minilm · similarity to 'Someone performs music for an audience.' · "
                  "attention vs gradients",
        ),
        "vit_compare": comparison_panel(
            img, {m: rng.random((8, 8)) - (0.5 if m in ("ig", "inputxgrad") else 0)
                  for m in VISION},
            agreement=agreement, methods=VISION, model_name="vit-shapes",
            faithfulness={m: {"deletion AUC": rng.random(), "insertion AUC": rng.random()}
                          for m in VISION},
            image_title="input · true triangle\npredicted triangle",
            title="vit-shapes · true triangle, predicted triangle · every method",
        ),
        "cls_heads": cls_head_grid(
            img, _attn(rng, 4, 64).reshape(4, 8, 8), model_name="vit-shapes", layer=3,
            image_title="input · true triangle\npredicted triangle",
            title="vit-shapes · layer 3 · CLS attention · true triangle, predicted triangle",
        ),
        "deletion": curves_view(
            {m: (fractions, np.sort(rng.random(17))[::-1]) for m in VISION}, kind="deletion",
            title="vit-shapes · deletion curves · mean of 16 images, 16 steps",
        ),
    }


@pytest.fixture(scope="module")
def measured() -> dict:
    """Per figure: canvas size (px) and (text, extent, font size) of every drawn text."""
    from _layout import drawn_text_artists

    out = {}
    for name, fig in _figures().items():
        fig.set_dpi(100)
        texts = [(t.get_text(), box, float(t.get_fontsize()))
                 for t, box in drawn_text_artists(fig)]
        out[name] = (fig.bbox.width, fig.bbox.height, texts)
    return out


NAMES = ["coref", "model_view", "links", "similarity_compare", "vit_compare", "cls_heads",
         "deletion"]


@pytest.mark.parametrize("name", NAMES)
def test_text_inside_canvas(measured: dict, name: str) -> None:
    width, height, texts = measured[name]
    outside = [(t, [round(v) for v in b.extents]) for t, b, _ in texts
               if b.x0 < -1 or b.y0 < -1 or b.x1 > width + 1 or b.y1 > height + 1]
    assert not outside, f"{name}: text outside the {width:.0f}x{height:.0f} canvas: {outside}"


@pytest.mark.parametrize("name", NAMES)
def test_no_overlapping_text(measured: dict, name: str) -> None:
    _, _, texts = measured[name]
    clashes = []
    for (ta, a, _), (tb, b, _) in itertools.combinations(texts, 2):
        overlap_w = min(a.x1, b.x1) - max(a.x0, b.x0)
        overlap_h = min(a.y1, b.y1) - max(a.y0, b.y0)
        if overlap_w > 1.0 and overlap_h > 1.0:
            clashes.append((ta, tb))
    assert not clashes, f"{name}: overlapping texts {clashes[:5]}"


@pytest.mark.parametrize("name", NAMES)
def test_minimum_font_size(measured: dict, name: str) -> None:
    _, _, texts = measured[name]
    small = sorted({(t, s) for t, _, s in texts if s < MIN_FONT_PT - 1e-6})
    assert not small, f"{name}: fonts below {MIN_FONT_PT} pt at the saved size: {small[:5]}"


def test_demo_recipes_build_these_figures() -> None:
    """The look test covers every figure the demo writes (names kept in step by hand)."""
    import inspect

    from probe.recipes import coref_demo, demo, similarity, vit_saliency

    source = "".join(inspect.getsource(m) for m in (coref_demo, demo, similarity, vit_saliency))
    for viewer in ("coref", "model", "links", "comparison_panel", "cls_head_grid",
                   "curves_view"):
        assert viewer in source
