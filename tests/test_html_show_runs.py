"""``probe.show`` of the views that run the model beyond one trace: ``"detr"``, ``"curves"`` and
``"gates"``. Each page from Python embeds the same data as ``probe render VIEW --format html``
on the same input (both are built by ``probe.commands._pages``), leaves the model as it was,
refuses bad input in one line naming the fix, and loads in a real Chromium with a clean
console."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import probe

from _browser import console_errors, load, resources, start_browser
from probe import ProbeError
from probe.viewers.html import decode_array
from tests._tiny import assert_unchanged, snapshot


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _cli_page(view: str, **args):
    """The render session of ``args`` and the page ``probe render VIEW --format html`` writes."""
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._html import HTML_VIEWS
    from probe.commands.render._session import _session

    s = _session(RenderArgs(view=view, formats=("html",), quiet=True, **args))
    [(_, page)] = HTML_VIEWS[view](s)
    return s, page


def _same_as_cli(view: str, session, page, **kwargs) -> dict:
    """``probe.show`` of the session's model and image: the CLI page's data exactly (all of
    it: arrays, labels, title, image); returns it."""
    kwargs.setdefault("image", session.display)
    shown = probe.show(session.model, view, session.pixel_values, **kwargs)
    assert shown.view == view
    data = _data_block(shown.html)
    assert data == _data_block(page.html)
    return data


def _unfrozen_in_train_mode(model: torch.nn.Module) -> dict:
    """Put ``model`` in a state a view must not change (train mode, one parameter frozen) and
    return its snapshot."""
    model.train()
    next(model.parameters()).requires_grad_(False)
    return snapshot(model)


def _restore(model: torch.nn.Module) -> None:
    model.eval()
    next(model.parameters()).requires_grad_(True)


@pytest.fixture(scope="module")
def browser():
    drv = start_browser()
    yield drv
    drv.quit()


def _loads_clean(browser, view, tmp_path, name: str) -> None:
    path = view.save(tmp_path / f"{name}.html")
    assert load(browser, path) == "1"
    assert console_errors(browser) == []
    assert resources(browser) == 0


# ----------------------------------------------------------------------------- detr
@pytest.fixture(scope="module")
def detr_cli():
    return _cli_page("detr", model="detr-shapes", seed=2)


def test_detr_from_python_embeds_what_the_cli_page_embeds(detr_cli):
    s, page = detr_cli
    _same_as_cli("detr", s, page)  # maps, boxes, classes, kept, ...
    # from a trace and its predictions: the same page again
    from probe.commands._pages import detections

    tr = probe.trace(s.model, s.pixel_values)
    found = detections(probe.adapter_for(s.model), tr)
    again = probe.show(tr, "detr", image=s.display, detections=found)
    assert _data_block(again.html) == _data_block(page.html)


def test_detr_queries_layer_and_threshold_are_the_cli_options(detr_cli):
    s, _ = detr_cli
    _, page = _cli_page("detr", model="detr-shapes", seed=2, queries=(3, 1), layer=0)
    data = _same_as_cli("detr", s, page, queries=[3, 1], layer=0)
    assert data["kept"] == [3, 1] and data["layer0"] == 0
    scores = data["scores"]
    low = sorted(scores)[len(scores) // 2]  # a threshold half the queries reach
    kept = _data_block(probe.show(s.model, "detr", s.pixel_values, threshold=low).html)["kept"]
    expect = sorted((q for q, v in enumerate(scores) if v >= low), key=lambda q: -scores[q])
    assert kept == expect[:6] and f">= {low:g}" in _data_block(
        probe.show(s.model, "detr", s.pixel_values, threshold=low).html)["title"]


def test_detr_layers_and_heads_select_the_embedded_maps(detr_cli):
    s, _ = detr_cli
    tr = probe.trace(s.model, s.pixel_values)
    view = probe.show(s.model, "detr", s.pixel_values, layers=[-1], heads=[2, 0])
    data = _data_block(view.html)
    n_layers, n_heads = tr.cross.attentions.shape[0], tr.cross.attentions.shape[2]
    assert data["layers"] == [str(n_layers - 1)] and data["heads"] == ["2", "0"]
    rows, cols = tr.grid
    values = decode_array(data["maps"]) * np.asarray(data["scale"])[..., None, None]
    heads = tr.cross.attentions[-1, 0][[2, 0]].float().numpy()  # [head, query, key]
    want = np.concatenate([heads, heads.mean(0, keepdims=True)]).reshape(1, 3, -1, rows, cols)
    tol = np.asarray(data["scale"])[..., None, None] / 510 + 1e-6
    assert np.all(np.abs(values - want) <= tol)
    assert n_heads > 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(queries=[99]), r"^queries= 99 is out of range: the model has \d+ object queries"),
    (dict(layer=5), r"^layer 5 is out of range: the model has 2 decoder layers \(use -2\.\.1; "
     r"negative counts from the end\)$"),
    (dict(layers=[7]), r"^layers=: layer 7 is out of range: the decoder has 2 layers "
     r"\(use -2\.\.1; negative counts from the end\)$"),
    (dict(threshold=1.5), r"^threshold must be a score in \[0, 1\]"),
    (dict(detections=([], [], [])), "detections= goes with a trace"),
    (dict(stage=1), r"^stage= does not apply to the detr view: it is used by the gates view "
     r"only; drop it$"),
    (dict(methods=["rollout"]), r"^methods= does not apply to the detr view"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_detr_bad_input_is_one_line_naming_the_fix(detr_cli, kwargs, match):
    s, _ = detr_cli
    with pytest.raises(ProbeError, match=match) as err:
        probe.show(s.model, "detr", s.pixel_values, **kwargs)
    assert "\n" not in str(err.value)


def test_detr_needs_a_detector_or_the_predictions(vit):
    model, pixels = vit
    with pytest.raises(ProbeError, match=r"needs a DETR object detector.*vit-shapes is not one"):
        probe.show(model, "detr", pixels)
    with pytest.raises(ProbeError, match=r"needs a trace of a DETR detector"):
        probe.show(probe.trace(model, pixels), "detr")


# ----------------------------------------------------------------------------- curves
@pytest.fixture(scope="module")
def vit():
    from probe.models._shapes import make_shapes

    model, _ = probe.load_model("vit-shapes")
    return model, make_shapes(1, seed=3).images


def test_image_curves_from_python_embed_what_the_cli_page_embeds():
    """The CLI's default methods (random included) on the same image: the same curves, ranks
    and image."""
    s, page = _cli_page("curves", model="vit-shapes", seed=3)
    # both draw what the model saw (no display image), at the file's proportions
    data = _same_as_cli("curves", s, page, image=None, image_size=s.display_size)
    assert data["methods"] == ["attention", "rollout", "relevance", "ig", "saliency", "gradcam",
                               "random"]


def test_image_curves_are_the_deletion_and_insertion_curves(vit):
    """The embedded curve values are ``probe.deletion_curve`` / ``insertion_curve`` of the
    method's attribution, and the page opens without a display image (the input, scaled)."""
    model, pixels = vit
    view = probe.show(model, "curves", pixels, methods=["rollout"])
    data = _data_block(view.html)
    attr = probe.attribute(model, pixels, "rollout")
    dele = probe.deletion_curve(model, pixels, attr)
    ins = probe.insertion_curve(model, pixels, attr)
    np.testing.assert_allclose(data["kinds"][0]["values"][0], dele.values[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(data["kinds"][1]["values"][0], ins.values[0].numpy(), rtol=1e-6)
    order = np.argsort(-attr.scores[0].numpy(), kind="stable")
    assert [data["ranks"][0][u] for u in order] == list(range(len(order)))
    assert data["size"] == list(pixels.shape[-2:]) and data["unit"] == "patches"


def test_text_curves_from_python_embed_what_the_cli_page_embeds():
    text, pair = "A man is playing a guitar.", "Someone plays music."
    s, page = _cli_page("curves", text=text, pair=pair, methods=("attention", "random"))
    target = probe.similarity_target(s.model, s.processor, pair)
    view = probe.show((s.model, s.processor), "curves", text, target=target,
                      methods=["attention", "random"])
    data = _data_block(view.html)
    assert data == _data_block(page.html)
    assert data["unit"] == "tokens" and "[CLS]" not in data["tokens"]
    with pytest.raises(ProbeError, match=r"^text curves need a target: pass target=probe\."
                                         r"similarity_target\(model, tokenizer"):
        probe.show((s.model, s.processor), "curves", text)


def test_text_classifier_curves_need_no_target():
    """A classifier explains its predicted class: no target, the CLI's default text methods
    (gradient methods included), the content tokens as units; without a tokenizer, an error."""
    from tests._tiny import bert_classifier
    from tests._tokenizers import wordpiece

    model, _ = bert_classifier()
    tok = wordpiece()
    text = "the cat sat on the mat"
    data = _data_block(probe.show(model, "curves", text, tokenizer=tok).html)
    assert data["tokens"] == text.split() and data["unit"] == "tokens"
    assert data["methods"] == ["attention", "rollout", "relevance", "ig", "saliency",
                               "inputxgrad", "random"]
    attr = probe.attribute(model, text, "ig", tokenizer=tok)
    dele = probe.deletion_curve(model, text, attr, tokenizer=tok)
    np.testing.assert_allclose(data["kinds"][0]["values"][3], dele.values[0].numpy(), rtol=1e-5)
    with pytest.raises(ProbeError, match=r"^text curves show the tokens: pass tokenizer="):
        probe.show(model, "curves", torch.tensor([[1, 5, 6, 2]]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(methods=["nope"]), r"^unknown methods= 'nope' for vision models: use \["),
    (dict(layer=1),
     r"^layer= does not apply to the curves view: it is used by the detr and window views "
     r"only"),
    (dict(word="x"), r"^word= does not apply to the curves view: it is used by the coref view "
     r"only; drop it$"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_curves_bad_input_is_one_line_naming_the_fix(vit, kwargs, match):
    model, pixels = vit
    with pytest.raises(ProbeError, match=match):
        probe.show(model, "curves", pixels, **kwargs)
    with pytest.raises(ProbeError, match="runs the model: pass the model and inputs"):
        probe.show(probe.trace(model, pixels), "curves")
    with pytest.raises(ProbeError, match=r"pass inputs="):
        probe.show(model, "curves")


# ----------------------------------------------------------------------------- gates
@pytest.fixture(scope="module")
def gates_cli():
    return _cli_page("gates", model="cnn-shapes-nl", seed=1)


def test_gates_from_python_embed_what_the_cli_page_embeds(gates_cli):
    s, page = gates_cli
    [blk] = _same_as_cli("gates", s, page)["blocks"]
    [gate] = probe.trace_gates(s.model, s.pixel_values).select("nonlocal")
    np.testing.assert_allclose(decode_array(blk["data"]), gate.values[0].numpy(),
                               atol=blk["data"]["step"] / 2 + 1e-6)
    # stage selection is the CLI's --layer S
    _, one = _cli_page("gates", model="cnn-shapes-nl", seed=1, layer=1)
    assert _same_as_cli("gates", s, one, stage=1)["subtitle"].endswith("stages 1")


def _se_resnet() -> torch.nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model("resnet10t", pretrained=False, num_classes=3,
                             layers=(1, 1, 1, 1), channels=(16, 32, 48, 64), stem_width=16,
                             block_args=dict(attn_layer="se")).eval()


def test_gates_bad_input_is_one_line_naming_the_fix(gates_cli, vit):
    s, _ = gates_cli
    cases = [
        (lambda: probe.show(s.model, "gates", s.pixel_values, stage=7),
         r"^stage= picks a stage in the gates view: stage 7 has no gates"),
        (lambda: probe.show(s.model, "gates", s.pixel_values, layers=[0]),
         r"^layers= does not apply to the gates view: it is used by the heads, cross, "
         r"alignment, model, image, detr and window views only"),
        (lambda: probe.show(vit[0], "gates", vit[1]),
         r"^the gates view needs a CNN with attention gates .*vit-shapes has none"),
        (lambda: probe.show(_se_resnet(), "gates", torch.randn(1, 3, 64, 64)),
         r"no gate with a map over the image \(its gates: channel\).*use "
         r"probe\.viewers\.gate_figures for channel and branch gates$"),
    ]
    for call, match in cases:
        with pytest.raises(ProbeError, match=match) as err:
            call()
        assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- the model
@pytest.mark.parametrize("view, fixture, kwargs", [
    ("detr", "detr_cli", {}),
    ("curves", "vit", dict(methods=["rollout", "ig"])),
    ("gates", "gates_cli", {}),
])
def test_the_model_is_left_as_it_was(request, view, fixture, kwargs):
    """Also in train mode (which the views run in, as probe.attribute does: a CNN's BatchNorm
    then uses the batch's statistics) and with a parameter frozen: modes, flags, gradients,
    hooks and weights come back unchanged."""
    value = request.getfixturevalue(fixture)
    model, pixels = (value[0].model, value[0].pixel_values) if fixture.endswith("_cli") else value
    before = _unfrozen_in_train_mode(model)
    try:
        probe.show(model, view, pixels, **kwargs)
        assert_unchanged(model, before)
    finally:
        _restore(model)


# ----------------------------------------------------------------------------- in the browser
def test_each_view_loads_with_a_clean_console(browser, tmp_path, detr_cli, gates_cli, vit):
    pages = {
        "detr": probe.show(detr_cli[0].model, "detr", detr_cli[0].pixel_values),
        "curves": probe.show(vit[0], "curves", vit[1], methods=["rollout", "random"]),
        "gates": probe.show(gates_cli[0].model, "gates", gates_cli[0].pixel_values),
    }
    for name, view in pages.items():
        _loads_clean(browser, view, tmp_path, name)
        assert browser.execute_script("return document.querySelector('canvas') !== null")


def test_the_demo_writes_every_show_view():
    """``python -m probe.recipes.demo`` writes one page per ``probe.show`` view (the README
    says so; kept in step by reading the recipe)."""
    import inspect

    from probe.commands._show import SHOW_VIEWS
    from probe.recipes import demo

    source = inspect.getsource(demo.html_views)
    missing = [v for v in SHOW_VIEWS if f'"{v}"' not in source]
    assert not missing, f"the demo writes no {missing} page"


@pytest.mark.slow
def test_the_demo_pages_are_written_and_load_clean(browser, tmp_path):
    from probe.commands._show import SHOW_VIEWS
    from probe.recipes.demo import html_views

    paths = html_views(str(tmp_path))
    assert sorted(p.rsplit("html_", 1)[1][:-5] for p in paths) == sorted(SHOW_VIEWS)
    for path in paths:
        assert load(browser, path) == "1", path
        assert console_errors(browser) == [] and resources(browser) == 0, path


def test_curves_of_models_probe_cannot_trace():
    """A plain text module: its default methods would read attention, so the view says to
    pass gradient methods (was an AttributeError from the CNN gate lookup); a plain torch
    CNN gets GradCAM, IG and random."""
    import torch

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.out = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)

        def forward(self, input_ids=None, **_):
            return self.out(self.emb(input_ids).mean(1))

    with pytest.raises(ProbeError, match=r"^probe cannot capture attention from this text model "
                                         r"\(Text\).*pass methods= with methods that need none"):
        probe.show(Text().eval(), "curves", torch.tensor([[1, 2, 3]]), target=0)

    from probe.commands._pages import curve_methods

    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 4)).eval()
    assert curve_methods(cnn, "vision", (), captures=False, has_target=True) == \
        ["gradcam", "ig", "random"]
