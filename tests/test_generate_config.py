"""``probe.generate`` runs transformers' own generation-config validation up front (no forward
pass) and turns what it refuses into one line naming the option and its source; the same
options fail in ``transformers`` itself (side by side). Cases from ``GenerationConfig.validate``
(transformers 5.23) and ``generate``'s check of unused keywords."""

from __future__ import annotations

import copy

import pytest
from transformers import GenerationConfig

import probe
from tests._tiny import gpt2

BAD = [
    (dict(early_stopping="sometimes"),
     r"early_stopping='sometimes' \(passed to generate\) is refused by transformers' generate: "
     r"`early_stopping` must be a boolean or 'never', but is sometimes; fix or drop it$"),
    (dict(cache_implementation="bogus"),
     r"cache_implementation='bogus' \(passed to generate\) .*Invalid `cache_implementation` "
     r"\(bogus\)\. Choose one of: \('static'"),
    (dict(assistant_ensemble_weight=1.5),
     r"assistant_ensemble_weight=1\.5 \(passed to generate\) .*open interval"),
    (dict(compile_config={"fullgraph": True}),
     r"compile_config=\{'fullgraph': True\} \(passed to generate\) .*instance of `CompileConfig`"),
    (dict(suppress_tokens=[5], forced_bos_token_id=5),
     r"forced_bos_token_id=5 \(passed to generate\) with suppress_tokens=\[5\] \(passed to "
     r"generate\) is refused .*Forcing a token while suppressing it"),
    (dict(suppress_tokens=[5, 6], forced_eos_token_id=[6, 5]),
     r"forced_eos_token_id=\[6, 5\] \(passed to generate\) with suppress_tokens=\[5, 6\]"),
    (dict(watermarking_config={"bias": 2.0, "greenlist_ratio": 2.0}),
     r"watermarking_config=.* \(passed to generate\) .*`greenlist_ratio` should be in range"),
    (dict(temprature=0.7),
     r"temprature=0\.7 \(passed to generate\) is neither a generation option nor an input of "
     r"GPT2LMHeadModel \(did you mean temperature\?\): fix its spelling or drop it$"),
]


@pytest.fixture(scope="module")
def model_and_ids():
    model, inputs = gpt2()
    return model, inputs["input_ids"][:1]


def _refused(model, ids, message, **options) -> str:
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(probe.ProbeError, match=message) as err:
            probe.generate(model, ids, max_new_tokens=2, pad_token_id=0, **options)
    finally:
        handle.remove()
    assert not calls  # refused before any forward pass
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize(("options", "message"), BAD, ids=[str(o) for o, _ in BAD])
def test_options_transformers_validation_refuses_are_one_line_up_front(
    model_and_ids, options, message
):
    model, ids = model_and_ids
    _refused(model, ids, message, **options)
    assert model.config._attn_implementation == "sdpa"  # restored after the refusal
    with pytest.raises(ValueError):  # transformers refuses them too (with its own error)
        model.generate(ids, max_new_tokens=2, pad_token_id=0, **options)


def test_the_models_and_the_passed_generation_config_are_named(model_and_ids):
    model, ids = model_and_ids
    own = copy.deepcopy(model)
    own.generation_config.early_stopping = "sometimes"
    _refused(own, ids, r"^early_stopping='sometimes' \(from the model's generation_config\) is "
             r"refused .*; fix the model's generation_config \(model\.generation_config\."
             r"early_stopping, or generation_config\.json in its folder\)$")
    with pytest.raises(ValueError):
        own.generate(ids, max_new_tokens=2, pad_token_id=0)
    config = GenerationConfig()
    config.cache_implementation = "bogus"
    _refused(model, ids, r"^cache_implementation='bogus' \(from the generation_config passed\) "
             r".*; fix the generation_config passed$", generation_config=config)


def test_valid_options_still_generate_as_transformers_does(model_and_ids):
    import torch

    model, ids = model_and_ids
    options = dict(early_stopping=False, cache_implementation="dynamic", suppress_tokens=[5],
                   forced_eos_token_id=6)
    gen = probe.generate(model, ids, max_new_tokens=3, pad_token_id=0, **options)
    ref = model.generate(ids, max_new_tokens=3, pad_token_id=0, **options)
    assert torch.equal(gen.sequences, ref)


@pytest.mark.parametrize("settings, start", [
    ({"early_stopping": "sometimes"}, "probe: error: early_stopping='sometimes' (from the "
     "model's generation_config) is refused by transformers' generate: "),
    ({"do_sample": True, "temperature": 0.0},
     "probe: error: temperature=0.0 (from the model's generation_config)"),
], ids=["invalid-config", "bad-sampling"])
def test_cli_generate_with_a_bad_model_generation_config_is_one_line_exit_2(
    settings, start, tmp_path, capsys, monkeypatch
):
    """One the config validation refuses, and one the sampling checks refuse."""
    from probe.cli import main
    from probe.models import _registry

    original = _registry.load_model

    def load_broken(name, **kwargs):
        model, processor = original(name, **kwargs)
        model = copy.deepcopy(model)
        for key, value in settings.items():
            setattr(model.generation_config, key, value)
        return model, processor

    monkeypatch.setattr(_registry, "load_model", load_broken)
    out = tmp_path / "out"
    rc = main(["render", "heads", "--model", "toy-mt", "--text", "a huge tree", "--generate",
               "3", "--out", str(out), "--quiet"])
    _, err = capsys.readouterr()
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(start), err
    assert not out.exists() or not any(out.iterdir())
