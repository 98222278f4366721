"""Inputs the text adapters used to pass on to the model unchecked: token_type_ids of another
shape or outside the model's token types, and decoder inputs of the wrong batch, type, length
or vocabulary. Each is one ProbeError line before the forward, or (one decoder row for a batch)
repeated over the batch with the same attention as given per item."""

from __future__ import annotations

import pytest
import torch

import probe
from tests._tiny import bart, bert, t5


def test_token_type_ids_of_another_shape_are_refused() -> None:
    model, inputs = bert()
    seq = inputs["input_ids"].shape[1]
    inputs = dict(inputs, token_type_ids=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(probe.ProbeError, match=rf"^token_type_ids \(2, 3\) does not match "
                                               rf"input_ids \(2, {seq}\): pass the token_type_ids"):
        probe.trace(model, inputs)


def test_token_type_ids_outside_the_token_types_are_refused() -> None:
    model, inputs = bert()
    types = model.config.type_vocab_size
    bad = torch.zeros_like(inputs["input_ids"])
    bad[1, 3] = types
    message = (rf"^token type id {types} is outside the model's {types} token types "
               rf"\(ids 0\.\.{types - 1}\)")
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, dict(inputs, token_type_ids=bad))
    with pytest.raises(probe.ProbeError, match="must be integers"):
        probe.trace(model, dict(inputs, token_type_ids=bad.float()))


def test_valid_token_type_ids_still_reach_the_model() -> None:
    model, inputs = bert()
    types = torch.zeros_like(inputs["input_ids"])
    types[:, 4:] = 1
    tr = probe.trace(model, dict(inputs, token_type_ids=types))
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            ref = model(**inputs, token_type_ids=types, output_attentions=True).attentions
    finally:
        model.set_attn_implementation("sdpa")
    mask = inputs["attention_mask"].bool()
    assert not torch.allclose(tr.attentions, probe.trace(model, inputs).attentions)  # they count
    for layer, attn in enumerate(ref):
        torch.testing.assert_close(tr.attentions[layer] * mask[:, None, :, None],
                                   attn * mask[:, None, :, None])


@pytest.mark.parametrize("build", [t5, bart])
def test_decoder_inputs_of_another_batch_are_refused(build) -> None:
    model, inputs = build()
    dec = inputs.pop("decoder_input_ids")
    three = torch.cat([dec, dec[:1]])
    with pytest.raises(probe.ProbeError, match=r"^decoder_inputs has 3 items but the inputs "
                                               r"have 2: pass one decoder input per input"):
        probe.trace(model, inputs, decoder_inputs=three)


def test_one_decoder_row_is_repeated_over_the_batch() -> None:
    """One decoder row for two sources gives the same attention as that row given twice."""
    model, inputs = t5()
    dec = inputs.pop("decoder_input_ids")
    one = probe.trace(model, inputs, decoder_inputs=dec[:1])
    two = probe.trace(model, inputs, decoder_inputs=dec[:1].repeat(2, 1))
    assert one.decoder.attentions.shape[1] == 2
    torch.testing.assert_close(one.decoder.attentions, two.decoder.attentions)
    torch.testing.assert_close(one.cross.attentions, two.cross.attentions)


@pytest.mark.parametrize("dec, message", [
    (torch.tensor([[0.0, 7.0]]), r"^decoder_inputs as ids must be an integer tensor"),
    (torch.tensor([0, 7]), r"^decoder_inputs must be \[batch, seq\], got shape \(2,\): use "
                           r"ids\.unsqueeze\(0\)"),
    (torch.zeros(2, 0, dtype=torch.long), r"^decoder_inputs \(2, 0\) hold no tokens"),
    (torch.tensor([[0, 7, 10_000]] * 2), r"^decoder token id 10000 is outside the decoder's "
                                         r"vocabulary"),
    (torch.tensor([[0, -1]] * 2), r"^decoder token id -1 is outside"),
    (torch.ones(2, 100, dtype=torch.long), r"^the decoder input is 100 tokens long but .* "
                                           r"accepts at most 64: shorten it"),
])
def test_bad_decoder_ids_are_one_line(dec, message) -> None:
    model, inputs = bart()
    inputs.pop("decoder_input_ids")
    with pytest.raises(probe.ProbeError, match=message) as err:
        probe.trace(model, inputs, decoder_inputs=dec)
    assert "\n" not in str(err.value)


def test_decoder_ids_in_the_mapping_are_checked_too() -> None:
    model, inputs = bart()
    inputs["decoder_input_ids"] = inputs["decoder_input_ids"].tolist()
    with pytest.raises(probe.ProbeError, match=r"^decoder_input_ids must be a tensor"):
        probe.trace(model, inputs)
    model, inputs = bart()
    inputs["decoder_attention_mask"] = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(probe.ProbeError, match=r"^decoder_attention_mask \(2, 3\) does not "
                                               r"match the decoder ids \(2, 5\)"):
        probe.trace(model, inputs)


def test_blank_decoder_text_is_refused() -> None:
    model, tok = probe.load_model("toy-mt")
    for dec, where in (("", ""), ("  ", ""), (["un arbre", " "], " at index 1")):
        with pytest.raises(probe.ProbeError, match=rf"^empty decoder text{where}: pass the "
                                                   "target words, or leave decoder_inputs out"):
            probe.trace(model, ["a tree", "a dog"] if isinstance(dec, list) else "a tree",
                        tokenizer=tok, decoder_inputs=dec)


def test_channels_last_pixels_get_the_permute_hint() -> None:
    from tests._tiny import hf_vit

    model, pixels = hf_vit()
    last = pixels.permute(0, 2, 3, 1).contiguous()  # [batch, height, width, channel]
    message = (r"^the model expects 3 channels, got 32 \(pixel_values \(2, 32, 32, 3\)\): the "
               r"channels look last .* use pixel_values\.permute\(0, 3, 1, 2\)$")
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, last)
    tr = probe.trace(model, last.permute(0, 3, 1, 2))  # the hint's fix works
    torch.testing.assert_close(tr.attentions, probe.trace(model, pixels).attentions)
