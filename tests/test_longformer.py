"""Longformer and LED's encoder: sliding-window attention with global tokens, captured as the
full ``[layer, batch, head, query, key]`` matrix (``probe/capture/adapters/_hf_longformer.py``).

Held to an independent reference written here (each layer's scores recomputed from the
module's own weights on the layer's input, the band + global mask applied, softmax), to HF's
own ``output_attentions`` (band and global-key columns) and ``global_attentions`` mapped into
the matrix, and to the capture promise: outputs unchanged, nothing left behind (also when the
forward raises), rows summing to 1 over real keys, exact zeros elsewhere.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe
from tests._tiny import assert_generation_matches_hf, assert_unchanged, fails_late, snapshot

W = 2  # attention_window 4: two keys on either side of each query


def _longformer(**extra: Any) -> Any:
    import transformers
    from transformers import LongformerConfig, LongformerModel

    transformers.logging.set_verbosity_error()
    kw = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
              vocab_size=128, max_position_embeddings=64, attention_window=2 * W, pad_token_id=0)
    torch.manual_seed(0)
    return LongformerModel(LongformerConfig(**{**kw, **extra})).eval()


def _led(**extra: Any) -> Any:
    import transformers
    from transformers import LEDConfig, LEDForConditionalGeneration

    transformers.logging.set_verbosity_error()
    cfg = LEDConfig(vocab_size=128, d_model=32, encoder_layers=2, decoder_layers=2,
                    encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                    decoder_ffn_dim=64, max_encoder_position_embeddings=64,
                    max_decoder_position_embeddings=64, attention_window=2 * W, pad_token_id=0,
                    bos_token_id=1, eos_token_id=2, decoder_start_token_id=2, **extra)
    torch.manual_seed(0)
    return LEDForConditionalGeneration(cfg).eval()


def _inputs(seq: int = 7, global_tokens: bool = True) -> dict[str, torch.Tensor]:
    """A batch of two, the second padded after 5 tokens; global tokens: the first token of
    both items, and token 3 of the second (one more than the first: unequal counts)."""
    ids = torch.randint(3, 100, (2, seq), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, seq, dtype=torch.long)
    mask[1, 5:] = 0
    out = {"input_ids": ids, "attention_mask": mask}
    if global_tokens:
        glob = torch.zeros(2, seq, dtype=torch.long)
        glob[:, 0] = 1
        glob[1, 3] = 1
        out["global_attention_mask"] = glob
    return out


def _attention_modules(model: Any) -> list[Any]:
    names = ("LongformerSelfAttention", "LEDEncoderSelfAttention")
    return [m for m in model.modules() if type(m).__name__ in names]


def _reference(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[layer, batch, head, query, key]`` recomputed from each attention module's weights on
    its (padded) input: a query attends to the unmasked non-global keys within ``W`` of it
    and to every global key (projections ``query``/``key``); a global query attends to every
    unmasked key (``query_global``/``key_global``); masked queries are zero rows."""
    seq = inputs["input_ids"].shape[-1]
    real = inputs.get("attention_mask", torch.ones_like(inputs["input_ids"])).bool()
    glob = inputs.get("global_attention_mask", torch.zeros_like(real)).bool() & real
    hidden: list[torch.Tensor] = []
    handles = [m.register_forward_pre_hook(
        lambda _m, args, kwargs: hidden.append(kwargs.get("hidden_states", args[0] if args
                                                          else None)), with_kwargs=True)
        for m in _attention_modules(model)]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    layers = []
    for module, h in zip(_attention_modules(model), hidden):
        h = h[:, :seq]  # the model's own padding: masked keys, cut off
        b, s, _ = h.shape
        heads, d = module.num_heads, module.head_dim

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, s, heads, d).transpose(1, 2)  # [batch, head, seq, dim]

        with torch.no_grad():
            local = split(module.query(h)) @ split(module.key(h)).transpose(-1, -2)
            glob_scores = split(module.query_global(h)) @ split(module.key_global(h)).transpose(
                -1, -2)
        pos = torch.arange(s)
        band = (pos[:, None] - pos[None, :]).abs() <= module.one_sided_attn_window_size
        allowed = (band[None] & ~glob[:, None, :] | glob[:, None, :]) & real[:, None, :]
        scores = torch.where(glob[:, None, :, None], glob_scores, local) / math.sqrt(d)
        allowed = torch.where(glob[:, :, None], real[:, None, :], allowed)[:, None]
        probs = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        layers.append(torch.where(real[:, None, :, None], probs, 0.0))  # all-masked: NaN
    return torch.stack(layers)


def _check_rows(att: torch.Tensor, inputs: dict[str, torch.Tensor]) -> None:
    """Real rows sum to 1 over the real keys; padded keys and padded queries exactly 0."""
    real = inputs.get("attention_mask", torch.ones_like(inputs["input_ids"])).bool()
    sums = att.sum(-1)
    assert_close(sums, real[None, :, None, :].expand_as(sums).to(sums.dtype), atol=1e-6,
                 rtol=0)
    assert bool((att.masked_select(~real[None, :, None, None, :]) == 0).all())


@pytest.mark.parametrize("seq, global_tokens", [(7, True), (7, False), (9, True), (8, False)])
def test_full_matrix_equals_the_independent_reference(seq: int, global_tokens: bool) -> None:
    """Seven and nine tokens: the model pads them to 8 and 12; eight: no padding."""
    model = _longformer()
    inputs = _inputs(seq, global_tokens)
    tr = probe.trace(model, inputs)
    assert tr.attentions.shape == (2, 2, 2, seq, seq)
    assert_close(tr.attentions, _reference(model, inputs), atol=1e-5, rtol=0)
    _check_rows(tr.attentions, inputs)
    # keys neither in the band nor global (for a query that is not global): exactly zero
    glob = inputs.get("global_attention_mask", torch.zeros(2, seq)).bool()
    pos = torch.arange(seq)
    allowed = ((pos[:, None] - pos[None, :]).abs() <= W) | glob[:, None, :] | glob[:, :, None]
    assert bool((tr.attentions.masked_select(~allowed[None, :, None]) == 0).all())


def test_a_window_per_layer() -> None:
    """Windows 4 then 6: the model pads to a multiple of 6, each layer keeps its own band."""
    model = _longformer(attention_window=[4, 6])
    inputs = _inputs(7)
    tr = probe.trace(model, inputs)
    assert_close(tr.attentions, _reference(model, inputs), atol=1e-5, rtol=0)
    _check_rows(tr.attentions, inputs)
    assert bool((tr.attentions[1, 0, :, 6, 3] > 0).all())  # three keys back: in the 6-window
    assert bool((tr.attentions[0, 0, :, 6, 3] == 0).all())  # outside the 4-window


def test_band_and_global_entries_equal_hfs_own_attentions() -> None:
    """HF's ``attentions`` (global-key columns, then the band) and ``global_attentions`` (the
    rows of global tokens), mapped into the matrix."""
    model = _longformer()
    inputs = _inputs(7)
    tr = probe.trace(model, inputs)
    with torch.no_grad():
        ref = model(**inputs, output_attentions=True)
    glob = inputs["global_attention_mask"].bool() & inputs["attention_mask"].bool()
    where = [glob[i].nonzero().flatten().tolist() for i in range(2)]
    num = max(len(w) for w in where)
    for layer in range(2):
        local, rows = ref.attentions[layer], ref.global_attentions[layer]  # [b, h, q, g+2W+1]
        for b in range(2):
            for i in range(7):
                if i in where[b]:  # a global query: HF's global row over the unpadded keys
                    g = where[b].index(i)
                    assert_close(tr.attentions[layer, b, :, i], rows[b, :, :7, g], atol=1e-6,
                                 rtol=0)
                    continue
                for g, key in enumerate(where[b]):
                    assert_close(tr.attentions[layer, b, :, i, key], local[b, :, i, g],
                                 atol=1e-6, rtol=0)
                for j in range(2 * W + 1):
                    key = i + j - W
                    if 0 <= key < 7 and key not in where[b]:
                        assert_close(tr.attentions[layer, b, :, i, key],
                                     local[b, :, i, num + j], atol=1e-6, rtol=0)


def test_outputs_unchanged_and_nothing_left_behind() -> None:
    model = _longformer()
    inputs = _inputs(7)
    before = snapshot(model)
    impl = model.config._attn_implementation
    with torch.no_grad():
        plain = model(**inputs)
    tr = probe.trace(model, inputs)
    assert_close(tr.output.last_hidden_state, plain.last_hidden_state, atol=0, rtol=0)
    assert tr.output.attentions is None  # the weights were asked of the module, not the model
    assert_unchanged(model, before)
    assert model.config._attn_implementation == impl
    assert model.config.output_attentions is False

    with fails_late(model.pooler) as boom, pytest.raises(boom):
        probe.trace(model, inputs)
    assert_unchanged(model, before)
    assert model.config._attn_implementation == impl


def test_no_mask_passed_covers_the_users_tokens() -> None:
    """Without an attention mask the model's own padding is the only masked keys: cut off."""
    model = _longformer()
    inputs = {"input_ids": _inputs(7)["input_ids"]}
    tr = probe.trace(model, inputs)
    assert tr.attentions.shape[-2:] == (7, 7)
    assert_close(tr.attentions, _reference(model, inputs), atol=1e-5, rtol=0)
    _check_rows(tr.attentions, inputs)


def test_training_mode_records_the_dropped_out_weights_with_the_warning() -> None:
    """The band and global probabilities the module returns are those it multiplied with the
    values (after its functional dropout): recorded, with probe's training-mode warning."""
    model = _longformer(attention_probs_dropout_prob=0.5).train()
    inputs = _inputs(7)
    before = snapshot(model)
    torch.manual_seed(1)
    with pytest.warns(UserWarning, match="training mode with attention dropout active"):
        tr = probe.trace(model, inputs)
    torch.manual_seed(1)
    with torch.no_grad():
        plain = model(**inputs)
    assert_close(tr.output.last_hidden_state, plain.last_hidden_state, atol=0, rtol=0)
    real = inputs["attention_mask"].bool()
    sums = tr.attentions.sum(-1).masked_select(real[None, :, None, :])
    assert float((sums - 1).abs().max()) > 0.1  # dropped out and rescaled: rows not summing to 1
    assert_unchanged(model, before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no dropout in eval mode: no warning
        probe.trace(model.eval(), inputs)


def test_requires_grad_and_gradient_relevance_are_refused_clearly() -> None:
    model = _longformer()
    before = snapshot(model)
    match = (r"LongformerSelfAttention's \[query, key\] matrix is assembled from its band and "
             r"global probabilities.*\(probe.gradient_relevance\) do not apply; capture with "
             r"requires_grad=False")
    with pytest.raises(probe.ProbeError, match=match):
        probe.trace(model, _inputs(7), requires_grad=True)
    assert_unchanged(model, before)
    with pytest.raises(probe.ProbeError, match=match):
        probe.gradient_relevance(model, _inputs(7),
                                 target=lambda out: out.last_hidden_state[:, 0].sum(-1))
    assert_unchanged(model, before)


def test_query_rows_and_streamed_rollout_match_the_full_trace() -> None:
    model = _longformer()
    inputs = _inputs(7)
    tr = probe.trace(model, inputs)
    rows = probe.trace(model, inputs, query_rows=[0, -1])
    assert_close(rows.attentions, tr.attentions[..., [0, 6], :], atol=0, rtol=0)
    streamed = probe.trace(model, inputs, stream=True)
    assert_close(streamed.rollout_result, probe.rollout(tr), atol=1e-6, rtol=0)


@pytest.mark.parametrize("global_tokens", [True, False])
def test_led_encoder_decoder_and_cross_exact(global_tokens: bool) -> None:
    model = _led()
    inputs = _inputs(7, global_tokens)
    dec = torch.randint(3, 100, (2, 5), generator=torch.Generator().manual_seed(1))
    before = snapshot(model)
    with torch.no_grad():
        ref = model(**inputs, decoder_input_ids=dec, output_attentions=True)
    tr = probe.trace(model, inputs, decoder_inputs=dec)
    assert_close(tr.output.logits, ref.logits, atol=0, rtol=0)
    assert_close(tr.attentions, _reference(model, inputs), atol=1e-5, rtol=0)
    _check_rows(tr.attentions, inputs)
    assert_close(tr.decoder.attentions, torch.stack(ref.decoder_attentions), atol=1e-6, rtol=0)
    assert_close(tr.cross.attentions, torch.stack(ref.cross_attentions), atol=1e-6, rtol=0)
    assert_unchanged(model, before)


def test_led_generation_equals_its_own_output_attentions() -> None:
    """The encoder captured once, as ``probe.trace`` captures it; the decoder and cross rows of
    every step equal HF's ``generate(output_attentions=True)``, tokens unchanged."""
    model = _led()
    inputs = _inputs(7)
    stop = dict(max_new_tokens=3, eos_token_id=None, min_new_tokens=3, num_beams=1)
    gen = probe.generate(model, inputs, **stop)
    with torch.no_grad():
        hf = model.generate(**inputs, **stop, output_attentions=True,
                            return_dict_in_generate=True)
    assert_generation_matches_hf(gen, hf)
    tr = probe.trace(model, inputs, decoder_inputs=torch.tensor([[2]] * 2))
    assert_close(gen.encoder.attentions, tr.attentions, atol=0, rtol=0)


def test_the_gradient_refusal_is_worded_for_any_family() -> None:
    """The shared hand-written registry's refusal named Longformer's band and global
    probabilities for every ``convert`` site: the family and its layout are now filled in."""
    import torch

    from probe.capture.adapters._hf_hand import HandAttention, no_gradients

    class OddAttention(torch.nn.Module):
        pass

    spec = HandAttention("odd", "OddAttention", 1, convert=lambda *a: None)
    assert no_gradients(OddAttention(), spec) == (
        "OddAttention's [query, key] matrix is assembled from the weights odd returns in its "
        "own layout (odd attention), not a tensor the model uses, so gradients cannot reach it: "
        "requires_grad=True and attention-gradient methods (probe.gradient_relevance) do not "
        "apply; capture with requires_grad=False")
    with pytest.raises(probe.ProbeError, match=r"^LongformerSelfAttention's \[query, key\] "
                       r"matrix is assembled from its band and global probabilities "
                       r"\(longformer attention\), not a tensor"):
        probe.trace(_longformer(), _inputs(7), requires_grad=True)
