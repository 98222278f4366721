"""Model adapters: each family is recognised, and a new family plugs in with one class."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
import torch
from tests._tiny import assert_unchanged, bart, bert, gpt2, hf_vit, llama, snapshot, t5, timm_model
from torch import nn

import probe
from probe._errors import ProbeError, UnsupportedModelError
from probe.capture.adapters import ModelAdapter, Prepared, adapter_for, list_adapters
from probe.capture.adapters._base import Site, VisionGeometry, register_adapter, unregister_adapter


@pytest.mark.parametrize(
    "build, adapter, family, modality",
    [
        (bert, "HFEncoder", "encoder", "text"),
        (gpt2, "HFDecoder", "decoder", "text"),
        (llama, "HFDecoder", "decoder", "text"),
        (t5, "HFEncoderDecoder", "encoder-decoder", "text"),
        (bart, "HFEncoderDecoder", "encoder-decoder", "text"),
        (hf_vit, "HFVision", "vision", "vision"),
        (lambda: timm_model("vit_tiny_patch16_224"), "TimmViT", "vision", "vision"),
    ],
)
def test_each_family_is_recognised(build, adapter, family, modality):
    model, inputs = build()
    a = adapter_for(model)
    assert type(a).__name__ == adapter
    assert (a.family, a.modality) == (family, modality)
    tr = probe.trace(model, inputs)
    assert tr.family == family
    assert tr.model_name == a.name


def test_vision_geometry_timm_and_hf():
    model, x = timm_model("vit_tiny_patch16_224")
    g = adapter_for(model).vision_geometry(x)
    rows, cols = model.patch_embed.grid_size
    assert g.grid == (rows, cols) and g.num_prefix_tokens == model.num_prefix_tokens
    assert g.image_size == tuple(x.shape[-2:])
    assert g.patch_size == tuple(model.patch_embed.patch_size)
    hf, px = hf_vit()
    g = adapter_for(hf).vision_geometry(px)
    p = hf.config.patch_size
    assert g.grid == (px.shape[-2] // p, px.shape[-1] // p) and g.num_prefix_tokens == -1


def test_prepare_does_not_modify_inputs_and_runs_the_model():
    model, inputs = bert()
    before = {k: v.clone() for k, v in inputs.items()}
    a = adapter_for(model)
    p = a.prepare(inputs)
    assert isinstance(p, Prepared) and p.main_key == "input_ids"
    with torch.no_grad():
        out = a.run(p)
        ref = model(**inputs)
    torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state)
    for k, v in inputs.items():
        assert torch.equal(v, before[k])
    assert torch.equal(p.attention_mask, inputs["attention_mask"].bool())


def test_embedding_layer_and_blocks():
    model, _ = t5()
    a = adapter_for(model)
    assert a.embedding_layer() is model.get_encoder().get_input_embeddings()
    vit, _ = timm_model("vit_tiny_patch16_224")
    va = adapter_for(vit)
    assert va.block(-1) is vit.blocks[-1]
    assert va.block(0) is vit.blocks[0]
    assert va.stacks() == ["blocks"]
    with pytest.raises(ProbeError, match="block index"):
        va.block(len(vit.blocks))


def test_a_model_name_is_not_a_model():
    with pytest.raises(ProbeError, match=r"probe.load_model"):
        adapter_for("minilm")
    with pytest.raises(ProbeError, match="torch.nn.Module"):
        probe.trace(42, torch.zeros(1, 3))


@pytest.mark.parametrize("wrap, hint",
                         [(nn.DataParallel, "model.module"), (nn.Sequential, "nn.Sequential"),
                          (torch.compile, r"torch.compile.*model\._orig_mod, a BertModel")])
def test_wrapped_models_get_a_clear_error(wrap, hint):
    model, inputs = bert()
    with pytest.raises(UnsupportedModelError, match=hint):
        probe.trace(wrap(model), inputs)


def test_the_model_inside_torch_compile_is_captured_as_it_is():
    """The fix the compile message names works: ``_orig_mod`` is the model, run eagerly."""
    model, inputs = bert()
    compiled = torch.compile(model)
    torch.testing.assert_close(probe.trace(compiled._orig_mod, inputs).attentions,
                               probe.trace(model, inputs).attentions, rtol=0, atol=0)


# ---------------------------------------------------------------------------- a new family
class ToyAttention(nn.Module):
    """Single-head self-attention that computes its softmax inline (no HF or timm code)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        q, k, _ = self.qkv(x).chunk(3, dim=-1)
        return (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, v = self.qkv(x).chunk(3, dim=-1)
        return x + self.probs(x) @ v


class ToyEncoder(nn.Module):
    def __init__(self, vocab: int = 20, dim: int = 8, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(ToyAttention(dim) for _ in range(layers))

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids)
        for layer in self.layers:
            h = layer(h)
        return h


class ToyAdapter(ModelAdapter):
    """The whole family in one class: detection, sites, interception, inputs."""

    family = "encoder"
    modality = "text"

    @classmethod
    def detect(cls, model: Any) -> bool:
        return isinstance(model, ToyEncoder)

    def find_sites(self) -> list[Site]:
        return [Site(m, f"layers.{i}", "self", i) for i, m in enumerate(self.model.layers)]

    @contextmanager
    def intercept(self, sites, recorders, chunk_size):
        def hook(module, args, _out, layer):
            weights = module.probs(args[0])[:, None]  # [batch, head=1, q, k]
            recorders["self"].record(layer, 0, weights, weights.shape[-2])

        handles = [
            s.module.register_forward_hook(lambda m, a, o, layer=s.layer: hook(m, a, o, layer))
            for s in sites
        ]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def prepare(self, inputs, *, tokenizer=None, decoder_inputs=None, forward_kwargs=None):
        p = Prepared(main_key="input_ids", kwargs={"input_ids": inputs})
        p.input_ids = inputs.clone()
        p.attention_mask = torch.ones_like(inputs, dtype=torch.bool)
        return p


@pytest.fixture
def toy_family():
    register_adapter(ToyAdapter)
    try:
        yield
    finally:
        unregister_adapter(ToyAdapter)
    assert "ToyAdapter" not in list_adapters()


def test_a_new_family_plugs_in_with_one_class(toy_family):
    torch.manual_seed(0)
    model = ToyEncoder().eval()
    ids = torch.tensor([[1, 5, 7, 2], [3, 4, 9, 2]])
    before = snapshot(model)
    tr = probe.trace(model, ids)
    assert tr.attentions.shape == (2, 2, 1, 4, 4)
    with torch.no_grad():
        h = model.embed(ids)
        expected = []
        for layer in model.layers:
            expected.append(layer.probs(h))
            h = layer(h)
    torch.testing.assert_close(tr.attentions[:, :, 0], torch.stack(expected))
    assert_unchanged(model, before)
    assert not any(m._forward_hooks for m in model.modules())
    # the analyzers and the method registry work on it without knowing the family
    r = probe.attribute(model, ids, "rollout")
    assert r.scores.shape == (2, 4)
    torch.testing.assert_close(r.scores.sum(-1), torch.ones(2, dtype=r.scores.dtype))


def test_adapter_registry_rejects_non_adapters():
    with pytest.raises(ProbeError, match="ModelAdapter subclass"):
        register_adapter(object)  # type: ignore[arg-type]
    with pytest.raises(ProbeError, match="no adapter named"):
        unregister_adapter("NoSuchAdapter")


def test_geometry_type_is_frozen():
    g = VisionGeometry((2, 2), 1, (8, 8), (4, 4))
    with pytest.raises(Exception):
        g.grid = (1, 1)  # type: ignore[misc]
