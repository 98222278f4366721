"""Capture: exactness against eager references, unchanged outputs, no trace left behind."""

from __future__ import annotations

import copy
import gc
import tracemalloc
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe
from tests._tiny import HF_TEXT, TIMM, hf_vit

HF_ALL = {**HF_TEXT, "hf_vit": hf_vit}
# builders whose example batch pads item 1 (the causal LMs and the ViT have no padding)
PADDED = {"bert", "roberta", "distilbert", "t5", "bart", "albert"}


def _call(model, inputs):
    return model(**inputs) if isinstance(inputs, dict) else model(inputs)


def _first(output):
    if isinstance(output, torch.Tensor):
        return output
    for key in ("logits", "last_hidden_state"):
        if getattr(output, key, None) is not None:
            return getattr(output, key)
    raise AssertionError("no tensor output")


def _hf_reference(model, inputs):
    """HF's own output_attentions=True under eager attention, on a copy of the model."""
    ref = copy.deepcopy(model)
    ref.set_attn_implementation("eager")
    kwargs = inputs if isinstance(inputs, dict) else {"pixel_values": inputs}
    with torch.no_grad():
        return ref(**kwargs, output_attentions=True)


def _real_rows(attn, mask):
    """Zero query rows of padding positions: [layer, batch, head, q, k]."""
    return attn * mask[None, :, None, :, None].to(attn.dtype)


def _state(model):
    hooks = []
    for m in model.modules():
        hooks.append(
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
             len(getattr(m, "_forward_hooks_with_kwargs", {})))
        )
    configs = []
    if hasattr(model, "config"):
        from probe.capture.adapters._hf_sites import _configs_of

        configs = [(id(c), c._attn_implementation) for c in _configs_of(model)]
    flags = [getattr(m, "fused_attn", None) for m in model.modules()]
    return hooks, configs, flags


def _registries():
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    return dict(AttentionInterface._global_mapping), dict(AttentionMaskInterface._global_mapping)


@pytest.mark.parametrize("name", sorted(HF_ALL))
def test_hf_attention_equals_eager_output_attentions(name):
    model, inputs = HF_ALL[name]()
    assert model.config._attn_implementation == "sdpa"
    ref = _hf_reference(model, inputs)
    tr = probe.trace(model, inputs)
    mask = tr.attention_mask
    has_encoder = hasattr(ref, "encoder_attentions") and ref.encoder_attentions
    enc_ref = ref.encoder_attentions if has_encoder else ref.attentions
    assert_close(tr.attentions, _real_rows(torch.stack(enc_ref), mask), atol=1e-5, rtol=0)
    if tr.family == "encoder-decoder":
        assert_close(tr.decoder.attentions, torch.stack(ref.decoder_attentions), atol=1e-5, rtol=0)
        assert_close(tr.cross.attentions, torch.stack(ref.cross_attentions), atol=1e-5, rtol=0)
        assert tr.cross.kind == "cross"
        assert tr.cross.attentions.shape[-1] == tr.attentions.shape[-1]
    # rows of real queries sum to 1, padded keys carry no weight
    sums = tr.attentions.sum(-1)
    real = mask[None, :, None, :].expand_as(sums)
    assert_close(sums[real], torch.ones_like(sums[real]), atol=1e-5, rtol=0)
    assert bool((~mask).any()) == (name in PADDED)  # the padding check below is not vacuous
    for b in range(mask.shape[0]):
        assert torch.all(tr.attentions[:, b][..., ~mask[b]] == 0)


@pytest.mark.parametrize("name", sorted(HF_ALL))
def test_hf_outputs_unchanged_and_model_restored(name):
    model, inputs = HF_ALL[name]()
    before = _state(model)
    regs = _registries()
    with torch.no_grad():
        plain = _first(_call(model, inputs))
    tr = probe.trace(model, inputs)
    assert_close(_first(tr.output), plain, atol=1e-5, rtol=1e-5)
    assert _state(model) == before
    assert _registries() == regs
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        after = _first(_call(model, inputs))
    assert torch.equal(after, plain)


def _timm_reference(model, x):
    """Independent reference: softmax(q k^T * scale) from each block's qkv projection."""
    refs = []

    def pre_hook(mod, args):
        (h,) = args[:1]
        b, n, _ = h.shape
        qkv = mod.qkv(h).reshape(b, n, 3, mod.num_heads, mod.head_dim).permute(2, 0, 3, 1, 4)
        q, k = mod.q_norm(qkv[0]), mod.k_norm(qkv[1])
        refs.append(((q * mod.scale) @ k.transpose(-2, -1)).softmax(-1))

    handles = [blk.attn.register_forward_pre_hook(pre_hook) for blk in model.blocks]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return torch.stack(refs)


@pytest.mark.parametrize("name", ["vit", "vit_nonsquare", "deit_distilled", "vit_registers"])
def test_timm_attention_equals_unfused_softmax(name):
    model, x = TIMM[name]()
    ref = _timm_reference(model, x)
    tr = probe.trace(model, x)
    assert_close(tr.attentions, ref, atol=1e-5, rtol=0)


def _softmax_reference(model, x):
    """Independent reference for EVA/BEiT (rope, relative position bias): run the model's own
    unfused path and record every softmax it computes (test-only patch, restored)."""
    recorded = []
    original = torch.Tensor.softmax

    def recording(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        recorded.append(out.detach().clone())
        return out

    modules = [m for m in model.modules() if hasattr(m, "fused_attn")]
    for m in modules:
        m.fused_attn = False
    torch.Tensor.softmax = recording
    try:
        with torch.no_grad():
            model(x)
    finally:
        torch.Tensor.softmax = original
        for m in modules:
            m.fused_attn = True
    return torch.stack(recorded)


@pytest.mark.parametrize("name", ["eva", "beit"])
def test_timm_rope_and_relative_bias_models_equal_their_unfused_softmax(name):
    model, x = TIMM[name]()
    ref = _softmax_reference(model, x)
    tr = probe.trace(model, x)
    assert ref.shape == tr.attentions.shape
    assert_close(tr.attentions, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_outputs_unchanged_flags_restored(name):
    model, x = TIMM[name]()
    flags = [m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")]
    assert all(flags), "timm creates fused attention by default"
    before = _state(model)
    with torch.no_grad():
        plain = model(x)
    tr = probe.trace(model, x)
    assert_close(tr.output, plain, atol=1e-5, rtol=1e-5)
    assert _state(model) == before
    sums = tr.attentions.sum(-1)
    assert_close(sums, torch.ones_like(sums), atol=1e-5, rtol=0)
    rows, cols = tr.grid
    assert tr.attentions.shape[-1] == tr.num_prefix_tokens + rows * cols
    assert tr.image_size == tuple(x.shape[-2:])
    assert tr.special_tokens_mask[:, : tr.num_prefix_tokens].all()


def test_timm_geometry_from_the_model():
    assert probe.trace(*TIMM["vit_nonsquare"]()).grid == (4, 6)
    assert probe.trace(*TIMM["deit_distilled"]()).num_prefix_tokens == 2
    assert probe.trace(*TIMM["vit_registers"]()).num_prefix_tokens == 5


def test_other_windowed_models_are_a_clear_not_supported_error():
    import timm

    # Swin v1 and v2 are captured (tests/test_swin.py, tests/test_swin_v2.py); timm's separate
    # swinv2_cr implementation is not
    model = timm.create_model("swinv2_cr_tiny_224", pretrained=False, img_size=(32, 32),
                              embed_dim=16, depths=(1, 1), num_heads=(2, 2), window_size=4,
                              num_classes=3).eval()
    with pytest.raises(probe.UnsupportedModelError, match="not supported yet.*swinv2_"):
        probe.trace(model, torch.randn(1, 3, 32, 32))


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("name", ["bert", "t5", "vit"])
def test_forward_that_raises_leaves_no_trace(name):
    model, inputs = {**HF_ALL, **TIMM}[name]()
    before = _state(model)
    regs = _registries()
    # make the last attention layer raise in the middle of the forward pass
    blocks = ("BertSelfOutput", "T5LayerFF", "Mlp")
    target = [m for m in model.modules() if type(m).__name__ in blocks][-1]

    def explode(*_):
        raise _Boom("forward failed")

    handle = target.register_forward_pre_hook(explode)
    try:
        with pytest.raises(_Boom):
            probe.trace(model, inputs)
    finally:
        handle.remove()
    assert _state(model) == before
    assert _registries() == regs
    # and the model still captures normally afterwards
    assert probe.trace(model, inputs).attentions is not None


def _live_tensors() -> tuple[int, int]:
    """Number and storage bytes of the tensors the garbage collector can reach."""
    tensors = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return len(tensors), sum(storages.values())


def test_hundred_captures_do_not_grow_memory():
    model, inputs = HF_TEXT["bert"]()
    regs = _registries()
    for _ in range(5):
        probe.trace(model, inputs)
    gc.collect()
    count, nbytes = _live_tensors()
    tracemalloc.start()  # Python objects only: tracemalloc does not see tensor storage
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(100):
        tr = probe.trace(model, inputs)
    del tr
    gc.collect()
    now, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert now - base < 1_000_000, f"Python heap grew by {now - base} bytes over 100 captures"
    # tensors, counted and sized directly: no captured tensor outlives its trace
    assert _live_tensors() == (count, nbytes)
    # nothing (model, hooks, registries, closures) keeps captured tensors alive
    import weakref

    refs = []
    for _ in range(100):
        tr = probe.trace(model, inputs)
        refs.append(weakref.ref(tr.attentions))
        del tr
    gc.collect()
    assert all(r() is None for r in refs), "captured attention tensors are still referenced"
    assert _registries() == regs
    from transformers.modeling_utils import AttentionInterface

    assert not [k for k in AttentionInterface._global_mapping if k.startswith("probe")]


def test_inputs_not_modified():
    model, inputs = HF_TEXT["bert"]()
    saved = {k: v.clone() for k, v in inputs.items()}
    probe.trace(model, inputs, requires_grad=True)
    for k in inputs:
        assert torch.equal(inputs[k], saved[k])
    model_v, x = TIMM["vit"]()
    x0 = x.clone()
    probe.trace(model_v, x, requires_grad=True)
    assert torch.equal(x, x0) and not x.requires_grad


@pytest.mark.parametrize("name", ["bert", "vit", "llama"])
def test_gradients_flow_to_captured_attention(name):
    model, inputs = {**HF_ALL, **TIMM}[name]()

    def scalar(output: Any) -> torch.Tensor:
        # a fixed random projection: the plain sum of a LayerNorm output (BERT's last hidden
        # state) has zero gradient in exact arithmetic, which would only test rounding noise
        out = _first(output)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
        return (out * weights.to(out.dtype)).sum()

    tr = probe.trace(model, inputs, requires_grad=True)
    assert all(t.requires_grad for t in tr.layer_tensors)
    scalar(tr.output).backward()
    grads = tr.gradients()
    assert grads.shape == tr.attentions.shape
    assert grads.abs().max() > 1e-4
    # the same gradients through an independent path: autograd.grad on a fresh capture
    tr2 = probe.trace(model, inputs, requires_grad=True)
    ref = torch.autograd.grad(scalar(tr2.output), tr2.layer_tensors)
    assert_close(grads, torch.stack(ref), atol=1e-6, rtol=1e-5)
    model.zero_grad(set_to_none=True)


def test_gradient_capture_needs_backward_first():
    model, inputs = HF_TEXT["bert"]()
    tr = probe.trace(model, inputs, requires_grad=True)
    with pytest.raises(probe.ProbeError, match="backward"):
        tr.gradients()
    with pytest.raises(probe.ProbeError, match="requires_grad"):
        probe.trace(model, inputs).gradients()


def test_layer_and_head_selection_average_and_dtype():
    model, inputs = HF_TEXT["bert"]()
    full = probe.trace(model, inputs)
    part = probe.trace(model, inputs, layers=[0, -1], heads=[1, 3])
    assert part.layer_indices == (0, 2) and part.head_indices == (1, 3)
    assert_close(part.attentions, full.attentions[[0, 2]][:, :, [1, 3]])
    assert part.layer_position(-1) == 1 and part.head_position(3) == 1
    avg = probe.trace(model, inputs, average_heads=True)
    assert avg.head_indices is None and avg.attentions.shape[2] == 1
    assert_close(avg.attentions[:, :, 0], full.attentions.mean(2))
    half = probe.trace(model, inputs, dtype=torch.float16)
    assert half.attentions.dtype == torch.float16
    assert_close(half.attentions.float(), full.attentions, atol=1e-3, rtol=0)
    bf = probe.trace(model, inputs, dtype="bfloat16")
    assert bf.attentions.dtype == torch.bfloat16
    with pytest.raises(probe.ProbeError, match="not captured"):
        part.layer_position(1)


def test_chunked_capture_is_identical():
    model, inputs = HF_TEXT["llama"]()
    full = probe.trace(model, inputs)
    chunked = probe.trace(model, inputs, chunk_size=4)
    assert_close(chunked.attentions, full.attentions, atol=1e-6, rtol=0)
    assert_close(chunked.output.logits, full.output.logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fusion,discard", [("mean", 0.0), ("max", 0.0), ("min", 0.5)])
def test_streaming_rollout_equals_rollout_of_full_capture(fusion, discard):
    model, inputs = HF_TEXT["bert"]()
    full = probe.trace(model, inputs)
    streamed = probe.trace(model, inputs, stream=True, chunk_size=4, head_fusion=fusion,
                           discard_ratio=discard)
    assert streamed.attentions is None
    expected = probe.rollout(full, head_fusion=fusion, discard_ratio=discard)
    assert_close(streamed.rollout_result, expected, atol=1e-5, rtol=0)
    assert_close(probe.rollout(streamed, head_fusion=fusion, discard_ratio=discard), expected,
                 atol=1e-5, rtol=0)
    with pytest.raises(probe.ProbeError):
        streamed.require_attentions()


def test_streaming_on_vision_keeps_prefix_tokens():
    model, x = TIMM["vit_registers"]()
    full = probe.trace(model, x)
    streamed = probe.trace(model, x, stream=True, discard_ratio=0.3)
    assert_close(streamed.rollout_result, probe.rollout(full, discard_ratio=0.3), atol=1e-5, rtol=0)


def test_padding_matches_unpadded_capture():
    model, inputs = HF_TEXT["bert"]()
    tr = probe.trace(model, inputs)
    n = int(inputs["attention_mask"][1].sum())
    single = probe.trace(model, {"input_ids": inputs["input_ids"][1:, :n]})
    assert_close(tr.attentions[:, 1, :, :n, :n], single.attentions[:, 0], atol=1e-5, rtol=0)
    assert torch.all(tr.attentions[:, 1, :, n:, :] == 0)  # padded queries carry no weight
    assert torch.all(tr.attentions[:, 1, :, :, n:] == 0)  # padded keys carry no weight


def test_minilm_real_model(minilm):
    model, tok = minilm
    text = ["The animal didn't cross the street because it was too tired.", "A short one."]
    tr = probe.trace(model, text, tokenizer=tok)
    assert tr.model_name == "minilm" and tr.family == "encoder"
    assert tr.attentions.shape[:3] == (6, 2, 12)
    assert tr.tokens[0][0] == "[CLS]" and "animal" in tr.words[0]
    assert tr.special_tokens_mask[0, 0] and not tr.special_tokens_mask[0, 1]
    enc = tok(text, return_tensors="pt", padding=True)
    ref = _hf_reference(model, dict(enc))
    assert_close(tr.attentions, _real_rows(torch.stack(ref.attentions), tr.attention_mask),
                 atol=1e-5, rtol=0)
    with torch.no_grad():
        plain = model(**enc).last_hidden_state
    real = tr.attention_mask
    # real positions: unchanged to 1e-5 against the SDPA model as loaded
    assert_close(tr.output.last_hidden_state[real], plain[real], atol=1e-5, rtol=1e-5)
    # everywhere (padding included): identical to HF's own eager forward, which capture runs;
    # padded positions differ between HF's eager and SDPA kernels by ~5e-5 on their own
    assert_close(tr.output.last_hidden_state, ref.last_hidden_state, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_are_clear_errors(minilm):
    model, tok = minilm
    with pytest.raises(probe.ProbeError, match="tokenizer"):
        probe.trace(model, "hello")
    with pytest.raises(probe.ProbeError, match="at most 512"):
        probe.trace(model, "word " * 600, tokenizer=tok)
    with pytest.raises(probe.ProbeError, match="unsqueeze"):
        probe.trace(model, torch.tensor([1, 2, 3]))
    with pytest.raises(probe.ProbeError, match="unsupported inputs"):
        probe.trace(model, 3.5)
    with pytest.raises(probe.ProbeError, match="out of range"):
        probe.trace(model, "hello", tokenizer=tok, layers=[6])
    with pytest.raises(probe.ProbeError, match="out of range"):
        probe.trace(model, "hello", tokenizer=tok, heads=[12])
    with pytest.raises(probe.ProbeError, match="dtype"):
        probe.trace(model, "hello", tokenizer=tok, dtype="int8")
    with pytest.raises(probe.ProbeError, match="head_fusion"):
        probe.trace(model, "hello", tokenizer=tok, stream=True, head_fusion="median-ish")
    vit, x = TIMM["vit"]()
    with pytest.raises(probe.ProbeError, match="32x32"):
        probe.trace(vit, torch.randn(1, 3, 64, 64))
    with pytest.raises(probe.ProbeError, match="unsqueeze"):
        probe.trace(vit, x[0])
    with pytest.raises(probe.ProbeError, match="channels"):
        probe.trace(vit, torch.randn(1, 1, 32, 32))


def test_model_without_attention_is_unsupported():
    with pytest.raises(probe.UnsupportedModelError, match="cannot capture"):
        probe.trace(torch.nn.Linear(3, 3), torch.randn(1, 3))


def test_load_model_errors():
    with pytest.raises(probe.ProbeError, match="minilm"):
        probe.load_model("no-such-model")
    with pytest.raises(probe.ProbeError, match="timm"):
        probe.load_model("timm:not_a_real_model_name")


def test_layer_selection_is_checked_in_every_stack():
    model, inputs = HF_TEXT["bart"]()  # 2 encoder and 2 decoder layers
    tr = probe.trace(model, inputs, layers=[-1])
    assert tr.layer_indices == tr.decoder.layer_indices == tr.cross.layer_indices == (1,)
    with pytest.raises(probe.ProbeError, match="out of range"):
        probe.trace(model, inputs, layers=[2])
