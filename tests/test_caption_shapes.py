"""The trained caption-shapes model: it loads offline, captions held-out scenes, its
cross-attention is drawn by ``probe render cross``, and the grounding scores add up."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

import probe
from probe.cli import main
from probe.evaluation._grounding import aligned_words, caption_grounding, grounding_markdown
from probe.models._captions import MIN_GAP, make_captions

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def captioner():
    return probe.load_model("caption-shapes")


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_make_captions_is_deterministic_ordered_and_separated() -> None:
    a, b = make_captions(24, seed=7), make_captions(24, seed=7)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert not torch.equal(a.images, make_captions(24, seed=8).images)
    assert a.images.shape == (24, 3, 64, 64) and a.masks.shape == (24, 3, 64, 64)
    for i in range(24):
        filled = [j for j in range(3) if a.labels[i, j] >= 0]
        assert filled == list(range(len(filled))) and filled  # left-aligned, at least one
        xs = [float(a.masks[i, j].nonzero()[:, 1].float().mean()) for j in filled]
        assert xs == sorted(xs)  # slot order is left to right
        assert len(a.captions[i].split(" and ")) == len(filled)
        cols = [a.masks[i, j].nonzero()[:, 1] for j in filled]
        centres = [(int(c.min()) + int(c.max()) + 1) / 2 for c in cols]
        assert all(y - x >= MIN_GAP - 1 for x, y in zip(centres, centres[1:]))
    with pytest.raises(probe.ProbeError, match="n must be"):
        make_captions(0)


def test_loads_offline_and_captions_held_out_scenes(captioner) -> None:
    model, tok = captioner
    assert model.probe_name == "caption-shapes" and not model.training
    assert "caption-shapes" in probe.list_models()
    data = make_captions(24, seed=40_000)  # the recipe's held-out seed
    gen = probe.generate(model, data.images, tokenizer=tok, max_new_tokens=12)
    assert gen.source_grid == (8, 8) and gen.source_prefix_tokens == 1
    hits = sum(t.strip() == c for t, c in zip(gen.text, data.captions))
    assert hits >= 6, list(zip(gen.text, data.captions))  # 8 of 24: a weak captioner (38%)
    # generation with probe gives the tokens model.generate gives
    with torch.no_grad():
        plain = model.generate(pixel_values=data.images[:4], max_new_tokens=12)
    assert tok.batch_decode(plain, skip_special_tokens=True) == [
        t for t in tok.batch_decode(gen.generated_ids[:4], skip_special_tokens=True)]


def test_cross_figure_names_each_word(captioner) -> None:
    model, tok = captioner
    data = make_captions(1, seed=3)
    gen = probe.generate(model, data.images, tokenizer=tok, max_new_tokens=12)
    fig = probe.plot(gen, "cross", image=data.to_display(0))
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_title()]
    assert titles == list(gen.generated_tokens[0])  # one panel per written token, </s> too
    assert titles[-1] == "</s>" and " ".join(titles[:-1]) == gen.text[0].strip()


def test_cross_views_of_a_batch_stop_at_each_items_eos(captioner) -> None:
    """An item that ended before the batch's longest caption has <pad> steps after its </s>:
    the figure and the page draw its written tokens only (they drew six <pad> panels)."""
    from probe.viewers.html import token_patches_html

    model, tok = captioner
    data = make_captions(4, seed=40_000)
    gen = probe.generate(model, data.images, tokenizer=tok, max_new_tokens=12)
    lengths = gen.generated_mask.sum(1).tolist()
    assert len(set(lengths)) > 1  # the case: captions of different lengths in one batch
    for b, n in enumerate(lengths):
        fig = probe.plot(gen, "cross", batch_index=b)
        titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_title()]
        assert titles == list(gen.generated_tokens[b][:n]) and titles[-1] == "</s>"
        page = token_patches_html(gen, batch_index=b).html
        shown = json.loads(re.search(r'"tokens":(\[[^\]]*\])', page).group(1))
        assert shown == titles


def test_aligned_words_by_hand() -> None:
    # objects: red disk, blue square
    tokens = ["red", "disk", "and", "green", "square", "</s>", "<pad>"]
    assert aligned_words(tokens, [1, 0, -1], [0, 2, -1]) == [(0, 0, "colour"), (1, 0, "shape"),
                                                             (4, 1, "shape")]
    # a shape word naming the wrong object is not scored, the count still moves on
    assert aligned_words(["blue", "cross", "and", "blue", "square", "</s>"], [1, 0, -1],
                         [0, 2, -1]) == [(3, 1, "colour"), (4, 1, "shape")]


def test_grounding_scores_a_few_scenes(captioner) -> None:
    model, tok = captioner
    result = caption_grounding(model, tok, make_captions(6, seed=41_000), batch_size=3)
    assert result["scenes"] == 6 and result["words"]["shape"] >= 6
    kinds = {(r["kind"], r["layers"]) for r in result["rows"]}
    assert ("shape", "mean") in kinds and ("shape", "0") in kinds and ("shape", "1") in kinds
    for r in result["rows"]:
        assert 0 <= r["pointing_ci"][0] <= r["pointing"] <= r["pointing_ci"][1] <= 1
        assert r["pointing"] <= r["pointing_any"] + 1e-9
        assert 0 < r["baseline"] < 1 and 0 <= r["mass"] <= 1
    assert "pointing game" in grounding_markdown(result)


def test_render_cross_writes_png_and_html(tmp_path, capsys) -> None:
    rc, out, err = _run(["render", "cross", "--seed", "1", "--out", str(tmp_path), "--quiet",
                         "--dpi", "60", "--format", "png", "--format", "html"], capsys)
    assert rc == 0, err
    paths = sorted((Path(p) for p in out.split()), key=lambda p: p.suffix)
    assert [p.suffix for p in paths] == [".html", ".png"]
    assert paths[1].name.startswith("cross_caption-shapes_all_captions-seed1-")
    with Image.open(paths[1]) as img:
        assert img.size[0] > 100
    truth = make_captions(1, seed=1).captions[0]
    assert err.strip() == f"generated: {truth}"  # one line: the model's caption, right here
    html = paths[0].read_text()
    assert "<script src=" not in html and all(word in html for word in truth.split())
    # one decoder layer; an image file
    image = tmp_path / "scene.png"
    Image.fromarray((make_captions(1, seed=5).to_display(0) * 255).round().astype("uint8")).save(
        image)
    rc, out, err = _run(["render", "cross", "--layer", "-1", "--image", str(image), "--out",
                         str(tmp_path), "--quiet", "--dpi", "60"], capsys)
    assert rc == 0, err
    [path] = [Path(p) for p in out.split()]
    assert "_L-1_scene-" in path.name


def test_render_cross_bad_input_is_one_line(tmp_path, capsys) -> None:
    out_dir = tmp_path / "out"
    cases = [
        (["--model", "vit-shapes"], "needs an image-to-text model"),
        (["--model", "minilm"], "needs an image-to-text model"),
        (["--layer", "5"], "--layer"),
        (["--head", "0"], "--head does not apply to the cross view"),
        (["--text", "a red disk"], "caption-shapes is an image model"),
        (["--image", str(tmp_path / "missing.png")], "does not exist"),
        (["--seed", "-1"], "--seed -1 is out of range"),
    ]
    for argv, needle in cases:
        rc, out, err = _run(["render", "cross", *argv, "--out", str(out_dir), "--quiet"], capsys)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and needle in lines[0], (argv, err)
        assert not out_dir.exists() and not out
