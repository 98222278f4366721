"""``probe.generate`` refuses invalid sampling options up front, with probe's one-line error.

Every refused case is also refused by ``transformers`` itself (side by side), every accepted
edge case also runs there: probe's rules are transformers' rules, applied before any forward
pass.
"""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import GenerationConfig

import probe
from tests._tiny import gpt2

BAD = [
    (dict(do_sample=True, temperature=0.0), r"temperature=0\.0 .*do_sample=False"),
    (dict(do_sample=True, temperature=-1.0), r"temperature=-1\.0 .*a float > 0"),
    (dict(do_sample=True, temperature=float("nan")), r"temperature=nan .*a float > 0"),
    (dict(do_sample=True, temperature=2), r"temperature=2 .*temperature=2\.0"),
    (dict(do_sample=True, temperature="0.7"), r"temperature='0\.7' .*a float > 0"),
    (dict(do_sample=True, top_k=-1), r"top_k=-1 .*positive int"),
    (dict(do_sample=True, top_k=2.5), r"top_k=2\.5 .*positive int"),
    (dict(do_sample=True, top_p=-0.5), r"top_p=-0\.5 .*\(0, 1\]"),
    (dict(do_sample=True, top_p="high"), r"top_p='high' .*\(0, 1\]"),
    (dict(do_sample=True, typical_p=0.0), r"typical_p=0\.0 .*\(0, 1\)"),
    (dict(do_sample=True, min_p=2.0), r"min_p=2\.0 .*\[0, 1\]"),
    (dict(do_sample=True, top_h=0.0), r"top_h=0\.0 .*\(0, 1\]"),
    (dict(repetition_penalty=0.0), r"repetition_penalty=0\.0 .*float > 0"),
    (dict(repetition_penalty=2), r"repetition_penalty=2 .*float > 0"),
]
FINE = [
    dict(do_sample=False, temperature=0.0),  # greedy ignores the sampling options
    dict(do_sample=True, temperature=1),  # 1 == 1.0: no temperature processor is built
    dict(do_sample=True, top_k=0),
    dict(do_sample=True, top_p=1.5),  # >= 1: no top-p processor is built
    dict(do_sample=True, typical_p=1.0),
    dict(do_sample=True, temperature=0.7, top_k=5, top_p=0.9, min_p=0.05),
]


@pytest.fixture(scope="module")
def model_and_ids():
    model, inputs = gpt2()
    return model, inputs["input_ids"][:1]


@pytest.mark.parametrize(("options", "message"), BAD, ids=[str(o) for o, _ in BAD])
def test_invalid_sampling_options_raise_before_any_forward(model_and_ids, options, message):
    model, ids = model_and_ids
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(probe.ProbeError, match=message) as err:
            probe.generate(model, ids, max_new_tokens=2, pad_token_id=0, **options)
    finally:
        handle.remove()
    assert not calls  # refused before the forward pass
    name = next(k for k in options if k != "do_sample")
    assert str(err.value).startswith(f"{name}=") and "\n" not in str(err.value)
    assert model.config._attn_implementation == "sdpa"  # restored after the refusal
    # transformers refuses the same options (later, and with its own error)
    with pytest.raises((ValueError, TypeError)):
        model.generate(ids, max_new_tokens=2, pad_token_id=0, **options)


@pytest.mark.parametrize("options", FINE, ids=[str(o) for o in FINE])
def test_valid_edge_cases_generate_as_transformers_does(model_and_ids, options):
    model, ids = model_and_ids
    torch.manual_seed(0)
    gen = probe.generate(model, ids, max_new_tokens=2, pad_token_id=0, **options)
    torch.manual_seed(0)
    ref = model.generate(ids, max_new_tokens=2, pad_token_id=0, **options)
    assert torch.equal(gen.sequences, ref)


def test_options_from_a_generation_config_are_named_with_their_source(model_and_ids):
    model, ids = model_and_ids
    config = GenerationConfig(do_sample=True, top_k=-3)
    with pytest.raises(probe.ProbeError, match=r"top_k=-3 \(from the generation_config passed\)"):
        probe.generate(model, ids, max_new_tokens=2, pad_token_id=0, generation_config=config)
    own = copy.deepcopy(model)
    own.generation_config.do_sample = True
    own.generation_config.temperature = 0.0
    with pytest.raises(probe.ProbeError, match=r"temperature=0\.0 \(from the model's "
                       r"generation_config\) .*do_sample=False"):
        probe.generate(own, ids, max_new_tokens=2, pad_token_id=0)
    # the call's keyword wins over the config, as in transformers
    probe.generate(own, ids, max_new_tokens=2, pad_token_id=0, temperature=0.5)
