"""HF families whose attention is written by hand (``probe/capture/adapters/_hf_hand.py``):
beyond the exactness sweep of ``test_families.py``, each capture point (a dropout module, the
returned weights, weights requested from the module's call) is held to the rest of the
promise: outputs unchanged, nothing left behind (also when the forward raises), gradients read
from the model's own graph tensor, row selection and streaming, generation, training mode.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe
from probe.analysis._relevance import relevance_from_gradients
from tests._tiny import assert_generation_matches_hf, assert_unchanged, fails_late, snapshot
from tests.test_families import _build, _check, _inputs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: one family per capture point and position scheme: (model type, kind, extra config)
FAMILIES = {
    "deberta-v3": ("deberta-v2", "encoder",  # DeBERTa-v3's disentangled relative attention
                   dict(relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8,
                        max_relative_positions=-1, norm_rel_ebd="layer_norm", share_att_key=True,
                        position_biased_input=False, type_vocab_size=0)),
    "mpnet": ("mpnet", "encoder", {}),
    "bloom": ("bloom", "decoder", {}),
    "falcon": ("falcon", "decoder", {}),  # rotary: returned weights, SDPA-loaded
    "falcon-alibi": ("falcon", "decoder", dict(alibi=True, attn_implementation="eager")),
    "falcon-gqa": ("falcon", "decoder", dict(new_decoder_architecture=True, num_kv_heads=2)),
    "xglm": ("xglm", "decoder", {}),  # returned weights before a functional dropout
    "gpt-neo": ("gpt_neo", "decoder",  # a global and a local (windowed) layer
                dict(attention_types=[[["global", "local"], 1]], window_size=4)),
    "mpt": ("mpt", "decoder", {}),  # ALiBi; returned weights after a functional dropout
    "xlm": ("xlm", "encoder", {}),  # weights returned when its call asks for them
    "xlm-clm": ("xlm", "decoder", dict(causal=True)),  # XLM's causal checkpoints: a decoder
}


def _eager(model: Any) -> Any:
    ref = copy.deepcopy(model)
    ref.set_attn_implementation("eager")
    ref.config._attn_implementation = "eager"  # Falcon's set_attn_implementation keeps SDPA
    return ref


def _main(out: Any) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_exact_unchanged_and_gradients_from_the_models_own_graph(name: str) -> None:
    model_type, kind, extra = FAMILIES[name]
    model = _build(model_type, kind, extra)
    inputs = _inputs()
    real = inputs["attention_mask"].bool()
    impl = model.config._attn_implementation
    before = snapshot(model)
    with torch.no_grad():
        plain = model(**inputs)
    ref_model = _eager(model)
    ref = ref_model(**inputs, output_attentions=True)

    tr = probe.trace(model, inputs)
    want = torch.stack(ref.attentions).detach() * real[None, :, None, :, None]
    assert_close(tr.attentions, want, atol=1e-5, rtol=0)
    assert_close(_main(tr.output)[real], _main(plain)[real], atol=1e-5, rtol=0)
    assert_unchanged(model, before)
    assert model.config._attn_implementation == impl

    # gradient relevance: the hooked tensor is the model's own, so its gradient is the one
    # of the eager model's output_attentions
    row = -1 if kind == "decoder" else 0

    def target(out: Any) -> torch.Tensor:
        return _main(out)[:, row].sum(-1)

    relevance = probe.gradient_relevance(model, inputs, target=target)
    grads = torch.autograd.grad(target(ref).sum(), ref.attentions)
    assert torch.isfinite(relevance).all()
    assert_close(relevance, relevance_from_gradients(want, torch.stack(grads)), atol=1e-5,
                 rtol=0)
    assert_unchanged(model, before)

    # rows picked from whole layers; the streamed rollout equals the rollout of the trace
    rows = probe.trace(model, inputs, query_rows=[0, -1])
    assert_close(rows.attentions, tr.attentions[..., [0, 6], :], atol=0, rtol=0)
    streamed = probe.trace(model, inputs, stream=True)
    assert_close(streamed.rollout_result, probe.rollout(tr), atol=1e-6, rtol=0)
    assert_unchanged(model, before)


@pytest.mark.parametrize("model_type, kind", [("deberta-v2", "encoder"), ("falcon", "decoder"),
                                              ("fsmt", "seq2seq")])
def test_hooks_and_configs_restored_when_the_forward_raises(model_type: str, kind: str) -> None:
    model = _build(model_type, kind)
    impl = model.config._attn_implementation
    before = snapshot(model)

    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with fails_late(last) as boom, pytest.raises(boom):
        probe.trace(model, _inputs(), **({"decoder_inputs": torch.tensor([[2, 5]] * 2)}
                                        if kind == "seq2seq" else {}))
    assert_unchanged(model, before)
    assert model.config._attn_implementation == impl


def test_hundred_captures_leave_nothing_behind() -> None:
    """Hooks come off after every capture, and no hook, closure or recorder keeps a captured
    tensor alive (a dropout-module family and a returned-weights one)."""
    import gc
    import weakref

    from probe.capture._trace import stored_attentions

    for model_type, times in (("mpnet", 100), ("falcon", 20)):  # tiny Falcon: ~5x slower
        model = _build(model_type, "decoder" if model_type == "falcon" else "encoder")
        inputs = _inputs()
        before = snapshot(model)
        refs = []
        for _ in range(times):
            tr = probe.trace(model, inputs)
            refs.append(weakref.ref(stored_attentions(tr).layer(0)))  # the hooked tensor
            del tr
        gc.collect()
        assert all(r() is None for r in refs), "captured attention tensors are still referenced"
        assert_unchanged(model, before)


NEW = 5


@pytest.mark.parametrize("name", ["bloom", "falcon", "xglm", "gpt-neo", "mpt"])
def test_generation_equals_teacher_forced_eager(name: str) -> None:
    model_type, _, extra = FAMILIES[name]
    model = _build(model_type, "decoder", extra)
    ids = torch.randint(3, 100, (2, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding
    ids[1, :2] = 0
    before = snapshot(model)
    stop = dict(max_new_tokens=NEW, eos_token_id=None, min_new_tokens=NEW)
    plain = model.generate(input_ids=ids, attention_mask=mask, **stop)
    gen = probe.generate(model, {"input_ids": ids, "attention_mask": mask}, **stop)
    assert torch.equal(gen.sequences, plain)  # capture changes no token
    assert_unchanged(model, before)
    ref = _eager(model)
    full = torch.cat([mask, torch.ones(2, NEW - 1, dtype=mask.dtype)], dim=1)
    positions = {"position_ids": (full.cumsum(-1) - 1).clamp_min(0)}
    if "position_ids" not in inspect.signature(ref.forward).parameters:  # BLOOM: ALiBi
        positions = {}
    with torch.no_grad():
        out = ref(gen.sequences[:, :-1], attention_mask=full, output_attentions=True,
                  **positions)
    want = torch.stack(out.attentions)
    got = gen.to_trace().attentions
    for b in range(2):  # padded query rows are zero in probe
        real = full[b].bool()
        assert_close(got[:, b][:, :, real], want[:, b][:, :, real], atol=1e-5, rtol=0)
    lean = probe.generate(model, {"input_ids": ids, "attention_mask": mask}, keep_prompt=False,
                          **stop)
    assert_close(lean.attentions, gen.attentions, atol=0, rtol=0)


def test_fsmt_generation_equals_its_own_output_attentions() -> None:
    """FSMT's teacher-forced forward does not reproduce its own cached generation, so the
    reference is ``generate(output_attentions=True)`` itself, step by step."""
    model = _build("fsmt", "seq2seq")
    inputs = _inputs()
    stop = dict(max_new_tokens=4, eos_token_id=None, min_new_tokens=4, num_beams=1)
    gen = probe.generate(model, inputs, **stop)
    hf = model.generate(**inputs, **stop, output_attentions=True, return_dict_in_generate=True)
    assert_generation_matches_hf(gen, hf)


def test_training_mode_dropout_recorded_or_refused() -> None:
    """A dropout module after the softmax: the weights the model used, with probe's warning.
    A functional dropout after the returned weights (XGLM): refused, model left as it was."""
    model = _build("mpnet", "encoder", dict(attention_probs_dropout_prob=0.5)).train()
    with pytest.warns(UserWarning, match="training mode with attention dropout active"):
        tr = probe.trace(model, _inputs())
    assert bool((tr.attentions == 0).any())  # dropped out, as the model used them
    xglm = _build("xglm", "decoder", dict(attention_dropout=0.5)).train()
    before = snapshot(xglm)
    with pytest.raises(probe.ProbeError, match="XGLMAttention applies attention dropout after "
                                               "the weights it returns"):
        probe.trace(xglm, _inputs())
    assert_unchanged(xglm, before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no dropout in eval mode: no warning
        probe.trace(xglm.eval(), _inputs())


def test_falcon_alibi_on_sdpa_is_refused() -> None:
    """Falcon's SDPA and eager branches disagree with ALiBi (the eager one adds the bias twice):
    capturing from the eager branch would change the outputs of an SDPA-loaded model."""
    model = _build("falcon", "decoder", dict(alibi=True))
    assert model.config._attn_implementation == "sdpa"
    before = snapshot(model)
    with pytest.raises(probe.UnsupportedModelError, match="Falcon with ALiBi loaded with SDPA: "
                       ".*load it with attn_implementation='eager'"):
        probe.trace(model, _inputs())
    assert_unchanged(model, before)


def test_mvp_with_prompts_is_refused() -> None:
    """MVP's prompts are extra keys before the tokens (its decoder attends to 3 + target keys,
    its cross-attention to 3 + source): no token's place, refused rather than mislabelled."""
    model = _build("mvp", "seq2seq", dict(use_prompt=True, prompt_length=3, prompt_mid_dim=16))
    before = snapshot(model)
    with pytest.raises(probe.UnsupportedModelError, match=r"MvpForConditionalGeneration is "
                       r"built with prompts \(use_prompt=True\): its attention layers attend to "
                       r"3 prompt vectors before the tokens, .*load it with use_prompt=False"):
        probe.trace(model, _inputs(), decoder_inputs=torch.tensor([[2, 5]] * 2))
    assert_unchanged(model, before)


def test_bigbird_pegasus_full_attention_exact_and_block_sparse_refused() -> None:
    _check(_build("bigbird_pegasus", "seq2seq", dict(attention_type="original_full")), "seq2seq")
    sparse = _build("bigbird_pegasus", "seq2seq")  # block_sparse, the default
    before = snapshot(sparse)
    with pytest.raises(probe.UnsupportedModelError, match="BigBird-Pegasus's block-sparse "
                       "encoder attention has no .* use full attention"):
        probe.trace(sparse, _inputs(), decoder_inputs=torch.tensor([[2, 5]] * 2))
    assert_unchanged(sparse, before)
    kinds = {type(m).__name__ for m in sparse.get_encoder().modules()}
    assert "BigBirdPegasusBlockSparseAttention" in kinds  # HF's switch to full never ran
    assert "BigBirdPegasusSelfAttention" not in kinds


def test_only_the_registered_class_is_a_site() -> None:
    """A subclass with another forward (GPT-J's and Falcon's flash-attention classes) is not
    a site: such a model stays refused rather than captured from a path it does not take."""
    from probe.capture.adapters._hf_hand import hand_attention

    model = _build("gptj", "decoder")
    attn = model.transformer.h[0].attn
    assert hand_attention(attn) is not None
    flash = type("GPTJFlashAttention2", (type(attn),), {"__module__": type(attn).__module__})
    attn.__class__ = flash
    assert hand_attention(attn) is None
