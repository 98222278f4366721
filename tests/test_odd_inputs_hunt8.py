"""Odd inputs found by an eighth hunt on the error promise (viewer call signatures, generation
padding, names, curves, layer indices, DETR views): each is one ``ProbeError`` line naming the
problem and the fix, never Python's or transformers' own error, nor a silently wrong result.
"""

from __future__ import annotations

import pickle
import re

import pytest
import torch

import probe
from probe.viewers import head_heatmap, token_strip
from probe.viewers.html import head_view_html


@pytest.mark.parametrize("call, message", [
    (lambda: head_heatmap(torch.rand(3, 3), ["a", "b", "c"], bogus=1),
     r"^probe\.viewers\.head_heatmap\(\) takes no keyword 'bogus' \(its keywords: attn, tokens, "
     r".*, width\): drop it$"),
    (lambda: token_strip(["a", "b"], torch.rand(2), colour="red"),
     r"^probe\.viewers\.token_strip\(\) takes no keyword 'colour' \(.*\): drop it$"),
    (lambda: head_view_html(torch.rand(3, 3), ["a", "b", "c"], layr=0),
     r"^probe\.viewers\.html\.head_view_html\(\) takes no keyword 'layr' \(.*\): did you mean "
     r"layer=\?$"),
    (lambda: head_heatmap(), r"^probe\.viewers\.head_heatmap\(\) missing 1 required positional "
                             r"argument: 'attn': call it as probe\.viewers\.head_heatmap\(attn, "),
], ids=["figure-viewer", "sized-viewer", "html-view", "missing"])
def test_a_viewer_call_the_signature_refuses_names_the_keywords(call, message):
    """``head_heatmap(..., bogus=1)`` was Python's bare ``TypeError``, while ``probe.trace(...,
    bogus=1)`` named the keywords it takes: the viewers now say it the same way (through the
    ``width=`` decorator too), still a ``TypeError`` for code that catches one."""
    with pytest.raises(probe.ProbeError, match=message) as err:
        call()
    assert isinstance(err.value, TypeError)


def test_wrapped_viewers_stay_themselves():
    from probe.viewers._heatmaps import head_heatmap as plain

    assert head_heatmap.__wrapped__ is plain and head_heatmap.__doc__ == plain.__doc__
    assert pickle.loads(pickle.dumps(head_heatmap)) is head_heatmap
    assert pickle.loads(pickle.dumps(head_view_html)) is head_view_html
    assert head_heatmap(torch.rand(3, 3), ["a", "b", "c"]).axes  # a good call still draws


@pytest.mark.parametrize("name", [5, b"bert", ["bert"]], ids=["int", "bytes", "list"])
def test_a_model_name_that_is_no_string_is_refused(name):
    """``probe.trace(model, inputs, model_name=5)`` was kept as the name (a title of 5, a
    JSON number); ``probe.generate`` and ``probe.trace_gates`` too."""
    from tests._cnn import timm_cnn
    from tests._tiny import bert, gpt2

    message = (rf"^model_name must be a string \(the name recorded for the model\) or None for "
               rf"the model's own, got {re.escape(repr(name))} \({type(name).__name__}\): pass "
               rf"model_name={re.escape(repr(str(name)))}$")
    model, inputs = bert()
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, inputs, model_name=name)
    assert probe.trace(model, inputs, model_name="mine").model_name == "mine"
    model, inputs = gpt2()
    with pytest.raises(probe.ProbeError, match=message):
        probe.generate(model, inputs["input_ids"][:1], max_new_tokens=1, model_name=name)
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace_gates(timm_cnn("seresnet18"), torch.rand(1, 3, 32, 32), model_name=name)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("fractions, values, message", [
    ([0, 0.5, 1], [1, NAN, 0], r"values holds 1 NaN or infinite point\(s\), the first nan at "
                               r"index \[1\]"),
    ([NAN, 0.5, 1], [1, 0.5, 0], r"fractions holds 1 NaN or infinite point\(s\), the first nan "
                                 r"at index \[0\]"),
    ([0, 1], [[1, 0], [-INF, 0]], r"values holds 1 NaN or infinite point\(s\), the first -inf "
                                  r"at index \[1, 0\]"),
], ids=["nan-value", "nan-fraction", "batch-inf"])
def test_curve_auc_refuses_a_point_that_is_not_finite(fractions, values, message):
    """``probe.curve_auc([0, .5, 1], [1, nan, 0])`` returned ``nan`` (and ``inf`` for an
    infinite point) while the viewers' ``curve_auc`` refused them; both now refuse."""
    with pytest.raises(probe.ProbeError, match=rf"^curve_auc: {message}: the area would be "
                                               r"undefined; drop or replace those points first$"):
        probe.curve_auc(fractions, values)
    with pytest.raises(probe.ProbeError, match=r"^curve_auc: values are on the meta device"):
        probe.curve_auc([0, 1], torch.ones(2, device="meta"))
    with pytest.raises(probe.ProbeError, match=r"at least 2"):  # one point: no area either
        probe.curve_auc([0], [1])
    torch.testing.assert_close(probe.curve_auc([0, 0.5, 1], [[1, 0.5, 0], [1, 1, 1]]),
                               torch.tensor([0.5, 1.0], dtype=torch.float64))


def test_a_deletion_curve_of_a_nan_model_keeps_its_nan_area():
    """probe's own curves keep computing the area of what the model scored, NaN included."""
    from probe.evaluation._curves_math import auc64

    got = auc64(torch.tensor([0.0, 1.0]), torch.tensor([[1.0, NAN]]))
    assert torch.isnan(got).all() and got.dtype == torch.float64


def test_trace_repr_counts_batch_tokens_layers_and_heads():
    """``repr(trace)`` showed only the model, the family and a bare shape: it now counts the
    batch, the tokens, the layers and heads kept (of the model's), on one short line."""
    from tests._tiny import bert, t5

    model, inputs = bert()  # 3 layers of 4 heads, a batch of 2 x 9 tokens
    full = probe.trace(model, inputs)
    assert repr(full) == ("Trace(model='BertModel', family='encoder', batch=2, tokens=9, "
                          "layers=3, heads=4, attentions=(3, 2, 4, 9, 9) float32)")
    some = probe.trace(model, inputs, layers=[0, 2], heads=[1], query_rows=[0, 4])
    assert repr(some) == ("Trace(model='BertModel', family='encoder', batch=2, tokens=9, "
                          "query_rows=2, layers=2/3, heads=1/4, "
                          "attentions=(2, 2, 1, 2, 9) float32)")
    assert "heads=averaged" in repr(probe.trace(model, inputs, average_heads=True))
    seq2seq = repr(probe.trace(*t5()))
    assert seq2seq.endswith("attentions=(2, 2, 4, 9, 9) float32, decoder_tokens=4)")
    assert len(seq2seq) < 200


RANGE = r"is out of range: {} has {} {} \(use {}; negative counts from the end\)$"


def test_every_layer_out_of_range_is_said_one_way():
    """``probe.trace(layers=[5])`` said '(use 0..2 or negative indices)', ``probe.rollout``
    '(use 0..2 or a negative index)', ``trace.layer_position`` '(use -3..2; negative counts
    from the end)': every layer (and captured head, windowed block, start layer) out of range
    now goes through the one check, :func:`probe._index.in_range`."""
    from tests._tiny import bert, t5
    from tests.test_swin import _pixels, timm_swin

    model, inputs = bert()  # 3 layers of 4 heads
    trace = probe.trace(model, inputs)
    for call, what in [
        (lambda: probe.trace(model, inputs, layers=[5]), "layer 5 "),
        (lambda: trace.layer_position(5), "layer 5 "),
        (lambda: probe.trace(model, inputs, stream=True, start_layer=-4), "start_layer -4 "),
        (lambda: probe.rollout(trace, start_layer=-4), "start_layer -4 "),
    ]:
        with pytest.raises(probe.ProbeError, match="^" + what + RANGE.format(
                "the model", 3, "layers", r"-3\.\.2")):
            call()
    with pytest.raises(probe.ProbeError, match=r"^head 4 " + RANGE.format(
            r"layer 'encoder\.layer\.0\.attention\.self'", 4, "heads", r"-4\.\.3")):
        probe.trace(model, inputs, heads=[4])
    with pytest.raises(probe.ProbeError, match=r"^layer 2 " + RANGE.format(
            "the model", 2, "layers", r"-2\.\.1")):  # the encoder is checked first
        probe.trace(*t5(), layers=[2])
    with pytest.raises(probe.ProbeError, match=r"^layer 4 " + RANGE.format(
            "the model", 4, "windowed blocks", r"-4\.\.3")):
        probe.trace(timm_swin(), _pixels(32, 48), layers=[4])


@pytest.mark.parametrize("layer, want", [("-1", "L1"), ("0", "L0")])
def test_render_alignment_checks_the_layer_once(tmp_path, capsys, layer, want):
    """``probe render alignment --layer`` checked the range itself and then again through
    ``Alignment.layer_position``: one check now, the same message as every layer."""
    from probe.cli import main

    argv = ["render", "alignment", "--model", "toy-mt", "--text", "a huge tree greets a fire",
            "--out", str(tmp_path), "--quiet"]
    assert main([*argv, "--layer", "2"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("probe: error: layer 2 is out of range: the model has 2 "
                           "layers (use -2..1; negative counts from the end)"), err
    assert main([*argv, "--layer", layer]) == 0
    names = capsys.readouterr().out.split()
    assert len(names) == 1 and f"_{want}" in names[0], names


def test_an_unknown_layer_count_reads_negatives_from_the_last_kept_everywhere():
    """A stack of unknown layer count (``num_model_layers`` 0) read ``layer=-2`` as the last
    kept but one in the views (``model_position(..., 0)``) and as 'the model's layer 2' (the
    highest kept + 1 taken for the count) in ``Trace.layer_position``: one meaning now."""
    import dataclasses

    from probe._index import model_position
    from tests._tiny import bert

    model, inputs = bert()
    kept = probe.trace(model, inputs, layers=[0, 2], heads=[1, 3])
    old = dataclasses.replace(kept, num_model_layers=0, num_heads=0)
    assert [old.layer_position(v) for v in (-1, -2, 0, 2)] == [1, 0, 0, 1]
    assert [model_position(v, (0, 2), 0) for v in (-1, -2)] == [1, 0]
    assert [old.head_position(v) for v in (-1, -2, 3)] == [1, 0, 1]
    with pytest.raises(probe.ProbeError, match=r"^layer -3 is out of range: 2 layers were kept "
                                               r"\(use \[0, 2\] or -2\.\.-1 from the last "
                                               r"kept\)$"):
        old.layer_position(-3)
    with pytest.raises(probe.ProbeError, match=r"^layer 5 was not captured \(kept layers: "
                                               r"\[0, 2\]\)"):
        old.layer_position(5)  # was 'out of range: the model has 3 layers', a guess
    # a known count still reads the model's last: -2 is the model's layer 1, not kept
    with pytest.raises(probe.ProbeError, match=r"^layer -2 \(the model's layer 1\) was not "
                                               r"captured"):
        kept.layer_position(-2)


def test_trace_rows_and_lengths_out_of_range_are_named():
    """``trace.require_rows([99])`` and ``trace.valid_length(9)`` were bare ``IndexError``s from
    inside torch; ``probe.list_methods("audio")`` returned ``()`` as if no method existed."""
    from tests._tiny import bert

    trace = probe.trace(*bert())  # a batch of 2 x 9 tokens
    with pytest.raises(probe.ProbeError, match=r"^query row 99 is out of range: the input has 9 "
                       r"query rows \(use -9\.\.8; negative counts from the end\)$"):
        trace.require_rows([99])
    with pytest.raises(probe.ProbeError, match=r"^query rows must be integers \(token "
                                               r"positions\), got '1'$"):
        trace.row_positions(["1"])
    torch.testing.assert_close(trace.require_rows([-1]), trace.attentions[:, :, :, [8]])
    with pytest.raises(probe.ProbeError, match=r"^batch_index must be in 0\.\.1 \(or -2\.\.-1 "
                                               r"from the end\), got 9$"):
        trace.valid_length(9)
    assert trace.valid_length(-1) == trace.valid_length(1) == 6  # item 1 is padded from 6
    with pytest.raises(probe.ProbeError, match=r"^modality must be 'text', 'vision' or None "
                                               r"\(every method\), got 'audio'$"):
        probe.list_methods("audio")
    with pytest.raises(probe.ProbeError, match=r"^query row 9 is out of range: the input has 9 "
                       r"query rows \(use -9\.\.8; negative counts from the end\)$"):
        probe.trace(*bert(), query_rows=[9])


def test_views_of_odd_data_say_what_is_wrong():
    """Meta tensors reached torch's 'Cannot copy out of meta tensor; no data!'; a lone map
    given to ``image_view_html`` was 'Boolean value of Tensor ... is ambiguous'; string scores
    were numpy's 'could not convert string to float'; an empty token list made an empty page
    (``token_strip`` refuses it)."""
    import numpy as np

    from probe.viewers.html import image_view_html, token_view_html

    meta = torch.rand(3, 3, device="meta")
    with pytest.raises(probe.ProbeError, match=r"^attn is on the meta device and holds no "
                                               r"values: pass a real \[query, key\] tensor$"):
        head_heatmap(meta, ["a", "b", "c"])
    with pytest.raises(probe.ProbeError, match=r"^a \(3, 3\) tensor on the meta device holds "
                                               r"no values: pass real numbers$"):
        head_view_html(meta, ["a", "b", "c"])
    image = np.random.default_rng(0).random((8, 8, 3))
    with pytest.raises(probe.ProbeError, match=r"^maps must be a \{method: \[h, w\] map\} dict, "
                                               r"got Tensor: pass e\.g\. maps=\{'ig': heatmap\}$"):
        image_view_html(image, torch.rand(4, 4))
    assert image_view_html(image, {"ig": torch.rand(4, 4)}).html  # the fix named works
    with pytest.raises(probe.ProbeError, match=r"^scores\['score'\] must be numbers \[n\], one "
                                               r"per token, got str$"):
        token_view_html(["a", "b"], "ab")
    with pytest.raises(probe.ProbeError, match=r"^tokens is empty: pass at least one token"):
        token_view_html([], torch.rand(0))


def test_window_functions_name_a_wrong_block_part():
    """``probe.window_query_map(trace, 0, (0, 0))`` was ``AttributeError: 'int' object has no
    attribute 'grid'``; a float query reached torch's indexing. Each now says what to pass."""
    from tests.test_swin import _pixels, timm_swin

    block = probe.trace(timm_swin(), _pixels(32, 48)).windows[0]  # an 8x12 token grid
    with pytest.raises(probe.ProbeError, match=r"^window_query_map needs the block's "
                       r"WindowLayout as layout, got int: pass block\.layout"):
        probe.window_query_map(block.weights, 0, (0, 0))
    with pytest.raises(probe.ProbeError, match=r"^windows_to_image needs the block's window "
                       r"attention as a tensor, got WindowBlock: pass block\.weights"):
        probe.windows_to_image(block, block.layout)
    with pytest.raises(probe.ProbeError, match=r"^query must be \(row, col\) on the block's "
                                               r"8x12 token grid, got \(0\.5, 1\)$"):
        probe.window_query_map(block.weights, block.layout, (0.5, 1))
    got = probe.window_query_map(block.weights, block.layout, (1, 2))
    full = probe.windows_to_image(block.weights, block.layout, block.mask)
    torch.testing.assert_close(got, full[:, :, 1 * 12 + 2].reshape(2, -1, 8, 12))


def test_a_tokenizer_that_is_none_and_a_completeness_of_no_ig_result_are_named():
    """``tokenizer=5`` with token ids (not text) was ``AttributeError: 'int' object has no
    attribute 'convert_ids_to_tokens'`` from ``probe.trace`` and ``probe.generate``;
    ``probe.completeness(attribution)`` was ``AttributeError: ... 'target_input'``."""
    from tests._tiny import bert, bert_classifier, gpt2

    message = (r"^tokenizer must be a tokenizer, got int: pass the one probe\.load_model "
               r"returned \(model, tokenizer\)$")
    model, inputs = bert()
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, inputs, tokenizer=5)
    model, inputs = gpt2()
    with pytest.raises(probe.ProbeError, match=message):
        probe.generate(model, inputs["input_ids"][:1], tokenizer=5, max_new_tokens=1)
    model, inputs = bert_classifier()
    attr = probe.attribute(model, inputs, "ig", n_steps=2)
    for call in (probe.completeness, probe.check_completeness):
        with pytest.raises(probe.ProbeError, match=r"^completeness needs what probe\."
                           r"integrated_gradients\(\.\.\., return_delta=True\) returned, got "
                           r"Attribution$"):
            call(attr)
