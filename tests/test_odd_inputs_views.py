"""Odd inputs to the views (``probe.plot``, ``probe.show``), ``probe.alignment`` and
``probe.group_words``, found by an attack on the error promise.

A NaN in a trace drawn by ``probe.plot`` was "attn contains NaN or inf: replace them first,
e.g. with torch.nan_to_num", which a frozen trace does not allow and which named no layer or
head; ``probe.show`` said only "the view can only show finite numbers". Both now name the
first bad value and a fix that works on a frozen trace.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import probe

TEXT = "The cat sat on the mat."


@pytest.fixture(scope="module")
def trace(minilm):
    model, tokenizer = minilm
    return probe.trace(model, TEXT, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def nan_trace(trace):
    attn = trace.attentions.clone()
    attn[2, 0, 3, 4, 1] = float("nan")
    return trace.replace(attentions=attn)


FIX = r"to draw it anyway, view trace\.replace\(attentions=torch\.nan_to_num\(trace\.attentions\)\)"


@pytest.mark.parametrize("view, options", [
    ("model", {}), ("heads", {"layer": 2}), ("head", {"layer": 2, "head": 3}),
    ("links", {"layer": 2}),
], ids=["model", "heads", "head", "links"])
def test_plot_names_the_nan_and_a_fix_that_works(nan_trace, view, options):
    with pytest.raises(probe.ProbeError,
                       match=rf"^probe\.plot '{view}' view: the captured attention is not finite: "
                             rf"NaN at layer 2, head 3 .*query 4, key 1.*{FIX}") as err:
        probe.plot(nan_trace, view, **options)
    assert "\n" not in str(err.value)
    if view != "model":  # the 6 x 12 model view takes seconds to draw; the others prove the fix
        fixed = nan_trace.replace(attentions=torch.nan_to_num(nan_trace.attentions))  # as named
        assert probe.plot(fixed, view, **options) is not None


def test_plot_draws_a_finite_head_of_a_trace_with_a_nan_elsewhere(nan_trace):
    fig = probe.plot(nan_trace, "head", layer=2, head=0)  # the NaN is in head 3
    assert fig.axes


def test_links_check_only_the_head_they_draw(nan_trace, trace):
    # plot 'links' with head=0 and link_view(heads=[0]) refused the NaN of head 3
    from probe.viewers import link_view

    fig = probe.plot(nan_trace, "links", layer=2, head=0)
    want = probe.plot(trace, "links", layer=2, head=0)  # the same head, of the finite trace
    got, ref = fig.axes[0].collections, want.axes[0].collections
    assert [c.get_gid() for c in got] == [c.get_gid() for c in ref] == ["head 0"]
    for a, b in zip(got, ref):
        assert all(torch.equal(torch.tensor(x), torch.tensor(y))
                   for x, y in zip(a.get_segments(), b.get_segments()))
    with pytest.raises(probe.ProbeError, match=r"^probe\.plot 'links' view: .*NaN at layer 2, "
                                                r"head 3 "):
        probe.plot(nan_trace, "links", layer=2, head=3)
    layer = nan_trace.attentions[2, 0]  # [head, query, key], NaN in head 3
    assert link_view(layer, heads=[0]).axes[0].collections
    with pytest.raises(probe.ProbeError, match=r"^attn head 3 contains NaN or inf: replace them "
                                                r"first, e\.g\. with torch\.nan_to_num, or draw "
                                                r"other heads \(heads=\)$"):
        link_view(layer, heads=[0, 3])


def test_show_names_the_nan_and_a_fix(nan_trace):
    with pytest.raises(probe.ProbeError, match=rf"^the HTML attention view: .*NaN at layer 2, "
                                                rf"head 3 .*{FIX}"):
        probe.show(nan_trace, "heads")
    assert probe.show(nan_trace, "heads", layers=[1]) is not None  # layer 1 is finite


def test_show_cross_names_the_inf_and_a_fix():
    mt = probe.load_model("toy-mt")
    trace = probe.generate(mt.model, "the tiny dog", tokenizer=mt.processor,
                           max_new_tokens=3).to_trace()
    attn = trace.cross.attentions.clone()
    attn[1, 0, 2, 1, 0] = float("inf")
    bad = trace.replace(cross=dataclasses.replace(trace.cross, attentions=attn))
    with pytest.raises(probe.ProbeError, match=r"^the HTML cross view: .*\+inf at layer 1, head 2 "
                                                r"of the cross-attention .*nan_to_num"):
        probe.show(bad, "cross")
    fixed = bad.replace(cross=dataclasses.replace(
        bad.cross, attentions=torch.nan_to_num(bad.cross.attentions)))
    assert probe.show(fixed, "cross") is not None


def test_plot_head_of_an_averaged_trace_says_heads_were_averaged(minilm):
    model, tokenizer = minilm
    avg = probe.trace(model, TEXT, tokenizer=tokenizer, average_heads=True)
    with pytest.raises(probe.ProbeError, match=r"^heads were averaged during capture"):
        probe.plot(avg, "head", head=1)  # was "the 'head' view does not take option(s) ['head']"
    assert probe.plot(avg, "head") is not None


@pytest.fixture(scope="module")
def toy_gen():
    mt = probe.load_model("toy-mt")
    return probe.generate(mt.model, "the tiny dog", tokenizer=mt.processor, max_new_tokens=5)


def test_alignment_of_a_trace_names_the_generation_result(toy_gen):
    # was AttributeError: 'Trace' object has no attribute 'prompt_words'
    with pytest.raises(probe.ProbeError, match=r"^alignment takes the GenerationTrace that "
                                                r"probe\.generate returns .*not gen\.to_trace\(\)"):
        probe.alignment(toy_gen.to_trace())


def test_random_alignment_checks_its_arguments(toy_gen):
    with pytest.raises(probe.ProbeError, match=r"^random_alignment takes an Alignment"):
        probe.random_alignment(toy_gen)  # was AttributeError: ... has no attribute 'shape'
    with pytest.raises(probe.ProbeError, match=r"^generator must be a torch\.Generator or None"):
        probe.random_alignment(probe.alignment(toy_gen), 0)  # was a TypeError from torch.rand


@pytest.mark.parametrize("words", [3, None], ids=["int", "None"])
def test_group_words_of_a_non_string_is_one_line(trace, words):
    with pytest.raises(probe.ProbeError, match=r"^words must be a string or a list of strings"):
        probe.group_words(trace, words)  # was TypeError: ... object is not iterable


def test_show_counts_negative_layers_and_heads_from_the_model_as_plot_does(minilm):
    # a trace of layers [1, 3], heads [0, 5] of MiniLM (6 layers x 12 heads): layers=[-1] used to
    # show layer 3 (the last kept) where probe.plot's layer=-1 and probe.trace's mean layer 5
    model, tokenizer = minilm
    sel = probe.trace(model, TEXT, tokenizer=tokenizer, layers=[1, 3], heads=[0, 5])
    with pytest.raises(probe.ProbeError, match=r"^layer -1 \(the model's layer 5\) was not "
                                                r"captured \(kept layers: \[1, 3\]\); capture "
                                                r"it again with layers=\[\.\.\.\] including 5"):
        probe.show(sel, "model", layers=[-1])
    with pytest.raises(probe.ProbeError, match=r"^layer -1 \(the model's layer 5\) was not "
                                                r"captured \(kept layers: \[1, 3\]\)"):
        probe.plot(sel, "head", layer=-1)  # the same reading in both
    page = probe.show(sel, "model", layers=[-3], heads=[-7]).html  # layer 3, head 5
    assert page == probe.show(sel, "model", layers=[3], heads=[5]).html
    with pytest.raises(probe.ProbeError, match=r"^head 12 is out of range: the model has 12 heads"):
        probe.show(sel, "model", heads=[12])


def test_show_heads_of_an_averaged_trace_says_heads_were_averaged(minilm):
    model, tokenizer = minilm
    avg = probe.trace(model, TEXT, tokenizer=tokenizer, average_heads=True)
    with pytest.raises(probe.ProbeError, match=r"^heads were averaged during capture"):
        probe.show(avg, "heads", heads=[0])  # was "head 0 was not captured: the trace has [-1]"
    mt = probe.load_model("toy-mt")
    gen = probe.generate(mt.model, "the tiny dog", tokenizer=mt.processor, max_new_tokens=2,
                         average_heads=True)
    with pytest.raises(probe.ProbeError, match=r"^heads were averaged during capture"):
        probe.show(gen.to_trace(), "cross", heads=[0])  # the same for the cross view


@pytest.mark.parametrize("limits, pattern", [
    ({"vmin": 1, "vmax": 0}, r"^the colour scale would run from 1 to 0 \(vmin=1, vmax=0\): vmin "
                             r"must be below vmax"),
    ({"vmax": float("nan")}, r"^vmax must be a finite number, got nan"),
    ({"vmin": "a"}, r"^vmin must be a number"),
], ids=["inverted", "nan", "string"])
def test_colour_limits_are_checked(trace, limits, pattern):
    # an inverted or NaN scale drew (and saved) a figure whose colours meant nothing; a string
    # was a bare ValueError from float()
    with pytest.raises(probe.ProbeError, match=pattern):
        probe.plot(trace, "head", **limits)
    assert probe.plot(trace, "head", vmin=0.0, vmax=0.5) is not None


@pytest.mark.parametrize("window", [3, (0.5, 3)], ids=["int", "float"])
def test_show_window_must_be_two_integer_positions(trace, window):
    # 3 was TypeError: 'int' object is not subscriptable; (0.5, 3) was silently (0, 3)
    with pytest.raises(probe.ProbeError, match=r"^window must be \(start, stop\): two integer "
                                                r"token positions"):
        probe.show(trace, "model", window=window)


@pytest.mark.parametrize("batch_index", [1.0, True, None], ids=["float", "bool", "None"])
def test_show_batch_index_must_be_an_integer(trace, batch_index):
    # the heads and model views raised IndexError / TypeError from the tensor indexing
    with pytest.raises(probe.ProbeError, match=r"^batch_index must be an integer"):
        probe.show(trace, "heads", batch_index=batch_index)


def test_show_of_a_tensor_or_an_alignment_names_what_it_takes(trace, toy_gen):
    # was "pass inputs= (the text or image) when showing a model": a tensor is no model
    with pytest.raises(probe.ProbeError, match=r"^probe\.show\('heads'\) takes a probe Trace, "
                                                r"or a model \(with inputs=\), got Tensor"):
        probe.show(trace.attentions, "heads")
    with pytest.raises(probe.ProbeError, match=r"got Alignment: .*probe\.show\(al, 'alignment'\)"):
        probe.show(probe.alignment(toy_gen), "heads")


def test_show_of_an_empty_alignment_says_the_generation_was_empty():
    mt = probe.load_model("toy-mt")
    eos = mt.model.generation_config.eos_token_id
    eos = eos if isinstance(eos, int) else eos[0]
    gen = probe.generate(mt.model, "the tiny dog", tokenizer=mt.processor, max_new_tokens=5,
                         forced_bos_token_id=eos)  # ends on its first token
    al = probe.alignment(gen)  # an honest empty alignment: AER counts it as no links
    assert al.target_words == () and al.links(1) == frozenset()
    # was "attn is empty: pass at least one layer, head and token"
    with pytest.raises(probe.ProbeError, match=r"^this alignment has no target words \(an empty "
                                                r"generation"):
        probe.show(al, "alignment")


def test_plot_batch_index_range_names_the_negative_indices_it_takes(minilm):
    model, tokenizer = minilm
    two = probe.trace(model, [TEXT, "Hi"], tokenizer=tokenizer)
    assert probe.plot(two, "head", batch_index=-2) is not None  # taken: the first item
    with pytest.raises(probe.ProbeError, match=r"^batch_index must be in 0\.\.1 \(or -2\.\.-1 "
                                                r"from the end\), got -3$"):
        probe.plot(two, "head", batch_index=-3)  # said "in 0..1", hiding that -2 works


@pytest.mark.parametrize("view", ["heads", "coref"])
def test_show_batch_index_counts_from_the_end_as_plot_does(minilm, view):
    # show said "batch_index must be an integer in 0..1, got -1" where plot took -1
    model, tokenizer = minilm
    two = probe.trace(model, ["The cat saw the dog and it ran.", "A bird sang and then it flew."],
                      tokenizer=tokenizer)
    last = probe.show(two, view, batch_index=-2).html
    assert last == probe.show(two, view, batch_index=0).html
    assert last != probe.show(two, view, batch_index=1).html
    with pytest.raises(probe.ProbeError, match=r"^batch_index must be in 0\.\.1 \(or -2\.\.-1 "
                                                r"from the end\), got -3$"):
        probe.show(two, view, batch_index=-3)
