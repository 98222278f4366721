"""Analyses and views that read only some query rows accept a row-selected trace
(``query_rows=``) that kept those rows, with the full trace's result; they refuse, naming the
missing rows, when a needed row was not kept.

References: the same function on the full trace of the same input. timm ViTs compute the kept
rows exactly as the full capture does (bitwise), so those comparisons are exact; the HF ViT and
MiniLM run SDPA for the output and eager attention for the kept rows (1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import probe
from tests import _tiny

SENTENCE = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="module")
def timm_vit():
    model, pixels = _tiny.TIMM["vit"]()
    return model, pixels, probe.trace(model, pixels)


@pytest.mark.parametrize("rows", [0, [0], [5, 0, 9]])
def test_patch_maps_of_the_cls_row(timm_vit, rows):
    model, pixels, full = timm_vit
    tr = probe.trace(model, pixels, query_rows=rows)
    assert_close(probe.patch_maps(tr), probe.patch_maps(full), atol=0, rtol=0)
    assert_close(probe.patch_maps(tr, batch_index=-1), probe.patch_maps(full, batch_index=-1),
                 atol=0, rtol=0)
    if rows == [5, 0, 9]:
        assert_close(probe.patch_maps(tr, query=9), probe.patch_maps(full, query=9), atol=0, rtol=0)


def test_a_missing_row_is_named(timm_vit):
    model, pixels, _ = timm_vit
    tr = probe.trace(model, pixels, query_rows=0)
    with pytest.raises(probe.ProbeError, match=r"keeps only query rows \[0\].*needs rows \[3\]"):
        probe.patch_maps(tr, query=3)
    with pytest.raises(probe.ProbeError, match=r"needs rows \[1, 2, 3, 4, 5, 6, \.\.\.\]"):
        probe.attribute(model, pixels, "attention", trace=tr, query="mean")
    for whole_matrix in (probe.rollout, probe.attention_flow, probe.head_stats):
        with pytest.raises(probe.ProbeError, match="needs every row"):
            whole_matrix(tr)
    with pytest.raises(probe.ProbeError, match="needs every row"):
        probe.plot(tr, "model")


@pytest.mark.parametrize("query", ["cls", "auto", 0])
def test_attention_method_reads_the_kept_cls_row(timm_vit, query):
    model, pixels, full = timm_vit
    tr = probe.trace(model, pixels, query_rows=[7, 0])
    got = probe.attribute(model, pixels, "attention", trace=tr, query=query)
    want = probe.attribute(model, pixels, "attention", trace=full, query=query)
    assert_close(got.scores, want.scores, atol=0, rtol=0)
    for layer, fusion in ((0, "max"), (-1, "min")):
        options = {"layer": layer, "head_fusion": fusion, "query": query}
        assert_close(probe.attribute(model, pixels, "attention", trace=tr, **options).scores,
                     probe.attribute(model, pixels, "attention", trace=full, **options).scores,
                     atol=0, rtol=0)


def _pixels_of(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def test_cls_view_draws_the_same_figure(timm_vit):
    model, pixels, full = timm_vit
    tr = probe.trace(model, pixels, query_rows=0)
    for b in (0, 1):
        got, want = probe.plot(tr, "cls", batch_index=b), probe.plot(full, "cls", batch_index=b)
        assert np.array_equal(_pixels_of(got), _pixels_of(want))


def test_hf_vit_cls_row():
    model, pixels = _tiny.hf_vit()
    full = probe.trace(model, pixels)
    tr = probe.trace(model, pixels, query_rows=0)
    assert_close(probe.patch_maps(tr), probe.patch_maps(full), atol=1e-6, rtol=0)
    assert_close(probe.attribute(model, pixels, "attention", trace=tr).scores,
                 probe.attribute(model, pixels, "attention", trace=full).scores,
                 atol=1e-6, rtol=0)


def test_coref_reads_only_the_word_rows(minilm):
    model, tok = minilm  # probe.load_model("minilm"), loaded once per session (conftest.py)
    full = probe.trace(model, SENTENCE, tokenizer=tok)
    it = [i for i, t in enumerate(full.tokens[0]) if t == "it"]
    tr = probe.trace(model, SENTENCE, tokenizer=tok, query_rows=it)
    assert_close(probe.word_attention(tr, "it"), probe.word_attention(full, "it"),
                 atol=1e-6, rtol=0)
    got, want = probe.coref(tr, "it"), probe.coref(full, "it")
    assert [(x.layer, x.head, x.antecedent) for x in got] == [
        (x.layer, x.head, x.antecedent) for x in want
    ]
    assert_close(torch.tensor([x.weight for x in got]), torch.tensor([x.weight for x in want]),
                 atol=1e-6, rtol=0)
    with pytest.raises(probe.ProbeError, match=r"needs rows \[\d+\]"):
        probe.coref(tr, "street")
    with pytest.raises(probe.ProbeError, match="needs every row"):
        probe.best_antecedents(tr, "it")  # the rollout answer needs every row
