"""Negative cross-attention layers (and heads) count from the model's last DECODER layer
(head), everywhere cross layers are chosen: the stacks carry their model's counts.

An encoder-decoder's ``trace.num_model_layers`` is the encoder's; the cross view and the
DETR page's ``select_cross`` counted ``-1`` from the last layer kept instead, and
``gen.to_trace()`` gave the encoder trace the decoder's layer and head counts.
"""

from __future__ import annotations

import pytest
import torch

import probe
from probe.commands._pages import select_cross
from probe.viewers.html import cross_html
from tests._tiny import toy_marian

DECODER_INPUTS = torch.tensor([[0, 5, 6, 7]])


@pytest.fixture(scope="module")
def marian():
    """2 encoder layers x 4 heads, 3 decoder layers x 2 heads (cross-attention: 3 x 2)."""
    return toy_marian(decoder_layers=3, decoder_heads=2)


def _generate(model, tok, **kw):
    return probe.generate(model, "the big dog", tokenizer=tok, max_new_tokens=3,
                          eos_token_id=None, min_new_tokens=3, **kw)


def test_stacks_carry_their_models_counts(marian) -> None:
    model, tok = marian
    tr = probe.trace(model, "the big dog", tokenizer=tok, decoder_inputs=DECODER_INPUTS,
                     layers=[1])
    assert (tr.num_model_layers, tr.num_heads) == (2, 4)  # the encoder's
    assert (tr.encoder.num_model_layers, tr.encoder.num_heads) == (2, 4)
    assert (tr.cross.num_model_layers, tr.cross.num_heads) == (3, 2)  # the decoder's
    assert (tr.decoder.num_model_layers, tr.decoder.num_heads) == (3, 2)
    gen = _generate(model, tok, layers=[1])
    assert (gen.cross.num_model_layers, gen.cross.num_heads) == (3, 2)
    assert (gen.encoder.num_model_layers, gen.encoder.num_heads) == (2, 4)
    back = gen.to_trace()
    assert (back.num_model_layers, back.num_heads) == (2, 4)  # was (3, 2): the decoder's
    assert (back.cross.num_model_layers, back.cross.num_heads) == (3, 2)
    assert (back.decoder.num_model_layers, back.decoder.num_heads) == (3, 2)
    # a generation pickled before stacks kept counts (0: unknown) reads the encoder's from
    # what was kept, never the decoder's: head 3 of the encoder is there
    import dataclasses

    full = _generate(model, tok)
    old = dataclasses.replace(full, encoder=dataclasses.replace(full.encoder,
                                                                num_model_layers=0, num_heads=0))
    back = old.to_trace()
    assert (back.num_model_layers, back.num_heads) == (0, 0)
    assert back.layer_position(-1) == 1 and back.head_position(3) == 3
    assert probe.plot(back, "head", layer=1, head=3) is not None


@pytest.mark.parametrize("source", ["trace", "generation"])
def test_cross_view_counts_negative_layers_from_the_last_decoder_layer(marian, source) -> None:
    model, tok = marian
    if source == "trace":
        tr = probe.trace(model, "the big dog", tokenizer=tok, decoder_inputs=DECODER_INPUTS,
                         layers=[0, 1])
    else:
        tr = _generate(model, tok, layers=[0, 1]).to_trace()
    # -1 is decoder layer 2 (not kept), not the last kept layer 1
    with pytest.raises(probe.ProbeError, match=r"^layer -1 \(the decoder's layer 2\) was not "
                                               r"captured \(kept layers: \[0, 1\]\); capture "
                                               r"it again with layers=\[\.\.\.\] including 2"):
        cross_html(tr, layers=[-1])
    with pytest.raises(probe.ProbeError, match=r"^layer -4 is out of range: the decoder has 3 "
                                               r"layers \(use -3\.\.2; negative counts"):
        probe.show(tr, "cross", layers=[-4])
    assert cross_html(tr, layers=[-2]).html == cross_html(tr, layers=[1]).html
    assert cross_html(tr, layers=[-3, -2]).html == cross_html(tr, layers=[0, 1]).html
    # heads: the cross-attention's 2 heads, not the encoder's 4
    assert cross_html(tr, heads=[-1]).html == cross_html(tr, heads=[1]).html
    with pytest.raises(probe.ProbeError, match=r"^head -3 is out of range: the "
                                               r"cross-attention has 2 heads"):
        cross_html(tr, heads=[-3])


def test_select_cross_counts_from_the_last_decoder_layer(marian) -> None:
    model, tok = marian
    tr = probe.trace(model, "the big dog", tokenizer=tok, decoder_inputs=DECODER_INPUTS,
                     layers=[0, 1])
    kept = select_cross(tr, [-2], [-1])
    assert kept.cross.layer_indices == (1,) and kept.cross.head_indices == (1,)
    torch.testing.assert_close(kept.cross.attentions, tr.cross.attentions[1:, :, 1:])
    assert kept.cross.num_model_layers == 3  # carried by the smaller stack
    with pytest.raises(probe.ProbeError, match=r"^layers=: layer -1 \(the decoder's layer 2\) "
                                               r"was not captured \(kept layers: \[0, 1\]\); "):
        select_cross(tr, [-1], None)
    with pytest.raises(probe.ProbeError, match=r"^layers=: layer 3 is out of range: the decoder "
                                               r"has 3 layers \(use -3\.\.2; "):
        select_cross(tr, [3], None)
    assert select_cross(tr, [0, -3], None).cross.layer_indices == (0,)  # one layer, listed twice


def test_render_stack_counts_from_the_stacks_own_model_counts(marian) -> None:
    """``probe render head --stack cross --layer -1 --head -1``: the last decoder layer and
    the cross-attention's last head (the encoder has 2 layers x 4 heads, the decoder 3 x 2)."""
    from argparse import Namespace
    from types import SimpleNamespace

    from probe.commands.render._stacks import _Stack

    model, tok = marian
    tr = probe.trace(model, "the big dog", tokenizer=tok, decoder_inputs=DECODER_INPUTS)
    picked = {}
    for name in ("encoder", "decoder", "cross"):
        s = SimpleNamespace(trace=lambda: tr, model_name="marian",
                            args=Namespace(stack=name, layer=-1, head=-1))
        st = _Stack(s)
        picked[name] = (st.layer(s), st.head(s))
    assert picked == {"encoder": ((1, 1), (3, 3)), "decoder": ((2, 2), (1, 1)),
                      "cross": ((2, 2), (1, 1))}
    s = SimpleNamespace(trace=lambda: tr, model_name="marian",
                        args=Namespace(stack="cross", layer=0, head=2))
    with pytest.raises(probe.ProbeError, match=r"^head 2 is out of range: the cross stack has 2 "
                                               r"heads per layer \(use -2\.\.1; "):
        _Stack(s).head(s)


def test_render_stack_heads_never_fall_back_to_the_encoders(marian) -> None:
    """A stack that does not know its head count (0: e.g. built before stacks kept counts)
    was read on the TRACE's heads, the encoder's 4: ``--stack cross --head -1`` took head 3 of
    a 2-head cross-attention (an IndexError later, or the wrong head). Its own kept heads
    now decide; an averaged stack says so."""
    import dataclasses
    from argparse import Namespace
    from types import SimpleNamespace

    from probe.commands.render._stacks import _Stack

    model, tok = marian
    tr = probe.trace(model, "the big dog", tokenizer=tok, decoder_inputs=DECODER_INPUTS)
    unknown = tr.replace(cross=dataclasses.replace(tr.cross, num_heads=0))

    def stack(trace, head):
        s = SimpleNamespace(trace=lambda: trace, model_name="marian",
                            args=Namespace(stack="cross", layer=-1, head=head))
        return _Stack(s), s

    st, s = stack(unknown, -1)
    assert st.head(s) == (1, 1)  # was (3, 3): the encoder's last head
    st, s = stack(unknown, 3)
    with pytest.raises(probe.ProbeError, match=r"^head 3 was not captured \(kept heads: "
                                               r"\[0, 1\]\)"):
        st.head(s)  # was (3, 3), past the cross-attention's 2 heads
    averaged = tr.replace(cross=dataclasses.replace(
        tr.cross, attentions=tr.cross.attentions.mean(2, keepdim=True), head_indices=None))
    st, s = stack(averaged, 0)
    with pytest.raises(probe.ProbeError, match=r"^--head: the cross stack's heads were averaged "
                                               r"during capture \(one mean per layer\): drop "
                                               r"--head$"):
        st.head(s)  # was head 0 of the encoder's, whose heads were kept
