"""Reach: HuggingFace model families beyond the core ones, tiny random-init configs built
offline, each exact against its own eager ``output_attentions``, or refused clearly.

The core families (BERT, RoBERTa, DistilBERT, GPT-2, Llama, T5, BART, ALBERT, ViT) have their
full test batteries in ``test_capture.py``; this sweep holds what users load every day to the
first promise (captured == eager on the real tokens, the model left on SDPA), and keeps the
list of families whose attention probe cannot reach honest: their message says why.
"""

from __future__ import annotations

import copy
import re
import warnings
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe

_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              vocab_size=128, max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
              eos_token_id=2)
_GQA = dict(num_key_value_heads=2, head_dim=8)
_SEQ2SEQ = dict(vocab_size=128, d_model=32, encoder_layers=2, decoder_layers=2,
                encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
                eos_token_id=2, decoder_start_token_id=2, num_layers=2, num_decoder_layers=2,
                num_heads=4, d_kv=8, d_ff=64)

ENCODERS = {"bert": {}, "roberta": {}, "xlm-roberta": {}, "electra": {}, "camembert": {},
            "distilbert": {}, "modernbert": dict(global_attn_every_n_layers=2, local_attention=4,
                                                 cls_token_id=1, sep_token_id=2),
            # attention written by hand (probe/capture/adapters/_hf_hand.py)
            "deberta": {}, "deberta-v2": {}, "mpnet": {}, "roformer": {}, "megatron-bert": {},
            "rembert": {}, "convbert": {}, "ibert": {}, "xlm": {}, "flaubert": {}}
DECODERS = {"gpt2": {}, "llama": _GQA, "mistral": _GQA, "qwen2": _GQA, "qwen3": _GQA,
            "gemma": _GQA, "gemma2": _GQA, "gemma3_text": _GQA, "phi": {}, "phi3": _GQA,
            "mixtral": _GQA, "olmo2": _GQA, "gpt_neox": {}, "opt": {}, "gpt_bigcode": {},
            "starcoder2": _GQA, "qwen2_moe": _GQA, "smollm3": _GQA, "biogpt": {},
            # attention written by hand
            "bloom": {}, "falcon": {}, "gptj": {}, "codegen": {}, "xglm": {}, "openai-gpt": {},
            "mpt": {}, "gpt_neo": dict(attention_types=[[["global", "local"], 1]], window_size=4)}
SEQ2SEQ = ["t5", "mt5", "umt5", "bart", "mbart", "marian", "pegasus", "m2m_100", "blenderbot",
           "plbart", "fsmt", "mvp"]
#: attention written by hand and not hooked: refused (BigBird's block-sparse attention; LED
#: and Longformer, hooked as their full matrix: test_longformer.py)
NO_DISPATCH = {"big_bird": "encoder"}
#: only the encoder writes its attention by hand (LongT5's local attention): refused naming
#: what was found (BigBird-Pegasus: see test_hand_written.py)
NO_ENCODER = ["longt5"]


def _build(model_type: str, kind: str, extra: dict[str, Any] | None = None) -> Any:
    import transformers
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    transformers.logging.set_verbosity_error()
    kw = {**(_SEQ2SEQ if kind == "seq2seq" else _SMALL), **(extra or {})}
    if model_type in ("gptj", "codegen"):  # rotary dimensions within the 8-wide heads
        kw.update(rotary_dim=4)
    if model_type == "fsmt":
        kw.update(src_vocab_size=128, tgt_vocab_size=128, langs=["en", "de"])
    cls = {"encoder": AutoModel, "decoder": AutoModelForCausalLM,
           "seq2seq": AutoModelForSeq2SeqLM}[kind]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.from_config(AutoConfig.for_model(model_type, **kw)).eval()


def _inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 100, (2, 7), generator=g)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _check(model: Any, kind: str) -> None:
    inputs = _inputs()
    impl = model.config._attn_implementation
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    if eager.config._attn_implementation != "eager":  # Falcon's set_attn_implementation keeps SDPA
        eager.config._attn_implementation = "eager"
    dec = torch.randint(3, 100, (2, 5), generator=torch.Generator().manual_seed(1))
    extra = {"decoder_input_ids": dec} if kind == "seq2seq" else {}
    with torch.no_grad():
        ref = eager(**inputs, **extra, output_attentions=True)
    tr = probe.trace(model, inputs, **({"decoder_inputs": dec} if extra else {}))
    assert model.config._attn_implementation == impl
    real = inputs["attention_mask"].bool()[None, :, None, :, None]  # padded query rows: zero
    want = ref.encoder_attentions if kind == "seq2seq" else ref.attentions
    assert_close(tr.attentions, torch.stack(want) * real, atol=1e-5, rtol=0)
    if kind == "seq2seq":
        assert_close(tr.decoder.attentions, torch.stack(ref.decoder_attentions), atol=1e-5,
                     rtol=0)
        assert_close(tr.cross.attentions, torch.stack(ref.cross_attentions), atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_type", sorted(ENCODERS))
def test_encoders_exact(model_type: str) -> None:
    _check(_build(model_type, "encoder", ENCODERS[model_type]), "encoder")


@pytest.mark.parametrize("model_type", sorted(DECODERS))
def test_decoders_exact(model_type: str) -> None:
    _check(_build(model_type, "decoder", DECODERS[model_type]), "decoder")


@pytest.mark.parametrize("model_type", SEQ2SEQ)
def test_encoder_decoders_exact(model_type: str) -> None:
    _check(_build(model_type, "seq2seq"), "seq2seq")


@pytest.mark.parametrize("model_type", sorted(NO_DISPATCH))
def test_hand_written_attention_is_refused_clearly(model_type: str) -> None:
    model = _build(model_type, NO_DISPATCH[model_type])
    with pytest.raises(probe.UnsupportedModelError,
                       match=f"no attention modules found in {type(model).__name__}: .*open an "
                             "issue with the model name"):
        probe.trace(model, _inputs())


#: approximate attention (landmarks, hashing, multi-resolution blocks): refused by name
APPROXIMATE = {"nystromformer": "Nystromformer approximates softmax attention through landmark",
               "yoso": "YOSO replaces softmax attention with locality-sensitive-hashing",
               "mra": "MRA approximates softmax attention at several resolutions"}


@pytest.mark.parametrize("model_type", sorted(APPROXIMATE))
def test_approximate_attention_is_refused_naming_what_it_computes(model_type: str) -> None:
    from tests._tiny import assert_unchanged, snapshot

    model = _build(model_type, "encoder")
    before = snapshot(model)
    with pytest.raises(probe.UnsupportedModelError,
                       match=APPROXIMATE[model_type] + r".*: it never forms the \[query, key\] "
                             "attention matrix probe captures, not supported"):
        probe.trace(model, _inputs())
    assert_unchanged(model, before)


@pytest.mark.parametrize("model_type", NO_ENCODER)
def test_a_hand_written_encoder_is_refused_naming_what_was_found(model_type: str) -> None:
    model = _build(model_type, "seq2seq")
    with pytest.raises(probe.UnsupportedModelError,
                       match=rf"no encoder self-attention found in {type(model).__name__} "
                             r"\(only decoder \(2\) and cross \(2\) attention modules\)"):
        probe.trace(model, _inputs(), decoder_inputs=torch.tensor([[2, 5]] * 2))


#: HF vision transformers: (model type, extra config, tokens before the patches). Data2Vec-
#: Vision, YOLOS (tokens after the patches) and ViT-MAE (random masking): test_vision_layouts.py
VISION = {"vit": ({}, 1), "deit": ({}, 2), "beit": ({}, 1), "dinov2": ({}, 1),
          "dinov2_with_registers": (dict(num_register_tokens=4), 5),
          "dinov3_vit": (dict(num_register_tokens=4), 5), "clip_vision_model": ({}, 1),
          "siglip_vision_model": ({}, 0), "ijepa": ({}, 0), "vit_msn": ({}, 1)}


def _vision(model_type: str, extra: dict[str, Any]) -> Any:
    import transformers
    from transformers import AutoConfig, AutoModel

    transformers.logging.set_verbosity_error()
    cfg = AutoConfig.for_model(model_type, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=64, image_size=32,
                               patch_size=8, **extra)
    torch.manual_seed(0)
    return AutoModel.from_config(cfg).eval()


@pytest.mark.parametrize("model_type", sorted(VISION))
def test_vision_transformers_exact_with_their_prefix(model_type: str) -> None:
    extra, prefix = VISION[model_type]
    model = _vision(model_type, extra)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        ref = eager(pixel_values=x, output_attentions=True)
    tr = probe.trace(model, x)
    assert tr.grid == (4, 4) and tr.num_prefix_tokens == prefix
    assert_close(tr.attentions, torch.stack(ref.attentions), atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_type, extra", [
    ("videomae", dict(num_frames=4, tubelet_size=2)),
    ("vivit", dict(num_frames=4, tubelet_size=[2, 8, 8])),
    ("timesformer", dict(num_frames=4)),
])
def test_video_transformers_are_refused_naming_what_their_tokens_are(
    model_type: str, extra: dict[str, Any]
) -> None:
    """Videos in (``[batch, frames, channel, H, W]``) or a single image: one line before any
    forward, instead of a pixel-shape message or the model's own unpacking error."""
    from tests._tiny import assert_unchanged, snapshot

    model = _vision(model_type, extra)
    before = snapshot(model)
    message = (f"{type(model).__name__} is a video transformer: its tokens are space-time "
               "patches of 4 frames, not one image's patch grid; probe captures image and text "
               "models, video is not supported yet")
    for x in (torch.randn(1, 4, 3, 32, 32), torch.randn(1, 3, 32, 32)):
        with pytest.raises(probe.UnsupportedModelError, match=re.escape(message)):
            probe.trace(model, x)
    assert_unchanged(model, before)


@pytest.mark.parametrize("name, message", [
    ("cait_xxs24_224", r"Cait: CaiT's self-attention blocks attend over the patches alone and "
                       r"mix their heads after the softmax \(talking heads\), and its "
                       r"class-attention blocks have one query"),
    ("pit_ti_224", "PoolingVisionTransformer: PiT pools its tokens between stages"),
    ("crossvit_tiny_240", "CrossVit embeds its image with a ModuleList"),
    ("xcit_nano_12_p16_224", r"Xcit: XCiT's cross-covariance attention \(XCA\) attends between "
                             "channels, not tokens"),
    ("pvt_v2_b0", "PyramidVisionTransformerV2 embeds its image with a OverlapPatchEmbed"),
    ("convit_tiny", r"ConVit: ConViT's gated positional self-attention blocks \(GPSA\) attend "
                    "over the patches alone and its later blocks over CLS \\+ patches"),
])
def test_timm_layouts_beyond_one_token_sequence_are_refused(name: str, message: str) -> None:
    """CaiT's class attention (one query; its talking-heads blocks have no fused path) used
    to give a 2-layer trace of the class-attention blocks only; PiT, CrossViT, XCiT and PVT
    crashed with an AttributeError or a stack error; ConViT said it found no attention. Each
    is now one clear refusal naming what its attention is (gradient methods too, which read
    the geometry first), and the model is left as it was."""
    import timm

    from tests._tiny import assert_unchanged, snapshot

    small = {"cait_xxs24_224": {"img_size": 64},  # 4x4 patches + CLS
             "convit_tiny": dict(img_size=32, patch_size=8, embed_dim=48, depth=3,
                                 local_up_to_layer=2)}.get(name, {})
    model = timm.create_model(name, pretrained=False, num_classes=3, **small).eval()
    size = (small["img_size"],) * 2 if small else model.pretrained_cfg["input_size"][1:]
    before = snapshot(model)
    flags = [(m, m.fused_attn) for m in model.modules() if hasattr(m, "fused_attn")]
    with pytest.raises(probe.UnsupportedModelError, match=message):
        probe.trace(model, torch.randn(1, 3, *size))
    if name not in ("crossvit_tiny_240", "pvt_v2_b0"):
        with pytest.raises(probe.UnsupportedModelError, match=message):
            probe.attribute(model, torch.randn(1, 3, *size), method="saliency")
    assert_unchanged(model, before)
    assert all(m.fused_attn == flag for m, flag in flags)


def test_timm_hybrid_vit_takes_rgb_and_is_exact() -> None:
    """A hybrid ViT (ResNet stem, then patches of its feature map) takes 3-channel images: the
    channel check read the projection's input (the CNN's 64 channels) and refused RGB."""
    import timm

    model = timm.create_model("vit_tiny_r_s16_p8_224", pretrained=False, num_classes=3,
                              img_size=64).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    refs = []

    def softmax_of_qkv(mod: Any, args: tuple) -> None:  # independent: softmax(q k^T * scale)
        h = args[0]
        b, n, _ = h.shape
        qkv = mod.qkv(h).reshape(b, n, 3, mod.num_heads, mod.head_dim).permute(2, 0, 3, 1, 4)
        refs.append(((mod.q_norm(qkv[0]) * mod.scale) @ mod.k_norm(qkv[1]).transpose(-2, -1))
                    .softmax(-1))

    handles = [blk.attn.register_forward_pre_hook(softmax_of_qkv) for blk in model.blocks]
    try:
        with torch.no_grad():
            plain = model(x)
    finally:
        for h in handles:
            h.remove()
    tr = probe.trace(model, x)
    assert tr.grid == (2, 2) and tr.num_prefix_tokens == 1
    assert_close(tr.attentions, torch.stack(refs), atol=1e-5, rtol=0)
    assert_close(tr.output, plain, atol=1e-5, rtol=1e-5)
    with pytest.raises(probe.ProbeError, match="expects 3 channels, got 1"):
        probe.trace(model, torch.randn(1, 1, 64, 64))
