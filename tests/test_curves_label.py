"""The curves' y axis says what the model's score is: the probability of the target class,
or the cosine similarity to the second sentence (``--pair``, ``probe.similarity_target``),
which is no class; in the static figure and on the HTML curves page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import probe  # noqa: E402
from probe.cli import main  # noqa: E402
from probe.evaluation._curves import score_label  # noqa: E402
from probe.viewers import curves_view  # noqa: E402
from probe.viewers.html import curves_view_html  # noqa: E402

SIMILARITY = "cosine similarity (to the second sentence)"


def _data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_score_label_by_target_kind(minilm) -> None:
    model, tokenizer = minilm
    assert score_label(probe.similarity_target(model, tokenizer, "A cat.")) == SIMILARITY
    assert score_label(None) == score_label(3) == "probability (target class)"
    assert score_label(torch.tensor([1, 2]), output="logit") == "logit (target class)"
    assert score_label(lambda out: out.sum(-1)) == "model score (target function)"


def test_cli_text_curves_label_the_similarity(tmp_path, capsys) -> None:
    rc = main(["render", "curves", "--text", "A man is playing a guitar.", "--pair",
               "Someone plays music.", "--method", "attention", "--method", "random",
               "--format", "svg", "--format", "html", "--out", str(tmp_path), "--quiet",
               "--dpi", "50"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    paths = [Path(p) for p in out.split()]
    svgs = [p for p in paths if p.suffix == ".svg"]
    assert len(svgs) == 2  # deletion and insertion
    for svg in svgs:
        texts = re.findall(r"<!-- (.*?) -->", svg.read_text())
        assert SIMILARITY in texts and not any("target class" in t for t in texts)
    page = next(p for p in paths if p.suffix == ".html").read_text(encoding="utf-8")
    assert _data(page)["ylabel"] == SIMILARITY and "target class" not in page


def test_show_curves_label_the_similarity(minilm) -> None:
    model, tokenizer = minilm
    target = probe.similarity_target(model, tokenizer, "Someone plays music.")
    view = probe.show((model, tokenizer), "curves", "A man is playing a guitar.",
                      methods=["attention", "random"], target=target)
    assert _data(view.html)["ylabel"] == SIMILARITY


def test_html_curves_ylabel_is_drawn_and_checked() -> None:
    f = np.arange(6) / 5
    tokens, scores = ["the", "cat", "sat", "down", "now"], {"ig": np.array([.1, .9, .3, .8, .2])}
    view = curves_view_html({"ig": (f, 1 - f)}, None, scores, tokens=tokens)
    assert _data(view.html)["ylabel"] == "model score"  # no target known: no claim of a class
    assert "d.ylabel" in view.html  # written under each chart's name and in the readout
    view = curves_view_html({"ig": (f, 1 - f)}, None, scores, tokens=tokens, ylabel=SIMILARITY)
    assert _data(view.html)["ylabel"] == SIMILARITY
    for bad in ("", "  ", None):
        with pytest.raises(probe.ProbeError, match="ylabel must be a non-blank string"):
            curves_view_html({"ig": (f, 1 - f)}, None, scores, tokens=tokens, ylabel=bad)


def test_static_curves_take_the_label() -> None:
    f = np.linspace(0, 1, 5)
    fig = curves_view({"a": (f, 1 - f)}, ylabel=SIMILARITY)
    assert fig.axes[0].get_ylabel() == SIMILARITY
