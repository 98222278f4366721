"""Image-to-text models (``VisionEncoderDecoderModel``: ViT/DeiT encoder + GPT-2, BERT or TrOCR
decoder), tiny and random-init from configs, loaded as users load them (SDPA on)."""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import probe
from tests._tiny import Boom, assert_unchanged, fails_late, snapshot

VOCAB = 64
_ENC = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=64)


def _decoder(kind: str) -> Any:
    from transformers import BertConfig, GPT2Config, TrOCRConfig

    if kind == "gpt2":
        return GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=16,
                          add_cross_attention=True, bos_token_id=1, eos_token_id=2)
    if kind == "bert":
        return BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=64, is_decoder=True,
                          add_cross_attention=True, max_position_embeddings=16)
    # TrOCR: 3 layers of another width (the encoder output is projected), its own attention
    return TrOCRConfig(vocab_size=VOCAB, d_model=48, decoder_layers=3, decoder_attention_heads=4,
                       decoder_ffn_dim=64, max_position_embeddings=16, bos_token_id=1,
                       eos_token_id=2)


def image_to_text(encoder: str = "vit", decoder: str = "gpt2", start: int | None = 1) -> Any:
    """A tiny ``VisionEncoderDecoderModel`` (SDPA, eval) with ``decoder_start_token_id=start``."""
    import transformers
    from transformers import (
        BeitConfig,
        DeiTConfig,
        ViTConfig,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
    )

    transformers.logging.set_verbosity_error()
    enc = {"deit": DeiTConfig, "beit": BeitConfig}.get(encoder, ViTConfig)(**_ENC)
    if encoder == "beit":
        enc.use_relative_position_bias = True
    torch.manual_seed(0)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, _decoder(decoder))
    model = VisionEncoderDecoderModel(config).eval()
    if start is not None:
        model.config.decoder_start_token_id = start
        model.config.pad_token_id = 0
        model.generation_config.decoder_start_token_id = start
        model.generation_config.pad_token_id = 0
        model.generation_config.eos_token_id = 2
    return model


def _pixels(batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


IDS = torch.tensor([[1, 5, 9, 7, 3]])
COMBOS = [("vit", "gpt2"), ("vit", "bert"), ("deit", "trocr"), ("beit", "gpt2")]


def _eager(model: Any, pixels: torch.Tensor, ids: torch.Tensor) -> Any:
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        return eager(pixel_values=pixels, decoder_input_ids=ids, output_attentions=True)


def _implementations(model: Any) -> list[str]:
    return [str(m.config._attn_implementation) for m in model.modules()
            if hasattr(m, "config")] + [str(model.config.encoder._attn_implementation),
                                        str(model.config.decoder._attn_implementation)]


# --------------------------------------------------------------------------- capture
@pytest.mark.parametrize(("encoder", "decoder"), COMBOS)
def test_three_stacks_equal_eager_output_attentions(encoder: str, decoder: str) -> None:
    """Encoder self-, decoder self- and cross-attention equal the model's own eager
    ``output_attentions=True`` to 1e-5; outputs unchanged; the model left as it was."""
    model = image_to_text(encoder, decoder)
    assert model.config.encoder._attn_implementation == "sdpa"  # TrOCR: eager only
    before, impls = snapshot(model), _implementations(model)
    x = _pixels()
    trace = probe.trace(model, x, decoder_inputs=IDS)
    want = _eager(model, x, IDS.expand(2, -1))
    assert_close(trace.attentions, torch.stack(want.encoder_attentions), atol=1e-5, rtol=0)
    assert_close(trace.decoder.attentions, torch.stack(want.decoder_attentions), atol=1e-5,
                 rtol=0)
    assert_close(trace.cross.attentions, torch.stack(want.cross_attentions), atol=1e-5, rtol=0)
    with torch.no_grad():
        plain = model(pixel_values=x, decoder_input_ids=IDS.expand(2, -1))
    assert_close(trace.output.logits, plain.logits, atol=1e-5, rtol=0)
    assert_unchanged(model, before)
    assert _implementations(model) == impls
    prefix = 2 if encoder == "deit" else 1  # DeiT: CLS and distillation token
    assert (trace.family, trace.grid, trace.num_prefix_tokens) == ("encoder-decoder", (4, 4),
                                                                    prefix)
    assert trace.cross.attentions.shape[-2:] == (5, prefix + 16)
    assert trace.special_tokens_mask[:, :prefix].all()
    assert not trace.special_tokens_mask[:, prefix:].any()
    assert_close(trace.cross.attentions.sum(-1), torch.ones(trace.cross.attentions.shape[:-1]))


def test_the_ways_to_pass_pixels_and_decoder_ids_agree() -> None:
    model = image_to_text()
    x = _pixels(1)
    ids = IDS
    ref = probe.trace(model, x, decoder_inputs=ids)
    for other in (
        probe.trace(model, pixel_values=x, decoder_input_ids=ids),
        probe.trace(model, x, decoder_input_ids=ids),
        probe.trace(model, {"pixel_values": x, "decoder_input_ids": ids}),
        probe.trace(model, {"pixel_values": x, "decoder_input_ids": ids,
                            "decoder_attention_mask": torch.ones_like(ids)}),
    ):
        assert_close(other.cross.attentions, ref.cross.attentions, atol=0, rtol=0)
        assert_close(other.decoder.attentions, ref.decoder.attentions, atol=0, rtol=0)
    start = probe.trace(model, x)  # default: the decoder start token alone
    assert start.cross.attentions.shape[-2] == 1
    assert_close(start.cross.attentions[..., 0, :], ref.cross.attentions[..., 0, :],
                 atol=1e-5, rtol=0)


def test_a_padded_decoder_batch_equals_eager_on_its_real_tokens() -> None:
    model = image_to_text()
    x = _pixels()
    ids = torch.tensor([[1, 5, 9, 7, 3], [1, 4, 6, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    trace = probe.trace(model, {"pixel_values": x, "decoder_input_ids": ids,
                                "decoder_attention_mask": mask})
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        want = eager(pixel_values=x, decoder_input_ids=ids, decoder_attention_mask=mask,
                     output_attentions=True)
    cross, dec = torch.stack(want.cross_attentions), torch.stack(want.decoder_attentions)
    assert_close(trace.cross.attentions[:, 0], cross[:, 0], atol=1e-5, rtol=0)
    assert_close(trace.cross.attentions[:, 1, :, :3], cross[:, 1, :, :3], atol=1e-5, rtol=0)
    assert_close(trace.decoder.attentions[:, 1, :, :3, :3], dec[:, 1, :, :3, :3], atol=1e-5,
                 rtol=0)
    assert not trace.cross.attentions[:, 1, :, 3:].any()  # padded rows: zero, as for text
    # the README's form, decoder_inputs=ids, takes the mask as a keyword (it was refused as
    # "decoder_attention_mask= without decoder_input_ids")
    same = probe.trace(model, x, decoder_inputs=ids, decoder_attention_mask=mask)
    assert_close(same.cross.attentions, trace.cross.attentions, atol=0, rtol=0)


def test_labels_with_decoder_ids_pass_through() -> None:
    model = image_to_text()
    x = _pixels(1)
    trace = probe.trace(model, x, decoder_inputs=IDS, labels=IDS)
    assert trace.output.loss is not None


@pytest.mark.parametrize("decoder", ["gpt2", "trocr"])
def test_no_trace_left_when_the_forward_raises(decoder: str) -> None:
    """Hooks, attention functions and implementations are restored also when the forward
    raises (in the decoder, after the attention ran), and again on a loop."""
    model = image_to_text("deit" if decoder == "trocr" else "vit", decoder)
    before, impls = snapshot(model), _implementations(model)
    x = _pixels(1)
    last = list(model.decoder.modules())[-1]
    with fails_late(last) as boom:
        with pytest.raises(boom):
            probe.trace(model, x, decoder_inputs=IDS)
    assert_unchanged(model, before)
    assert _implementations(model) == impls
    for _ in range(20):
        probe.trace(model, x, decoder_inputs=IDS)
    assert_unchanged(model, before)
    with torch.no_grad():
        out = model(pixel_values=x, decoder_input_ids=IDS, output_attentions=True)
    assert not out.encoder_attentions  # SDPA still on: no weights returned
    assert issubclass(boom, Boom)


def test_bad_inputs_are_refused_in_one_line() -> None:
    model = image_to_text()
    x = _pixels(1)
    cases = [
        (lambda: probe.trace(image_to_text(start=None), x),
         "VisionEncoderDecoderModel has no decoder_start_token_id (config or "
         "generation_config): pass decoder_inputs=ids [batch, target] (or "
         "decoder_input_ids=...), or set model.config.decoder_start_token_id"),
        (lambda: probe.trace(model, _pixels(1, 48), decoder_inputs=IDS),
         "the model expects 32x32 images, got 48x48: resize the image first"),
        (lambda: probe.trace(model, x[0], decoder_inputs=IDS),
         "pixel_values must be [batch, channel, height, width], got (3, 32, 32): use "
         "x.unsqueeze(0)"),
        (lambda: probe.trace(model, x, decoder_inputs=torch.tensor([[1, VOCAB]])),
         f"decoder token id {VOCAB} is outside the decoder's vocabulary"),
        (lambda: probe.trace(model, x, decoder_inputs=IDS[0]),
         "decoder_inputs must be [batch, seq], got shape (5,): use ids.unsqueeze(0)"),
        (lambda: probe.trace(model, x, decoder_inputs=IDS, decoder_input_ids=IDS),
         "the decoder's input is given twice"),
        (lambda: probe.trace(model, x, labels=IDS),
         "labels= without decoder inputs"),
        (lambda: probe.trace(model, {"pixel_values": x, "input_ids": IDS}),
         "unknown keys ['input_ids']"),
        (lambda: probe.trace(model, decoder_input_ids=IDS),
         "probe.trace needs the model's inputs"),
        (lambda: probe.trace(model, x, decoder_inputs=torch.ones(1, 40, dtype=torch.long)),
         "the decoder input is 40 tokens long but VisionEncoderDecoderModel accepts at most 16"),
    ]
    before = snapshot(model)
    for call, message in cases:
        with pytest.raises(probe.ProbeError) as info:
            call()
        text = str(info.value)
        assert message in text and "\n" not in text, text
    assert_unchanged(model, before)


def test_a_windowed_encoder_is_refused_naming_the_encoder_trace() -> None:
    import transformers
    from transformers import (
        SwinConfig,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
    )

    transformers.logging.set_verbosity_error()
    swin = SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1],
                      num_heads=[2, 2], window_size=4)
    model = VisionEncoderDecoderModel(
        VisionEncoderDecoderConfig.from_encoder_decoder_configs(swin, _decoder("trocr"))).eval()
    message = ("has a swin image encoder: its attention runs in windows over several stages, "
               "not over one patch grid")
    for call in (lambda: probe.trace(model, _pixels(1), decoder_inputs=IDS),
                 lambda: probe.generate(model, _pixels(1), max_new_tokens=2)):
        with pytest.raises(probe.UnsupportedModelError, match=re.escape(message)):
            call()


def test_attribute_is_refused_naming_trace_and_the_encoder() -> None:
    model = image_to_text()
    with pytest.raises(probe.UnsupportedModelError, match=re.escape(
            "probe.attribute explains one prediction of a classifier; VisionEncoderDecoderModel "
            "writes text from an image")):
        probe.attribute(model, _pixels(1), "rollout")


# --------------------------------------------------------------------------- generate
@pytest.mark.parametrize(("encoder", "decoder"), [("vit", "gpt2"), ("deit", "trocr")])
def test_generate_rows_equal_a_teacher_forced_trace(encoder: str, decoder: str) -> None:
    """Each generated token's cross-attention row over the encoder tokens equals one
    teacher-forced trace of the generated sequence; the geometry travels along."""
    model = image_to_text(encoder, decoder)
    before = snapshot(model)
    x = _pixels()
    gen = probe.generate(model, x, max_new_tokens=4)
    with torch.no_grad():
        plain = model.generate(pixel_values=x, max_new_tokens=4)
    assert torch.equal(gen.sequences, plain)
    assert_unchanged(model, before)
    with fails_late(list(model.decoder.modules())[-1]) as boom:
        with pytest.raises(boom):
            probe.generate(model, x, max_new_tokens=4)
    assert_unchanged(model, before)
    n = gen.num_generated
    forced = probe.trace(model, x, decoder_inputs=gen.sequences[:, :-1])
    assert_close(gen.cross.attentions, forced.cross.attentions[..., -n:, :], atol=1e-5, rtol=0)
    assert_close(gen.attentions[..., : gen.sequences.shape[1] - 1],
                 forced.decoder.attentions[..., -n:, :], atol=1e-5, rtol=0)
    assert_close(gen.encoder.attentions, forced.attentions, atol=1e-5, rtol=0)
    again = gen.to_trace()
    assert (again.grid, again.num_prefix_tokens) == (forced.grid, forced.num_prefix_tokens)
    assert_close(again.cross.attentions, forced.cross.attentions, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- analyzer
def test_token_patch_maps_shapes_sums_and_the_prefix_share() -> None:
    model = image_to_text("deit", "trocr")
    trace = probe.trace(model, _pixels(), decoder_inputs=IDS)
    maps = probe.token_patch_maps(trace, batch_index=1)
    assert maps.shape == (5, 4, 4) and maps.dtype == torch.float32
    share = probe.token_prefix_share(trace, batch_index=1)
    assert_close(maps.sum((-2, -1)) + share, torch.ones(5))  # CLS + distillation + patches
    want = trace.cross.attentions[:, 1].mean(1).mean(0)[:, 2:].reshape(5, 4, 4)
    assert_close(maps, want, atol=1e-6, rtol=0)
    last = probe.token_patch_maps(trace, layers=-1, head_fusion="max", prefix="renormalize")
    raw = trace.cross.attentions[2, 0].max(0).values[:, 2:]
    assert_close(last, (raw / raw.sum(-1, keepdim=True)).reshape(5, 4, 4), atol=1e-6, rtol=0)


def test_token_patch_maps_hand_checked_value() -> None:
    """One layer, heads [one-hot on patch (1, 2), uniform over the 17 keys]: mean fusion gives
    1/2 + 1/34 at (1, 2) and 1/34 elsewhere; the CLS share is 1/34."""
    from probe import AttentionStack

    model = image_to_text("vit", "gpt2")
    trace = probe.trace(model, _pixels(1), decoder_inputs=IDS[:, :1])
    att = torch.zeros(1, 1, 2, 1, 17)
    att[0, 0, 0, 0, 1 + 1 * 4 + 2] = 1.0
    att[0, 0, 1, 0, :] = 1 / 17
    hand = trace.replace(cross=AttentionStack("cross", att, ("x",), (0,), (0, 1),
                                              num_model_layers=1, num_heads=2))
    maps = probe.token_patch_maps(hand)
    want = torch.full((1, 4, 4), 1 / 34)
    want[0, 1, 2] += 0.5
    assert_close(maps, want, atol=1e-7, rtol=0)
    assert_close(probe.token_prefix_share(hand), torch.tensor([1 / 34]), atol=1e-7, rtol=0)
    scaled = probe.token_patch_maps(hand, prefix="renormalize")
    assert_close(scaled, want / (1 - 1 / 34), atol=1e-7, rtol=0)


def test_token_patch_maps_of_a_generation_equal_the_forced_trace() -> None:
    model = image_to_text("vit", "gpt2")
    x = _pixels()
    gen = probe.generate(model, x, max_new_tokens=3)
    forced = probe.trace(model, x, decoder_inputs=gen.sequences[:, :-1])
    n = gen.num_generated
    for b in (0, 1):
        assert_close(probe.token_patch_maps(gen, batch_index=b),
                     probe.token_patch_maps(forced, batch_index=b)[-n:], atol=1e-5, rtol=0)


def test_token_patch_maps_refuse_what_does_not_fit() -> None:
    model = image_to_text()
    trace = probe.trace(model, _pixels(1), decoder_inputs=IDS)
    vit = probe.trace(model.encoder, _pixels(1))
    cases = [
        (lambda: probe.token_patch_maps(vit), "needs an image-to-text trace"),
        (lambda: probe.token_patch_maps(trace, layers=5), "layer"),
        (lambda: probe.token_patch_maps(trace, layers=[0, -2]), "name a layer twice"),
        (lambda: probe.token_patch_maps(trace, head_fusion="median"), "unknown head_fusion"),
        (lambda: probe.token_patch_maps(trace, prefix="keep"), "prefix must be"),
        (lambda: probe.token_patch_maps(trace, batch_index=3), "batch"),
    ]
    for call, message in cases:
        with pytest.raises(probe.ProbeError, match=re.escape(message)):
            call()


# --------------------------------------------------------------------------- figures
def _captioner() -> tuple[Any, Any]:
    """ViT + GPT-2 decoder over a tiny byte-level tokenizer's vocabulary."""
    import transformers
    from transformers import (
        GPT2Config,
        ViTConfig,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
    )

    from tests._tokenizers import byte_level

    transformers.logging.set_verbosity_error()
    tok = byte_level(pad=True)
    text = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=32,
                      add_cross_attention=True, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        ViTConfig(**_ENC), text)).eval()
    model.config.decoder_start_token_id = 0
    model.generation_config.decoder_start_token_id = 0
    return model, tok


def _panel_titles(fig: Any) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.images]


def test_plot_cross_one_panel_per_written_token() -> None:
    from matplotlib.figure import Figure

    model, tok = _captioner()
    trace = probe.trace(model, _pixels(1), decoder_inputs="The cat sat", tokenizer=tok)
    fig = probe.plot(trace, "cross")
    assert isinstance(fig, Figure)
    written = list(trace.decoder_labels[0][1:])  # step t wrote token t + 1
    assert [t.split("\n")[0] for t in _panel_titles(fig)] == written
    assert all(t.split("\n")[1].startswith("CLS 0.") for t in _panel_titles(fig))
    assert "CLS left out" in fig._suptitle.get_text()
    maps = probe.token_patch_maps(trace)[:-1].numpy()
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == len(written) == maps.shape[0]
    fig.canvas.draw()


def test_plot_cross_of_a_generation_at_paper_widths() -> None:
    model, tok = _captioner()
    gen = probe.generate(model, _pixels(1), max_new_tokens=3, tokenizer=tok)
    for width, inches in (("single", 3.5), ("double", 7.0)):
        fig = probe.plot(gen, "cross", width=width, layers=-1, fusion="max")
        assert abs(fig.get_size_inches()[0] - inches) < 0.01
        assert len(_panel_titles(fig)) == gen.num_generated
        assert "decoder layer 1 \u00b7 heads max" in fig._suptitle.get_text().replace("\n",
                                                                                       " \u00b7 ")


def test_cross_view_refuses_what_does_not_fit() -> None:
    from probe.viewers._image_text import token_patches_view

    model = image_to_text()
    with pytest.raises(probe.ProbeError, match="needs an image-to-text trace"):
        probe.plot(probe.trace(model.encoder, _pixels(1)), "cross")
    with pytest.raises(probe.ProbeError, match="pass one of each per token"):
        token_patches_view(torch.rand(32, 32, 3), torch.rand(2, 4, 4), ["a"])
    with pytest.raises(probe.ProbeError, match="does not take option"):
        probe.plot(probe.trace(model, _pixels(1), decoder_inputs=IDS), "cross", head=2)


# --------------------------------------------------------------------------- HTML
def test_html_view_embeds_every_layer_and_head_and_escapes_tokens() -> None:
    from probe.viewers.html import decode_array, token_patches_html

    model = image_to_text("deit", "trocr")
    trace = probe.trace(model, _pixels(1), decoder_inputs=IDS)
    view = probe.show(trace, "cross")
    data = _page_data(view.html)
    maps = decode_array(data["maps"])  # [layer, head + mean, token, rows, cols] / each max
    assert maps.shape == (3, 5, 4, 4, 4)  # the last step's token is not in the trace
    want = trace.cross.attentions[1, 0, 2, 3, 2:].reshape(4, 4).numpy()
    scale = data["scale"][1][2][3]
    assert np.max(np.abs(maps[1, 2, 3] * scale - want)) <= scale / 510 + 1e-6
    assert_close(torch.tensor(data["prefix"][1][2][3], dtype=torch.float64),
                 trace.cross.attentions[1, 0, 2, 3, :2].sum().double(), atol=1e-6, rtol=0)
    assert data["tokens"] == ["step 0", "step 1", "step 2", "step 3"]
    hostile = token_patches_html(trace, title="<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in hostile.html
    some = _page_data(probe.show(trace, "cross", layers=[-1], heads=[1, 3]).html)
    assert decode_array(some["maps"]).shape == (1, 3, 4, 4, 4)
    assert (some["layers"], some["heads"]) == (["2"], ["1", "3"])
    with pytest.raises(probe.ProbeError, match="layer"):
        probe.show(trace, "cross", layers=[7])


def test_html_view_in_browser(tmp_path: Any) -> None:
    from _browser import XSS_TOKENS, canvas_sum, dataset, hover, open_clean, start_browser
    from selenium.webdriver.common.by import By

    drv = start_browser()
    try:
        model, tok = _captioner()
        gen = probe.generate(model, _pixels(1), max_new_tokens=3, tokenizer=tok)
        from probe.viewers.html import token_patches_view_html

        maps = probe.token_patch_maps(gen)[None, None].numpy()  # [1, 1, token, rows, cols]
        n = maps.shape[2]
        view = token_patches_view_html(_pixels(1)[0].clamp(0, 1), maps,
                                       (XSS_TOKENS * n)[:n], model_name=XSS_TOKENS[1])
        open_clean(drv, view, tmp_path, "i2t")
        chips = drv.find_elements(By.CSS_SELECTOR, ".p-toks span")
        assert [c.get_attribute("textContent") for c in chips] == (XSS_TOKENS * n)[:n]
        before = canvas_sum(drv, "canvas.p-scene")
        hover(drv, chips[-1])
        assert dataset(drv)["token"] == str(n - 1)
        assert canvas_sum(drv, "canvas.p-scene") != before
        chips[1].click()
        hover(drv, drv.find_element(By.CSS_SELECTOR, ".p-title"))
        assert dataset(drv)["token"] == "1"
        open_clean(drv, probe.viewers.html.token_patches_html(gen), tmp_path, "gen")
    finally:
        drv.quit()


def _page_data(html: str) -> dict:
    import json

    found = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S)
    assert found, "no data block"
    return json.loads(found.group(1))
