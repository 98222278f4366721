"""Capture in training mode: one warning when attention dropout is active, and row-selected
capture (``query_rows``) records the same post-dropout weights as a full capture.

Full captures run the model's own eager attention, dropout included, so with the same seed
they equal HF's eager ``output_attentions``; ``query_rows`` on an SDPA-loaded model cannot
reproduce SDPA's dropout mask, so it computes such layers eagerly (one mask for output and
weights) and keeps the rows: the same values as the full capture, seed for seed.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.testing import assert_close

import probe
from tests._tiny import VOCAB, _ids, _pixels, assert_unchanged, snapshot, timm_model

MESSAGE = r"training mode with attention dropout active.*model\.eval\(\)"


def _bert(impl: str = "sdpa"):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                     attention_probs_dropout_prob=0.5, attn_implementation=impl)
    return BertModel(cfg), _ids()


def _gpt2(impl: str = "sdpa"):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     attn_pdrop=0.5, attn_implementation=impl)
    return GPT2LMHeadModel(cfg), _ids(pad_from=None)


def _hf_vit(impl: str = "sdpa"):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                    num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                    attention_probs_dropout_prob=0.5, attn_implementation=impl)
    return ViTModel(cfg), _pixels(32, 32)


def _timm_vit(impl: str = "sdpa"):
    del impl
    torch.manual_seed(0)
    return timm_model("vit_small_patch16_224", attn_drop_rate=0.5)


HF = {"bert": _bert, "gpt2": _gpt2, "hf_vit": _hf_vit}
ALL = {**HF, "timm_vit": _timm_vit}


def _main(output):
    """The main output tensor of an HF output object or a timm tensor."""
    for name in ("last_hidden_state", "logits"):
        if hasattr(output, name):
            return getattr(output, name)
    return output


def _trace(model, inputs, seed: int, **options):
    torch.manual_seed(seed)
    with pytest.warns(UserWarning, match=MESSAGE) as record:
        tr = probe.trace(model, inputs, **options)
    assert len([w for w in record if "dropout" in str(w.message)]) == 1  # once per call
    return tr


@pytest.mark.parametrize("name", sorted(HF))
def test_train_mode_full_capture_equals_eager_output_attentions_and_warns(name: str) -> None:
    model, inputs = HF[name]()
    eager, _ = HF[name]("eager")
    eager.load_state_dict(model.state_dict())
    model.train()
    eager.train()
    kwargs = inputs if isinstance(inputs, dict) else {"pixel_values": inputs}
    torch.manual_seed(3)
    with torch.no_grad():
        ref = eager(**kwargs, output_attentions=True)
    tr = _trace(model, inputs, seed=3)
    query_real = tr.attention_mask[None, :, None, :, None]  # probe zeroes padded query rows
    assert_close(tr.attentions, torch.stack(ref.attentions) * query_real, atol=1e-5, rtol=1e-5)
    real = tr.attention_mask[:, None, None, :].expand_as(tr.attentions[0])
    sums = tr.attentions.sum(-1)
    assert not torch.allclose(sums[:, real[..., 0]], torch.ones(()))  # dropout really applied
    assert model.training and all(m.training for m in model.modules())


@pytest.mark.parametrize("name", sorted(ALL))
def test_train_mode_query_rows_equal_the_full_capture_rows(name: str) -> None:
    model, inputs = ALL[name]()
    model.train()
    before = snapshot(model)
    full = _trace(model, inputs, seed=5)
    rows = _trace(model, inputs, seed=5, query_rows=[0, -1])
    n = full.seq_len
    assert rows.query_indices == (0, n - 1)
    # the kept rows are the post-dropout weights the output used, as in the full capture
    assert_close(rows.attentions, full.attentions[:, :, :, [0, n - 1]], atol=1e-6, rtol=1e-6)
    assert_close(_main(rows.output), _main(full.output), atol=1e-5, rtol=1e-5)
    assert_unchanged(model, before)
    if name != "timm_vit":
        assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("name", sorted(ALL))
def test_eval_mode_captures_raise_no_warning(name: str) -> None:
    model, inputs = ALL[name]()
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = probe.trace(model, inputs)
        probe.trace(model, inputs, query_rows=[0])
    real = full.attention_mask[0].bool()
    assert_close(full.attentions[:, 0, :, real][..., real].sum(-1),
                 torch.ones(full.num_layers, 4, int(real.sum()), dtype=full.attentions.dtype))


def test_train_mode_without_attention_dropout_raises_no_warning() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
                      attention_dropout=0.0)
    model = LlamaForCausalLM(cfg).train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.trace(model, _ids(pad_from=None), query_rows=[-1])
        probe.trace(model, _ids(pad_from=None))
    assert model.training


def test_generate_in_train_mode_warns_once_and_eval_does_not() -> None:
    model, inputs = _gpt2()
    ids = inputs["input_ids"][:1]
    model.train()
    with pytest.warns(UserWarning, match=r"^probe\.generate: .*" + MESSAGE) as record:
        probe.generate(model, ids, max_new_tokens=3, keep_prompt=False, pad_token_id=0)
    assert len([w for w in record if "dropout" in str(w.message)]) == 1
    assert model.training
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.generate(model, ids, max_new_tokens=3, keep_prompt=False, pad_token_id=0)


@pytest.mark.parametrize("query_rows", [None, [0]])
def test_train_mode_exception_path_restores_the_model(query_rows) -> None:
    model, inputs = _bert()
    model.train()

    def boom(*_):
        raise RuntimeError("boom in layer 1")

    handle = model.encoder.layer[1].register_forward_hook(boom)
    try:
        before = snapshot(model)
        with pytest.raises(RuntimeError, match="boom"):
            probe.trace(model, inputs, query_rows=query_rows)
        assert_unchanged(model, before)
        assert model.training and model.config._attn_implementation == "sdpa"
    finally:
        handle.remove()
    with pytest.warns(UserWarning, match=MESSAGE):  # and the next capture works
        probe.trace(model, inputs, query_rows=query_rows)


def test_gradient_methods_capture_and_warn_the_same() -> None:
    from tests._tiny import bert_classifier

    model, inputs = bert_classifier()  # attention_probs_dropout_prob=0.1 by default
    model.train()
    with pytest.warns(UserWarning, match=MESSAGE):
        probe.gradient_relevance(model, inputs, target=0)
    assert model.training
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.gradient_relevance(model, inputs, target=0)


def test_attribute_in_train_mode_names_itself_in_the_warning() -> None:
    """``probe.attribute`` in training mode warned 'probe.trace: ...' (the capture it made):
    the warning now names the call the user made, and ``probe.trace`` still its own."""
    model, inputs = _bert()
    model.train()
    with pytest.warns(UserWarning, match=r"^probe\.attribute: the model is in training mode "
                      r"with attention dropout active") as record:
        probe.attribute(model, inputs, "rollout")
    assert [str(w.message).split(":")[0] for w in record if "dropout" in str(w.message)] == [
        "probe.attribute"]
    with pytest.warns(UserWarning, match=r"^probe\.trace: the model is in training mode"):
        probe.trace(model, inputs)
