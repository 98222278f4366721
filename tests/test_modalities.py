"""Speech models are refused in one line; models made of several models (a text tower with a
vision one: CLIP, SigLIP, vision-language models) are refused in one line naming their parts,
and each named part traces on its own, exact against its own eager ``output_attentions``."""

from __future__ import annotations

import copy
import re
import warnings
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe
from tests._tiny import assert_unchanged, snapshot

pytestmark = pytest.mark.filterwarnings("ignore")

_TOWER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
_VISION = dict(_TOWER, image_size=32, patch_size=8)


def _dual(model_type: str) -> Any:
    import transformers
    from transformers import AutoConfig, AutoModel

    transformers.logging.set_verbosity_error()
    cfg = AutoConfig.for_model(model_type, text_config=dict(_TOWER, vocab_size=128,
                                                            max_position_embeddings=32),
                               vision_config=_VISION)
    torch.manual_seed(0)
    return AutoModel.from_config(cfg).eval()


@pytest.mark.parametrize("model_type, cls", [("clip", "CLIPModel"), ("siglip", "SiglipModel")])
def test_dual_encoders_refused_naming_their_towers_which_trace_alone(model_type: str,
                                                                    cls: str) -> None:
    model = _dual(model_type)
    before = snapshot(model)
    text, vision = type(model.text_model).__name__, type(model.vision_model).__name__
    message = (f"{cls} combines several models (model.text_model: {text}, model.vision_model: "
               f"{vision}): probe traces one model at a time, not the joint forward; trace a "
               "part: probe.trace(model.text_model, input_ids, tokenizer=...) or "
               "probe.trace(model.vision_model, pixel_values)")
    ids = torch.randint(3, 100, (1, 6), generator=torch.Generator().manual_seed(0))
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for inputs in (ids, pixels, {"input_ids": ids, "pixel_values": pixels}):
        with pytest.raises(probe.UnsupportedModelError, match=re.escape(message)):
            probe.trace(model, inputs)
    assert_unchanged(model, before)

    for part, x, key in ((model.text_model, ids, "input_ids"),
                         (model.vision_model, pixels, "pixel_values")):
        eager = copy.deepcopy(part)
        eager.set_attn_implementation("eager")
        with torch.no_grad():
            want = torch.stack(eager(**{key: x}, output_attentions=True).attentions)
        assert_close(probe.trace(part, x).attentions, want, atol=1e-5, rtol=0)
    assert_unchanged(model, before)


def test_a_vision_language_model_is_refused_naming_its_language_model() -> None:
    import transformers
    from transformers import AutoConfig, AutoModelForImageTextToText

    transformers.logging.set_verbosity_error()
    text = dict(_TOWER, vocab_size=300, num_key_value_heads=2, head_dim=8)
    cfg = AutoConfig.for_model("gemma3", text_config=text, vision_config=_VISION,
                               mm_tokens_per_image=4)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForImageTextToText.from_config(cfg).eval()
    before = snapshot(model)
    with pytest.raises(probe.UnsupportedModelError,
                       match=re.escape("Gemma3ForConditionalGeneration combines several models "
                                       "(model.model.vision_tower: SiglipVisionModel, "
                                       "model.model.language_model: Gemma3TextModel)")):
        probe.trace(model, torch.randint(3, 100, (1, 5)))
    with pytest.raises(probe.UnsupportedModelError, match="Gemma3ForConditionalGeneration "
                                                          "combines several models"):
        probe.generate(model, torch.randint(3, 100, (1, 5)), max_new_tokens=1)
    assert_unchanged(model, before)
    trace = probe.trace(model.model.language_model, torch.randint(3, 100, (1, 5)))
    assert trace.family == "decoder" and trace.attentions.shape == (2, 1, 4, 5, 5)


_SPEECH = {
    "wav2vec2": ("input_values", dict(_TOWER, conv_dim=(8, 8), conv_kernel=(10, 3),
                                      conv_stride=(5, 2), num_conv_pos_embeddings=16,
                                      num_conv_pos_embedding_groups=2, vocab_size=16),
                 (1, 800)),
    "whisper": ("input_features", dict(d_model=32, encoder_layers=2, decoder_layers=2,
                                       encoder_attention_heads=4, decoder_attention_heads=4,
                                       encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=8,
                                       max_source_positions=16, vocab_size=128,
                                       max_target_positions=16, pad_token_id=0,
                                       bos_token_id=1, eos_token_id=2,
                                       decoder_start_token_id=1),
                (1, 8, 32)),
}


@pytest.mark.parametrize("model_type", sorted(_SPEECH))
def test_speech_models_are_refused_naming_their_audio_input(model_type: str) -> None:
    import transformers
    from transformers import AutoConfig, AutoModel

    transformers.logging.set_verbosity_error()
    key, kw, shape = _SPEECH[model_type]
    torch.manual_seed(0)
    model = AutoModel.from_config(AutoConfig.for_model(model_type, **kw)).eval()
    before = snapshot(model)
    message = (f"{type(model).__name__} is a speech model (its input is audio, {key}): probe "
               "captures text and vision models; audio is not supported yet")
    x = torch.randn(*shape)
    for call in (lambda: probe.trace(model, x), lambda: probe.trace(model, {key: x}),
                 lambda: probe.attribute(model, x, method="rollout")):
        with pytest.raises(probe.UnsupportedModelError, match=re.escape(message)):
            call()
    assert_unchanged(model, before)


def test_image_to_text_models_are_captured_and_attribute_names_the_encoder() -> None:
    """VisionEncoderDecoderModel (TrOCR, Donut-like): captured with its text decoder (the full
    checks are in test_image_to_text.py); its image encoder still traces alone, exactly;
    probe.attribute, which explains a classifier's prediction, refuses it naming both ways."""
    from transformers import (
        GPT2Config,
        ViTConfig,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
    )

    vision = ViTConfig(**_VISION)
    text = GPT2Config(vocab_size=128, n_embd=32, n_layer=2, n_head=4, add_cross_attention=True)
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(
        VisionEncoderDecoderConfig.from_encoder_decoder_configs(vision, text)).eval()
    before = snapshot(model)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    trace = probe.trace(model, x, decoder_inputs=torch.tensor([[2, 5]]))
    assert trace.family == "encoder-decoder" and trace.cross.attentions.shape[-2:] == (2, 17)
    message = ("probe.attribute explains one prediction of a classifier; "
               "VisionEncoderDecoderModel writes text from an image: trace it")
    with pytest.raises(probe.UnsupportedModelError, match=re.escape(message)):
        probe.attribute(model, x, "rollout")
    assert_unchanged(model, before)
    eager = copy.deepcopy(model.encoder)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        want = torch.stack(eager(pixel_values=x, output_attentions=True).attentions)
    assert_close(probe.trace(model.encoder, x).attentions, want, atol=1e-5, rtol=0)
    assert_close(trace.attentions, want, atol=1e-5, rtol=0)
