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
    with pytest.raises(probe.ProbeError, match=r"got \w+: a generation: pass gen\.to_trace\(\)"):
        probe.rollout(gen)
    assert probe.rollout(gen.to_trace()).dim() == 3
