"""Odd inputs found by a ninth hunt on the error promise (forward keywords behind ``**kwargs``,
bare right-padded prompts, the evaluation's wording, view-only CLI options): each is one
``ProbeError`` line naming the problem and the fix, never a silently ignored or wrong input.
"""

from __future__ import annotations

import pytest
import torch

import probe


def test_a_keyword_the_vit_forward_does_not_use_is_refused():
    """HF ViT's forward takes ``**kwargs: Unpack[TransformersKwargs]``: ``bogus_arg=1`` was
    passed on and silently ignored; the typed dict's keys are its keywords now."""
    from tests._tiny import hf_vit

    model, pixels = hf_vit()
    with pytest.raises(probe.ProbeError, match=(
            r"^unknown option 'bogus_arg': it is neither a probe\.trace option nor a keyword "
            r"ViTForImageClassification\.forward takes; drop it \(probe\.trace options: "
            r"tokenizer, .*; ViTForImageClassification\.forward keywords: .*"
            r"interpolate_pos_encoding, .*output_hidden_states, .*pixel_values.*\)$")):
        probe.trace(model, pixels, bogus_arg=1)
    with pytest.raises(probe.ProbeError, match=r"did you mean 'interpolate_pos_encoding'\?$"):
        probe.trace(model, pixels, interpolate_pos_encodng=True)
    # the typed dict's keys and the named parameters still reach the model
    plain = probe.trace(model, pixels)
    hidden = probe.trace(model, pixels, output_hidden_states=True, interpolate_pos_encoding=True)
    torch.testing.assert_close(hidden.attentions, plain.attentions)


def test_keywords_of_untyped_kwargs_still_pass_through():
    """A forward whose ``**kwargs`` carry no annotation and that is not a transformers model
    passes other names through (the model judges them); a near-miss of a probe option is
    still refused. (GPT-2's unannotated ``**kwargs`` are judged since hunt 10:
    test_odd_inputs_hunt10.py.)"""
    from probe.capture.adapters._base import forward_keywords

    class Open(torch.nn.Module):
        def forward(self, input_ids, **kwargs):  # noqa: ANN001, ANN003, ANN201
            return input_ids

    assert forward_keywords(Open()) == (frozenset({"input_ids"}), True)
    from tests._tiny import gpt2

    model, inputs = gpt2()
    with pytest.raises(probe.ProbeError, match=r"did you mean 'layers'\?$"):
        probe.trace(model, inputs["input_ids"], laeyrs=[0])


def test_typed_kwargs_read_from_a_string_annotation():
    """A module with postponed annotations gives ``'Unpack[Kwargs]'`` as a string."""
    from typing import TypedDict

    from probe.capture.adapters._base import _typed_kwargs

    class Kwargs(TypedDict, total=False):
        alpha: int
        beta: float

    def forward(x, **kwargs):  # noqa: ANN001, ANN003
        return x

    forward.__globals__["_Hunt9Kwargs"] = Kwargs
    try:
        assert _typed_kwargs("Unpack[_Hunt9Kwargs]", forward) == {"alpha", "beta"}
        assert _typed_kwargs("Unpack[NoSuchName]", forward) is None
        assert _typed_kwargs("Any", forward) is None
    finally:
        del forward.__globals__["_Hunt9Kwargs"]


def _padded_gpt2(pad: int = 0, eos: int | None = None):  # noqa: ANN202
    from tests._tiny import gpt2

    model, _ = gpt2()
    model.generation_config.pad_token_id = pad
    model.config.pad_token_id = pad
    if eos is not None:
        model.generation_config.eos_token_id = eos
    return model


def test_bare_right_padded_ids_are_refused_by_generate():
    """Rows ending in the pad id without an attention mask: transformers masks them as right
    padding (and only warns); probe recorded them as real tokens. Refused with the fix."""
    model = _padded_gpt2()
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    before = ids.clone()
    with pytest.raises(probe.ProbeError, match=(
            r"^input_ids row 1 ends in the pad token id 0 and no attention_mask was given: that "
            r"is right padding, which decoder-only generation cannot continue from; left-pad the "
            r"rows and pass attention_mask= with 0 at the padding \(tokenizer\.padding_side = "
            r"'left' does both\)$")):
        probe.generate(model, ids, max_new_tokens=2)
    assert torch.equal(ids, before)
    # an EOS-valued pad id: only a batch that ends in it unevenly is padding
    model = _padded_gpt2(pad=98, eos=98)
    with pytest.raises(probe.ProbeError, match=r"^input_ids row 0 ends in the pad token id 98 "):
        probe.generate(model, torch.tensor([[5, 98], [5, 6]]), max_new_tokens=2)
    alone = probe.generate(model, torch.tensor([[98]]), max_new_tokens=2)  # unconditional
    assert alone.attention_mask.all()


def test_bare_left_padded_ids_are_masked_as_generate_masks_them():
    """Left padding in bare ids: ``generate`` infers the mask from the pad id, so the trace now
    masks the same tokens and equals the run given that mask explicitly."""
    model = _padded_gpt2()
    ids = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
    mask = (ids != 0).long()
    bare = probe.generate(model, ids, max_new_tokens=3)
    given = probe.generate(model, {"input_ids": ids, "attention_mask": mask}, max_new_tokens=3)
    assert torch.equal(bare.sequences, given.sequences)
    assert torch.equal(bare.attention_mask, given.attention_mask)
    assert not bare.attention_mask[1, :2].any()
    torch.testing.assert_close(bare.attentions, given.attentions)
    hf = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert torch.equal(bare.sequences, hf)


@pytest.mark.parametrize("call, message", [
    (lambda t: t.eval_sanity(object(), n=0), r"^n must be a positive integer, got 0$"),
    (lambda t: t.eval_faithfulness(object(), n=-2), r"^n must be a positive integer, got -2$"),
    (lambda t: t.eval_text(object(), object(), n=0, pairs=[{"id": "a", "first": "A.",
                                                          "second": "B."}]),
     r"^n must be a positive integer, or None for all of them, got 0$"),
    (lambda t: t.eval_coref(object(), object(), n=50),
     r"^n=50 is more than the 46 minimal pairs of the shipped data: use n=1\.\.46, or n=None "
     r"to use all of them$"),
], ids=["sanity", "faithfulness", "text", "coref"])
def test_the_eval_tasks_word_n_as_the_python_keyword(call, message):
    """``probe.evaluation.tasks.eval_sanity(model, n=0)`` said ``--n must be ...``, a flag the
    Python caller never typed; the CLI still says ``--n`` (tests/test_odd_inputs_hunt5.py)."""
    from probe.evaluation import tasks

    with pytest.raises(probe.ProbeError, match=message):
        call(tasks)


def test_the_cli_words_the_tasks_n_as_its_flag(capsys):
    from probe.cli import main

    assert main(["eval", "coref", "--n", "50"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--n 50 is more than the 46 minimal pairs of the shipped data: use "
                        "--n 1..46, or drop --n to use all of them"), err
    assert "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("view", ["heads", "rollout", "saliency"])
def test_occurrence_zero_on_a_view_that_ignores_it_is_refused(view, capsys):
    """``--occurrence 0`` (the default spelled out) was taken by every view, as if given to no
    effect; "not given" is ``None`` now, so any ``--occurrence`` outside coref and links is
    refused, naming them, before the model loads."""
    from probe.cli import main

    rc = main(["render", view, "--text", "The cat saw it.", "--occurrence", "0"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.endswith(f"--occurrence does not apply to the {view} view: it is used by the "
                        "coref and links views only; drop it"), err


def test_occurrence_zero_without_a_word_is_refused_on_links(capsys):
    from probe.cli import main
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._session import _check_applicable

    assert main(["render", "links", "--text", "The cat saw it.", "--occurrence", "0"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "--occurrence picks one of the repeats of --word: add --word, or drop --occurrence")
    _check_applicable(RenderArgs(view="links", text="The cat saw it.", word="it",
                                 occurrence=0))  # taken with --word
    _check_applicable(RenderArgs(view="heads", text="The cat saw it."))  # not given: taken


@pytest.mark.parametrize("channels, fix", [
    (1, r"a grayscale image; repeat its channel \(pixel_values\.expand\(-1, 3, -1, -1\)\) or "
        r"read the file with probe\.load_image\(path, model\)"),
    (4, r"an RGBA image; drop the alpha channel \(pixel_values\[:, :3\]\) or read the file with "
        r"probe\.load_image\(path, model\)"),
    (2, r"convert the image to 3 channels \(probe\.load_image\(path, model\) does\)"),
], ids=["gray", "rgba", "two"])
def test_a_wrong_channel_count_says_how_to_fix_it(channels, fix):
    """A grayscale or RGBA tensor was told only ``the model expects 3 channels, got 1``."""
    from tests._tiny import hf_vit

    model, pixels = hf_vit()
    odd = pixels[:, :1].repeat(1, channels, 1, 1)
    with pytest.raises(probe.ProbeError, match=(
            rf"^the model expects 3 channels, got {channels} \(pixel_values \(2, {channels}, 32, "
            rf"32\)\): {fix}$")):
        probe.trace(model, odd)
    if channels == 1:  # the hint's fix works
        expanded = odd.expand(-1, 3, -1, -1)
        torch.testing.assert_close(probe.trace(model, expanded).attentions,
                                   probe.trace(model, expanded.contiguous()).attentions)


def test_an_input_given_as_a_forward_keyword_is_refused():
    """``probe.trace(model, ids, attention_mask=mask)`` reached the model, while the trace
    recorded every token as real (its mask came from the bare ids): padded rows were kept and
    analyses read padding as words. An input repeated as a keyword (``input_ids=``,
    ``pixel_values=``) was Python's size error or silently replaced the inputs."""
    from tests._tiny import bert, hf_vit

    model, inputs = bert()
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    with pytest.raises(probe.ProbeError, match=(
            r"^attention_mask= is read from the inputs, not from a keyword \(probe checks it and "
            r"records the padding from it\): pass it in the inputs mapping, probe\.trace\(model, "
            r"\{'input_ids': ids, 'attention_mask': attention_mask\}\)$")):
        probe.trace(model, ids, attention_mask=mask)
    with pytest.raises(probe.ProbeError, match=r"^token_type_ids= is read from the inputs"):
        probe.trace(model, ids, token_type_ids=torch.zeros_like(ids))
    with pytest.raises(probe.ProbeError, match=r"^input_ids= repeats the inputs: pass it as the "
                                               r"inputs, probe\.trace\(model, input_ids\)"):
        probe.trace(model, inputs, input_ids=ids[:, :3])
    traced = probe.trace(model, {"input_ids": ids, "attention_mask": mask})  # the fix
    assert not traced.attention_mask[1, 6:].any()
    vit, pixels = hf_vit()
    with pytest.raises(probe.ProbeError, match=r"^pixel_values= repeats the inputs"):
        probe.trace(vit, pixels, pixel_values=pixels.flip(-1))


def test_the_decoder_input_given_twice_is_refused():
    """``decoder_inputs=`` beside a mapping holding ``decoder_input_ids`` was silently ignored,
    and ``decoder_input_ids=`` as a keyword bypassed the decoder checks and tokens."""
    from tests._tiny import t5

    model, inputs = t5()
    with pytest.raises(probe.ProbeError, match=(
            r"^the decoder's input is given twice, as decoder_inputs= and as the inputs' "
            r"'decoder_input_ids': pass one of them$")):
        probe.trace(model, inputs, decoder_inputs=inputs["decoder_input_ids"][:, :2])
    source = {k: v for k, v in inputs.items() if k != "decoder_input_ids"}
    with pytest.raises(probe.ProbeError, match=r"^decoder_input_ids= is read from the inputs, "
                                               r"not from a keyword: pass decoder_inputs="):
        probe.trace(model, source, decoder_input_ids=inputs["decoder_input_ids"])
    one = probe.trace(model, source, decoder_inputs=inputs["decoder_input_ids"])  # the fix
    both = probe.trace(model, inputs)
    torch.testing.assert_close(one.decoder.attentions, both.decoder.attentions)


def test_a_prompt_that_fills_the_positions_leaves_no_room():
    """A 64-token prompt on a 64-position GPT-2 was told ``use max_new_tokens <= 0``, a value
    max_new_tokens refuses; a longer prompt is refused by the trace's own length check."""
    from tests._tiny import gpt2

    model, _ = gpt2()
    with pytest.raises(probe.ProbeError, match=(
            r"^the prompt is 64 tokens, and GPT2LMHeadModel accepts at most 64 positions: no "
            r"room to generate; shorten the prompt to at most 63 tokens$")):
        probe.generate(model, torch.full((1, 64), 5), max_new_tokens=1)
    with pytest.raises(probe.ProbeError, match=r"use max_new_tokens <= 1 or a shorter prompt$"):
        probe.generate(model, torch.full((1, 63), 5), max_new_tokens=2)
    last = probe.generate(model, torch.full((1, 63), 5), max_new_tokens=1)
    assert last.sequences.shape == (1, 64)


@pytest.mark.parametrize("view", ["heads", "saliency"])
def test_an_empty_text_is_named_as_blank(view, capsys):
    """``--text ""`` was read as no ``--text`` at all: "the heads view on minilm needs --text",
    to a user who had passed one."""
    from probe.cli import main

    assert main(["render", view, "--text", "", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith('--text is blank: pass a sentence, e.g. --text "The cat sat."'), err
