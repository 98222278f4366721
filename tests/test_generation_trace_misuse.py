"""A GenerationTrace handed where a Trace is expected says to call ``to_trace()``.

A notebook user naturally writes ``probe.rollout(gen)`` or ``probe.show(gen, "heads")`` after
``gen = probe.generate(...)``: each is one ProbeError naming ``gen.to_trace()`` (they were an
AttributeError on ``require_attentions`` and, in ``probe.show``, "pass inputs= ... when
showing a model"), and ``getattr(gen, name, default)`` still works.
"""

from __future__ import annotations

import pickle

import pytest

import probe
from tests import _tiny

TO_TRACE = r"a GenerationTrace, not a probe\.Trace: pass gen\.to_trace\(\)"


@pytest.fixture(scope="module")
def gen() -> probe.GenerationTrace:
    model, inputs = _tiny.gpt2()
    return probe.generate(model, inputs["input_ids"][:1, :5], max_new_tokens=3)


@pytest.mark.parametrize("call", [
    lambda g: probe.rollout(g),
    lambda g: probe.head_stats(g),
    lambda g: probe.attention_flow(g, rows=[0]),
    lambda g: probe.plot(g, "model"),
    lambda g: probe.show(g, "heads"),
    lambda g: probe.show(g, "model"),
], ids=["rollout", "head_stats", "flow", "plot", "show_heads", "show_model"])
def test_analyses_and_views_of_a_generation_name_to_trace(gen, call) -> None:
    with pytest.raises(probe.ProbeError, match=TO_TRACE):
        call(gen)


def test_the_named_fix_works_and_lookups_stay_plain(gen) -> None:
    assert probe.rollout(gen.to_trace()).shape[0] == 1
    assert getattr(gen, "grid", "absent") == "absent"  # a Trace name: still an AttributeError
    with pytest.raises(AttributeError):
        gen.not_a_name_anywhere  # noqa: B018
    assert pickle.loads(pickle.dumps(gen)).num_generated == gen.num_generated
