"""Odd inputs found by a fourth hunt on the promise (analyses on odd traces, argument types,
eval data files): numpy integers and floats are the numbers they hold, odd but valid traces
give defined results, and bad input is one ``ProbeError`` line naming the problem and the fix,
never an error from deep inside torch or numpy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import probe
from probe.cli import main
from tests._tiny import bert, timm_model

SENTENCE = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="module")
def tiny():
    model, inputs = bert()
    return model, inputs, probe.trace(model, inputs)


@pytest.fixture(scope="module")
def minilm_trace():
    model, tokenizer = probe.load_model("minilm")
    return probe.trace(model, SENTENCE, tokenizer=tokenizer)


def test_numpy_numbers_are_the_numbers_they_hold_in_capture_and_analyses(tiny):
    """``start_layer=np.int64(1)`` was 'start_layer must be an int, got np.int64(1)',
    ``discard_ratio=np.float32(0.5)`` 'must be a number', ``layers=[np.int64(1)]`` 'must be a
    list of integers', ``rows=np.array([0, 1])``, ``max_tokens=np.int64(30)``, ``k=np.int64(3)``
    and a patch ``query=np.int64(0)`` the same; results now equal the plain ints'."""
    model, inputs, trace = tiny
    torch.testing.assert_close(probe.rollout(trace, start_layer=np.int64(1)),
                               probe.rollout(trace, start_layer=1), atol=0, rtol=0)
    torch.testing.assert_close(probe.rollout(trace, discard_ratio=np.float32(0.5)),
                               probe.rollout(trace, discard_ratio=0.5), atol=0, rtol=0)
    streamed = probe.trace(model, inputs, stream=True, discard_ratio=np.float32(0.5))
    torch.testing.assert_close(probe.rollout(streamed, discard_ratio=0.5),
                               probe.rollout(trace, discard_ratio=0.5))
    assert probe.trace(model, inputs, layers=list(np.arange(2))).layer_indices == (0, 1)
    assert probe.trace(model, inputs, layers=np.int64(2)).layer_indices == (2,)
    assert probe.trace(model, inputs, heads=[np.int32(3), 1]).head_indices == (3, 1)
    torch.testing.assert_close(probe.trace(model, inputs, chunk_size=np.int64(4)).attentions,
                               trace.attentions)
    rows = probe.attention_flow(trace, rows=[0, 1])
    for same in (np.array([0, 1]), torch.tensor([1, 0]), (np.int64(0), 1)):
        torch.testing.assert_close(probe.attention_flow(trace, rows=same), rows, atol=0, rtol=0)
    assert probe.attention_flow(trace, rows=[0], max_tokens=np.int64(9)).shape == (2, 9, 9)
    a, b = torch.rand(2, 6, generator=torch.Generator().manual_seed(0)).unbind()
    assert probe.topk_overlap(a, b, k=np.int64(3)) == probe.topk_overlap(a, b, k=3)
    assert probe.topk_overlap(a, b, k=np.float32(0.5)) == probe.topk_overlap(a, b, k=0.5)

    vit, pixels = timm_model("vit_small_patch16_224", img=(16, 40), reg_tokens=4,
                             no_embed_class=True)
    vt = probe.trace(vit, pixels)
    assert vt.grid == (2, 5) and vt.num_prefix_tokens == 5  # registers, a non-square grid
    torch.testing.assert_close(probe.patch_maps(vt, query=np.int64(0)), probe.patch_maps(vt))
    maps = probe.rollout_map(vt)
    torch.testing.assert_close(probe.upsample(maps, (np.int64(16), np.int64(40))),
                               probe.upsample(maps, vt.image_size))


@pytest.mark.parametrize("call, pattern", [
    (lambda m, i, t: probe.rollout(t, start_layer=1.0), r"^start_layer must be an int, got 1\.0$"),
    (lambda m, i, t: probe.attention_flow(t, rows=1.0),
     r"^rows must be a list of token positions \(ints\), got 1\.0$"),  # was a TypeError
    (lambda m, i, t: probe.attention_flow(t, rows=np.array([True, False])),
     r"^rows must be a list of token positions"),
    (lambda m, i, t: probe.trace(m, i, stream=True, start_layer="a"),
     r"^start_layer must be an integer layer index, got 'a'$"),  # was int('a')'s ValueError
], ids=["float-start", "float-rows", "bool-rows", "str-start-stream"])
def test_what_is_no_integer_stays_refused_in_one_line(tiny, call, pattern):
    with pytest.raises(probe.ProbeError, match=pattern):
        call(*tiny)


def test_a_streaming_rollout_checks_start_layer_too(tiny):
    """A streaming trace answered ``start_layer=1.0`` with its stored rollout (``1.0 % n ==
    1``) and ``start_layer='a'`` with a TypeError."""
    model, inputs, _ = tiny
    streamed = probe.trace(model, inputs, stream=True, start_layer=1)
    assert probe.rollout(streamed, start_layer=np.int64(1)).shape == (2, 9, 9)
    for bad in (1.0, "a", None):
        with pytest.raises(probe.ProbeError, match=r"^start_layer must be an int, got "):
            probe.rollout(streamed, start_layer=bad)


def test_upsample_names_a_bare_number_as_size():
    """``probe.upsample(maps, 32)`` was ``TypeError: object of type 'int' has no len()``."""
    maps = torch.rand(2, 3, 4)
    for bad in (32, "32", (32,), (32.0, 32)):
        with pytest.raises(probe.ProbeError, match=r"^size must be \(height, width\) in pixels, "
                                                   r"e\.g\. \(224, 224\), got "):
            probe.upsample(maps, bad)


def test_curve_auc_takes_lists_and_arrays():
    """``probe.curve_auc([0, 1], [1, 0])`` was ``AttributeError: 'list' object has no attribute
    'to'``; a numpy array the same."""
    auc = probe.curve_auc([0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    assert auc.dtype == torch.float64 and float(auc) == 0.5
    both = probe.curve_auc(np.array([0.0, 1.0]), np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert both.tolist() == [0.5, 1.0]
    with pytest.raises(probe.ProbeError, match=r"^curve_auc: fractions must be numbers"):
        probe.curve_auc("ab", [1, 2])


def test_coref_takes_numpy_indices_and_names_a_non_integer_occurrence(minilm_trace):
    """``occurrence=np.int64(0)`` said "occurrence=np.int64(0) but 'it' occurs 1 time(s); use
    -1..0", a range that holds 0; ``occurrence=0.0`` said the same; ``word=np.int64(9)`` and
    ``candidates=[np.int64(1)]`` were 'must be a string or a word index'; ``candidates=5.0``
    was a TypeError."""
    trace = minilm_trace
    plain = probe.coref(trace, "it", candidates=[1, 5])
    assert probe.coref(trace, "it", occurrence=np.int64(0))[0] == probe.coref(trace, "it")[0]
    assert probe.coref(trace, np.int64(9), candidates=np.array([1, 5])) == plain
    assert probe.coref(trace, "it", candidates=[np.int64(1), np.str_("cross")]) == plain
    assert probe.word_attention(trace, np.int64(9)).shape == (6, 12, 14)
    for bad in (0.0, None, "0"):
        with pytest.raises(probe.ProbeError, match=r"^occurrence must be an int \(0 is the "
                                                   r"first, -1 the last\), got "):
            probe.coref(trace, "it", occurrence=bad)
    with pytest.raises(probe.ProbeError, match=r"^candidates must be a list of words or word "
                                               r"indices, got 5\.0$"):
        probe.coref(trace, "it", candidates=5.0)
    assert probe.plot(trace, "coref", word=np.int64(9)) is not None


def test_plot_names_the_view_asked_for_and_refuses_a_layer_for_rollout(minilm_trace):
    """``plot(trace, 'heads', head=1)`` said "the 'model' view does not take ..."; ``plot(trace,
    'rollout', layer=1)`` drew the rollout of every layer titled "layer 1" (and took
    ``layer='1'``)."""
    with pytest.raises(probe.ProbeError, match=r"^the 'heads' view does not take option\(s\) "
                                               r"\['head'\]"):
        probe.plot(minilm_trace, "heads", head=1)
    with pytest.raises(probe.ProbeError, match=r"^the 'rollout' view folds every layer and "
                                               r"head, so layer= does not apply; drop it"):
        probe.plot(minilm_trace, "rollout", layer=1)
    with pytest.raises(probe.ProbeError, match=r"so head= and layer= do not apply"):
        probe.plot(minilm_trace, "rollout", layer="1", head=0)


def test_head_stats_of_a_batch_with_a_one_token_item_stays_defined(tiny):
    """An item with one real token has no previous or next token: its ``prev_mass`` and
    ``next_mass`` are NaN, and the batch average was NaN for every head; it now averages the
    items that have a value."""
    model, inputs, _ = tiny
    mask = inputs["attention_mask"].clone()
    mask[1, 1:] = 0  # all padding but one token
    trace = probe.trace(model, {"input_ids": inputs["input_ids"], "attention_mask": mask})
    batch, first, lone = (probe.head_stats(trace, batch_index=b) for b in (None, 0, 1))
    assert torch.isnan(lone.prev_mass).all() and torch.isnan(lone.next_mass).all()
    torch.testing.assert_close(batch.prev_mass, first.prev_mass)
    torch.testing.assert_close(batch.next_mass, first.next_mass)
    torch.testing.assert_close(batch.entropy, (first.entropy + lone.entropy) / 2)


def test_gradients_of_a_head_subset_and_its_relevance(tiny):
    """With ``heads=[0, 2]`` ``trace.gradients()`` held every head (``[3, 2, 4, 9, 9]`` beside
    attentions ``[3, 2, 2, 9, 9]``) and ``probe.relevance`` said 'gradients (3, 2, 4, 9, 9)
    must have the shape of attentions ...; pass the gradient of each attention weight'."""
    model, inputs, _ = tiny
    full = probe.trace(model, inputs, requires_grad=True)
    full.output.last_hidden_state.sum().backward()
    some = probe.trace(model, inputs, requires_grad=True, heads=[0, 2])
    some.output.last_hidden_state.sum().backward()
    assert some.gradients().shape == some.attentions.shape
    torch.testing.assert_close(some.gradients(), full.gradients()[:, :, [0, 2]])
    with pytest.raises(probe.ProbeError, match=r"^relevance averages its rule over every head, "
                                               r"but this trace keeps heads \[0, 2\] of 4; "
                                               r"capture again with heads=None$"):
        probe.relevance(some)


# ----------------------------------------------------------------- probe eval coref --data
GOOD = ("The cup did not fit in the box because it was big.|it|cup|box\n"
        "The cup did not fit in the box because it was small.|it|box|cup\n")
ITEM_A = {"sentence": "The cup did not fit in the box because it was big.", "pronoun": "it",
          "correct": "cup", "distractor": "box"}
ITEM_B = {"sentence": "The cup did not fit in the box because it was small.", "pronoun": "it",
          "correct": "box", "distractor": "cup"}


@pytest.fixture
def no_load(monkeypatch):
    from probe.models import _registry

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the model loaded before the data was checked")

    monkeypatch.setattr(_registry, "load_model", refuse)


@pytest.mark.parametrize("name, content, pattern", [
    # a pair given twice counted its sentences twice in every accuracy and p-value
    ("twice.txt", GOOD + GOOD.replace("cup", "Cup", 1),
     r"twice\.txt, line 3 repeats line 1 \('The Cup did not fit"),
    ("twice-crlf.txt", (GOOD + "# again\n" + GOOD).replace("\n", "\r\n"),
     r"twice-crlf\.txt, line 4 repeats line 1 "),
    ("twice.json", json.dumps({"pairs": [{"id": "a", "items": [ITEM_A, ITEM_B]},
                                         {"id": "b", "items": [ITEM_B, ITEM_A]}]}),
     r"twice\.json, pair 'b' item 0 repeats pair 'a' item 1 "),
    # a JSON "pair" of one or three sentences passed every pair check: a one-sentence "pair"
    # made the pair accuracy of a positional rule 1.000 instead of its chance line 0
    ("one.json", "\ufeff" + json.dumps({"pairs": [{"id": "a", "items": [ITEM_A]}]}),
     r"one\.json, pair 'a': a minimal pair is two sentences, got 1 item\(s\)"),
    ("three.json", json.dumps({"pairs": [{"id": "a", "items": [ITEM_A, ITEM_B, ITEM_A]}]}),
     r"three\.json, pair 'a': a minimal pair is two sentences, got 3 item\(s\)"),
], ids=["text", "crlf", "json", "json-one", "json-three"])
def test_repeated_items_and_pairs_that_are_no_pairs_are_refused(name, content, pattern,
                                                                tmp_path, capsys, no_load):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    rc = main(["eval", "coref", "--data", str(path), "--quiet"])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and out == "" and len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == [name]


def test_comparison_panel_draws_an_undefined_agreement_as_na(tmp_path, capsys):
    """``probe render compare --text a`` (one scored token: every Spearman between two methods
    is undefined, NaN) ended 'agreement contains NaN or inf: replace them first, e.g. with
    torch.nan_to_num', advice a command-line user cannot follow; the panel now writes n/a."""
    from probe.viewers import comparison_panel

    nan = float("nan")
    fig = comparison_panel(["a"], {"attention": [0.2], "random": [0.7]},
                           agreement=[[1.0, nan], [nan, 1.0]])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("n/a") == 2 and texts.count("1.00") == 2
    with pytest.raises(probe.ProbeError, match=r"^agreement contains inf: pass rank "):
        comparison_panel(["a"], {"x": [0.2], "y": [0.7]}, agreement=[[1.0, float("inf")],
                                                                     [0.0, 1.0]])
    assert main(["render", "compare", "--text", "a", "--out", str(tmp_path), "--quiet"]) == 0
    assert [p.suffix for p in tmp_path.iterdir()] == [".png"]


def test_evaluation_and_data_take_numpy_counts_and_seeds():
    """``make_shapes(np.int64(2))`` was 'n must be an integer >= 1, got np.int64(2)';
    ``steps=``, ``n_random=``, ``perturbed_input``'s step and ``sanity_check``'s ``seed=`` the
    same. A float stays refused."""
    from probe.models._scenes import make_scenes

    shapes = probe.make_shapes(np.int64(2), seed=np.uint32(3), image_size=np.int64(32))
    torch.testing.assert_close(shapes.images, probe.make_shapes(2, seed=3).images)
    assert make_scenes(np.int64(1), seed=np.int64(0)).images.shape[0] == 1
    model, _ = probe.load_model("vit-shapes")
    images = shapes.images
    attr = probe.attribute(model, images, "random", seed=0)
    curve = probe.deletion_curve(model, images, attr, steps=np.int64(4))
    torch.testing.assert_close(curve.values, probe.deletion_curve(model, images, attr,
                                                                  steps=4).values)
    torch.testing.assert_close(probe.perturbed_input(model, images, attr, np.int64(2), steps=4),
                               probe.perturbed_input(model, images, attr, 2, steps=4))
    with pytest.raises(probe.ProbeError, match=r"^step must be an int in 0\.\.4 \(steps=4\), "
                                               r"got 2\.0$"):
        probe.perturbed_input(model, images, attr, 2.0, steps=4)
    table = probe.faithfulness(model, images, [attr], steps=4, n_random=np.int64(1))
    assert table is not None
    result = probe.sanity_check(model, images[:1], ["random"], seed=np.int64(0))
    assert result is not None


def test_flags_that_are_no_bool_are_named(tiny):
    """``probe.trace(..., average_heads="no")`` averaged the heads, ``requires_grad=None``
    captured without gradients and ``attention_flow(..., normalize="False")`` normalised:
    truthiness decided, silently."""
    model, inputs, trace = tiny
    for name, value in (("average_heads", "no"), ("requires_grad", None), ("stream", 1)):
        with pytest.raises(probe.ProbeError, match=rf"^{name} must be True or False, got "):
            probe.trace(model, inputs, **{name: value})
    assert probe.trace(model, inputs, average_heads=np.True_).head_indices is None
    with pytest.raises(probe.ProbeError, match=r"^normalize must be True or False, got 'False'"):
        probe.attention_flow(trace, rows=[0], normalize="False")
    raw = probe.attention_flow(trace, rows=[0], normalize=np.False_)
    torch.testing.assert_close(raw, probe.attention_flow(trace, rows=[0], normalize=False))
