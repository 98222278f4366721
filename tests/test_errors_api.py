"""Python API inputs nobody tried before: each is a ``probe.ProbeError`` with one line naming
the problem and the fix, never an AttributeError or TypeError from deep inside.
"""

from __future__ import annotations

import pytest
import torch

import probe

ANALYSES = {
    "rollout": lambda x: probe.rollout(x),
    "attention_flow": lambda x: probe.attention_flow(x),
    "head_stats": lambda x: probe.head_stats(x),
    "patch_maps": lambda x: probe.patch_maps(x),
    "rollout_map": lambda x: probe.rollout_map(x),
    "relevance_map": lambda x: probe.relevance_map(x),
    "relevance": lambda x: probe.relevance(x),
    "coref": lambda x: probe.coref(x, "it"),
    "word_attention": lambda x: probe.word_attention(x, "it"),
}
NOT_TRACES = {
    "tensor": torch.rand(2, 1, 2, 4, 4).softmax(-1),  # [layer, batch, head, query, key]
    "none": None,
    "string": "The cat sat.",
}


@pytest.mark.parametrize("given", NOT_TRACES, ids=list(NOT_TRACES))
@pytest.mark.parametrize("name", ANALYSES, ids=list(ANALYSES))
def test_an_analysis_given_no_trace_says_so(name, given):
    """Was ``AttributeError: 'Tensor' object has no attribute 'require_attentions'``."""
    kind = type(NOT_TRACES[given]).__name__
    with pytest.raises(probe.ProbeError, match=rf"^probe\.{name} needs a probe Trace, got "
                       rf"{kind}: pass what probe\.trace\(model, inputs\) returned$"):
        ANALYSES[name](NOT_TRACES[given])


def test_an_analysis_given_a_generation_names_to_trace():
    model, tokenizer = probe.load_model("toy-mt")
    gen = probe.generate(model, "a tree", tokenizer=tokenizer, max_new_tokens=2)
    with pytest.raises(probe.ProbeError) as err:
        probe.rollout(gen)
    # said "got GenerationTrace: this is a GenerationTrace, not a probe.Trace: ..."
    assert str(err.value) == (
        "probe.rollout was given a GenerationTrace, not a probe.Trace: pass gen.to_trace() (the "
        "attention over every token the model read)")
    assert probe.rollout(gen.to_trace()).dim() == 3


@pytest.fixture(scope="module")
def minilm():
    return probe.load_model("minilm")


@pytest.mark.parametrize("layers", [
    (i for i in range(2)), torch.tensor([0, 1]), "1", b"1", 2.0,
], ids=["generator", "tensor", "str", "bytes", "float"])
def test_trace_layers_that_are_no_list_of_ints(layers, minilm):
    """A generator was consumed by the check and then failed on ``len``. (``layers=np.int64(2)``
    was a TypeError, then this refusal; it is layer 2 now: tests/test_odd_inputs_hunt4.py.)"""
    model, tokenizer = minilm
    with pytest.raises(probe.ProbeError, match=r"^layers must be a list of integers, got "):
        probe.trace(model, "The cat sat.", tokenizer=tokenizer, layers=layers)
    for kept in (range(2), {0, 1}):  # ranges and sets of ints stay accepted
        assert probe.trace(model, "The cat sat.", tokenizer=tokenizer, layers=kept).num_layers == 2


@pytest.mark.parametrize("tokenizer", [5, "bert-base-uncased"], ids=["int", "str"])
def test_trace_with_something_that_is_no_tokenizer(tokenizer, minilm):
    """Was ``TypeError: 'int' object is not callable`` from the encoding."""
    with pytest.raises(probe.ProbeError, match=r"^tokenizer must be a tokenizer, got (int|str): "
                       r"pass the one probe\.load_model returned"):
        probe.trace(minilm[0], "The cat sat.", tokenizer=tokenizer)


@pytest.fixture(scope="module")
def vit_shapes():
    return probe.load_model("vit-shapes")[0]


def _cnn() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 2)).eval()


@pytest.mark.parametrize("method", ["ig", "rollout"])
def test_an_empty_image_batch_is_one_line(method, vit_shapes):
    """``probe.attribute(vit, x[:0], 'ig')`` was an IndexError from inside captum."""
    with pytest.raises(probe.ProbeError, match=r"^pixel_values \(0, 3, 32, 32\) hold no images: "
                       r"pass at least one image$"):
        probe.attribute(vit_shapes, torch.zeros(0, 3, 32, 32), method)


@pytest.mark.parametrize("method", ["gradcam", "ig", "saliency", "random", "rollout"])
def test_attribute_on_a_plain_torch_module_names_what_to_pass(method):
    """A plain CNN was guessed to be a text model: gradcam 'does not apply to text models', ig
    'needs token ids', random 'cannot capture attention'."""
    with pytest.raises(probe.ProbeError, match=r"^probe\.attribute needs a model probe recognises "
                       r"\(HuggingFace or timm\); Sequential is a plain torch module"):
        probe.attribute(_cnn(), torch.rand(1, 3, 8, 8), method)


def test_an_empty_image_batch_on_a_plain_cnn_is_one_line():
    from probe.capture import adapter_for

    with pytest.raises(probe.ProbeError, match=r"^images \(0, 3, 8, 8\) hold no images"):
        adapter_for(_cnn()).prepare(torch.zeros(0, 3, 8, 8))  # what perturbation methods call


def test_meta_tensors_are_one_line(vit_shapes, minilm):
    """A meta tensor (no data) failed deep inside: NotImplementedError / RuntimeError."""
    with pytest.raises(probe.ProbeError, match=r"pixel_values are on the meta device"):
        probe.trace(vit_shapes, torch.zeros(1, 3, 32, 32, device="meta"))
    with pytest.raises(probe.ProbeError, match=r"input_ids are on the meta device"):
        probe.trace(minilm[0], torch.zeros(1, 4, dtype=torch.long, device="meta"))


def test_inputs_made_under_inference_mode_work_with_gradient_methods(minilm, vit_shapes):
    """Ids tokenized (or pixels made) under ``torch.inference_mode()`` and used outside it:
    relevance and saliency failed with torch's 'Inference tensors cannot be saved for
    backward'. The caller's objects stay as they were."""
    model, tokenizer = minilm
    with torch.inference_mode():
        encoding = tokenizer("The cat sat because it was tired.", return_tensors="pt")
        pixels = torch.rand(1, 3, 32, 32)
    ids = encoding["input_ids"]
    target = probe.similarity_target(model, tokenizer, "A dog slept.")
    for method in ("relevance", "saliency"):
        attr = probe.attribute(model, encoding, method, target=target)
        assert attr.scores.shape[-1] == ids.shape[-1] and torch.isfinite(attr.scores).all()
        assert probe.attribute(vit_shapes, pixels, method).scores.isfinite().all()
    assert encoding["input_ids"] is ids and ids.is_inference() and pixels.is_inference()
    trace = probe.trace(model, encoding, tokenizer=tokenizer, requires_grad=True)
    plain = tokenizer("The cat sat because it was tired.", return_tensors="pt")
    assert trace.words is not None  # the BatchEncoding's word information survived the copy
    assert trace.words == probe.trace(model, plain, tokenizer=tokenizer).words


def test_ig_with_more_steps_than_memory_holds_is_one_line(vit_shapes):
    """``n_steps=10**9`` was a MemoryError (numpy tried to allocate 7 EiB)."""
    with pytest.raises(probe.ProbeError, match=r"^n_steps 1000000000 is too many: use at most "
                       r"4096 \(the default is 50"):
        probe.attribute(vit_shapes, torch.rand(1, 3, 32, 32), "ig", n_steps=10**9)


def test_ig_riemann_with_one_step_is_one_line(vit_shapes):
    """captum's Riemann rules assert ``n_steps > 1`` bare; Gauss-Legendre takes one step."""
    pixels = torch.rand(1, 3, 32, 32)
    for rule in ("riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"):
        with pytest.raises(probe.ProbeError, match=rf"^integration '{rule}' needs n_steps >= 2 "
                           r"\(got 1\): raise n_steps, or use integration='gausslegendre'"):
            probe.attribute(vit_shapes, pixels, "ig", n_steps=1, integration=rule)
    one = probe.attribute(vit_shapes, pixels, "ig", n_steps=1, integration="gausslegendre")
    assert one.scores.isfinite().all()
