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

# greedy decoding ignores the sampling options' values (transformers warns, generates greedily):
# they stay valid; None leaves the default
FINE_ANY_MODE = [
    dict(temperature=0.0), dict(top_k=-1), dict(top_p=2.0), dict(top_p=-1.0),
    dict(do_sample=None), dict(temperature=None), dict(num_beams=1), dict(min_new_tokens=0),
    dict(no_repeat_ngram_size=2), dict(exponential_decay_length_penalty=(1, 0.5), eos_token_id=3),
    dict(bad_words_ids=[[7]]), dict(begin_suppress_tokens=[7]), dict(guidance_scale=1.0),
    dict(do_sample=True, epsilon_cutoff=3e-4, eta_cutoff=3e-4),
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


@pytest.mark.parametrize("options", FINE + FINE_ANY_MODE,
                         ids=[str(o) for o in FINE + FINE_ANY_MODE])
def test_valid_edge_cases_generate_as_transformers_does(model_and_ids, options):
    """Sampling values greedy decoding ignores, and valid values in any decoding mode."""
    model, ids = model_and_ids
    torch.manual_seed(0)
    gen = probe.generate(model, ids, max_new_tokens=3, pad_token_id=0, **options)
    torch.manual_seed(0)
    ref = model.generate(ids, max_new_tokens=3, pad_token_id=0, **options)
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


# options of the wrong type or out of range in every decoding mode (greedy too), and values
# transformers' own logits processors refuse (built up front from the prepared config)
BAD_ANY_MODE = [
    (dict(temperature="hot"), "temperature='hot' must be a number: pass a float > 0"),
    (dict(top_p="high"), "top_p='high' must be a number: pass a fraction in (0, 1]"),
    (dict(length_penalty="x"), "length_penalty='x' must be a number: pass a float"),
    (dict(do_sample="yes"), "do_sample='yes' must be True or False: pass True or False"),
    (dict(do_sample=1), "do_sample=1 must be True or False"),
    (dict(use_cache="no"), "use_cache='no' must be True or False"),
    (dict(num_beams=0), "num_beams=0 is out of range: pass a positive int (1: no beam search)"),
    (dict(num_beams=-1), "num_beams=-1 is out of range: pass a positive int"),
    (dict(num_beams=1.5), "num_beams=1.5 must be an int: pass a positive int"),
    (dict(num_beams="2"), "num_beams='2' must be an int"),
    (dict(num_return_sequences=0), "num_return_sequences=0 is out of range: pass a positive int"),
    (dict(num_beam_groups=0), "num_beam_groups=0 is out of range: pass a positive int"),
    (dict(min_new_tokens=-1), "min_new_tokens=-1 is out of range: pass an int >= 0"),
    (dict(min_new_tokens="3"), "min_new_tokens='3' must be an int: pass an int >= 0"),
    (dict(no_repeat_ngram_size=1.5), "no_repeat_ngram_size=1.5 must be an int: pass an int >= 0"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size=-1 is out of range"),
    (dict(top_k=2.5), "top_k=2.5 must be an int: pass a positive int such as 50"),
    (dict(guidance_scale=2.0), "guidance_scale=2.0 (passed to generate) asks for classifier-free "
                               "guidance"),
    (dict(encoder_repetition_penalty=0.0), "encoder_repetition_penalty=0.0 (passed to generate) "
                                           "is refused by transformers' generate: `penalty` has "
                                           "to be a strictly positive float"),
    (dict(bad_words_ids=5), "bad_words_ids=5 (passed to generate) is refused by transformers' "
                            "generate: `bad_words_ids` has to be a non-empty list"),
    (dict(begin_suppress_tokens=5), "begin_suppress_tokens=5 (passed to generate) is refused by "
                                    "transformers' generate"),
    (dict(sequence_bias={(5,): "x"}), "sequence_bias={(5,): 'x'} (passed to generate) is "
                                      "refused by transformers' generate"),
    (dict(max_new_tokens=-3), "max_new_tokens must be a positive integer, got -3"),
    (dict(repetition_penalty=0), "repetition_penalty=0 is not a valid repetition penalty"),
]


@pytest.mark.parametrize(("options", "message"), BAD_ANY_MODE,
                         ids=[str(o) for o, _ in BAD_ANY_MODE])
def test_bad_generation_options_are_one_line_before_any_forward(model_and_ids, options, message):
    model, ids = model_and_ids
    options = dict(options)
    new = options.pop("max_new_tokens", 2)
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(probe.ProbeError) as err:
            probe.generate(model, ids, max_new_tokens=new, pad_token_id=0, **options)
    finally:
        handle.remove()
    assert not calls
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert model.config._attn_implementation == "sdpa"


def test_bad_option_in_the_models_generation_config_is_named_with_its_source(model_and_ids):
    model, ids = model_and_ids
    own = copy.deepcopy(model)
    own.generation_config.no_repeat_ngram_size = 1.5
    with pytest.raises(probe.ProbeError, match=r"^no_repeat_ngram_size=1\.5 \(from the model's "
                       r"generation_config\) must be an int"):
        probe.generate(own, ids, max_new_tokens=2, pad_token_id=0)
    own.generation_config.no_repeat_ngram_size = 0
    config = GenerationConfig(do_sample="no")
    with pytest.raises(probe.ProbeError, match=r"^do_sample='no' \(from the generation_config "
                       r"passed\) must be True or False"):
        probe.generate(own, ids, max_new_tokens=2, pad_token_id=0, generation_config=config)
