"""Checking ``generate``'s sampling options before anything runs.

``transformers`` builds its logits processors (temperature, top-k, top-p, ...) after the
prompt's forward pass and raises its own ``ValueError`` from deep inside ``generate``.
:func:`check_sampling` applies the same rules up front, to the values ``generate`` would use
(the call's keyword, else the ``generation_config=`` passed, else the model's own), and raises
:class:`ProbeError` naming the option, where it came from and the fix. It refuses exactly what
``transformers`` 5 refuses (``tests/test_generate_options.py`` holds both side by side).

:func:`check_generation_config` then runs transformers' own preparation of the generation
config (``_prepare_generation_config``: the model's config, the one passed, the call's
keywords, and ``GenerationConfig.validate``) and its check of unused keywords, still before
any forward pass, and turns whatever they refuse into one line naming the option and its
source (``tests/test_generate_config.py``). :func:`check_processors` finally builds
transformers' own logits processors from that prepared config (no forward pass), so every
value a processor refuses (``no_repeat_ngram_size=1.5``, ``bad_words_ids=5``, ...) is refused
up front too, named by its option.

Option types are checked in every decoding mode (:func:`check_option_types`): a flag must be
a bool (``do_sample="no"`` would sample), a number a number (``temperature="hot"``), a count an
int within its range (``num_beams=0`` divides by zero deep inside). Out-of-range *values* of
sampling options are refused only with ``do_sample=True``: greedy decoding ignores them, as in
transformers (``temperature=0.0`` with ``do_sample=False`` still generates greedily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._text import short_repr

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_generation_config", "check_option_types", "check_processors",
           "check_sampling"]

#: ``generate``'s own parameters: not generation options, never in the config
_GENERATE_ARGS = (
    "generation_config", "logits_processor", "stopping_criteria", "prefix_allowed_tokens_fn",
    "synced_gpus", "assistant_model", "streamer", "negative_prompt_ids",
    "negative_prompt_attention_mask", "custom_generate", "use_model_defaults", "tokenizer",
)


#: options check_sampling compares as single numbers
_SCALARS = ("repetition_penalty", "do_sample", "temperature", "top_k", "top_p", "typical_p",
            "min_p", "top_h")


#: options generate reads as True/False (a truthy string would switch them on silently)
_FLAGS = ("do_sample", "use_cache", "renormalize_logits", "remove_invalid_values")

#: number options and their valid values (for the message)
_NUMBERS = {
    "temperature": "a float > 0 such as 0.7 (1.0 leaves the scores unchanged)",
    "top_p": "a fraction in (0, 1] such as 0.9 (1.0 turns top-p off)",
    "typical_p": "a fraction in (0, 1) such as 0.95 (1.0 turns typical sampling off)",
    "min_p": "a fraction in [0, 1] such as 0.05, or None to turn min-p off",
    "top_h": "a fraction in (0, 1] such as 0.9, or None to turn top-h off",
    "epsilon_cutoff": "a fraction in (0, 1) such as 3e-4 (0.0 turns it off)",
    "eta_cutoff": "a fraction in (0, 1) such as 3e-4 (0.0 turns it off)",
    "repetition_penalty": "a float > 0 (1.0 is none, 1.2 discourages repeats)",
    "encoder_repetition_penalty": "a float > 0 (1.0 is none)",
    "length_penalty": "a float (1.0 is none)",
    "diversity_penalty": "a float >= 0 (0.0 is none)",
    "penalty_alpha": "a float >= 0 (0.0 is none)",
}

#: count options: (smallest valid value, valid values for the message)
_COUNTS = {
    "num_beams": (1, "a positive int (1: no beam search)"),
    "num_return_sequences": (1, "a positive int (1 per prompt)"),
    "num_beam_groups": (1, "a positive int (1: no groups)"),
    "top_k": (None, "a positive int such as 50, or top_k=0 to turn top-k filtering off"),
    "no_repeat_ngram_size": (0, "an int >= 0 such as 3 (0 turns it off)"),
    "encoder_no_repeat_ngram_size": (0, "an int >= 0 such as 3 (0 turns it off)"),
    "min_new_tokens": (0, "an int >= 0 (0: no minimum)"),
    "min_length": (0, "an int >= 0 (0: no minimum)"),
}


def _value(model: nn.Module, kwargs: dict[str, Any], name: str) -> tuple[Any, str]:
    """The value ``generate`` uses for ``name`` and where it comes from (for the message)."""
    if name in kwargs:
        return kwargs[name], f"{name}={short_repr(kwargs[name])}"
    passed = kwargs.get("generation_config")
    config = passed if passed is not None else getattr(model, "generation_config", None)
    value = getattr(config, name, None)
    where = (
        "the model's generation_config" if passed is None else "the generation_config passed"
    )
    return value, f"{name}={short_repr(value)} (from {where})"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _float_above_zero(value: Any) -> bool:
    return isinstance(value, float) and value > 0  # NaN fails; transformers refuses ints here


def check_option_types(model: nn.Module, kwargs: dict[str, Any]) -> None:
    """Raise :class:`ProbeError` for a generation option of the wrong type, or a count out of
    its range, in any decoding mode (transformers uses them wrongly or fails deep inside).

    Flags (``do_sample``, ``use_cache``, ...) must be Python bools, number options real
    numbers, counts (``num_beams``, ``min_new_tokens``, ...) ints within their range
    (``top_k``'s range is left to :func:`check_sampling`: greedy decoding ignores it). ``None``
    leaves the default.
    """
    from probe._index import is_int, is_real

    for name in _FLAGS:
        value, text = _value(model, kwargs, name)
        if value is not None and not isinstance(value, bool):
            fix = "bool(value)" if hasattr(value, "dtype") else "True or False"
            raise ProbeError(f"{text} must be True or False: pass {fix}")
    for name, valid in _NUMBERS.items():
        value, text = _value(model, kwargs, name)
        if value is not None and not is_real(value):
            raise ProbeError(f"{text} must be a number: pass {valid}")
    for name, (low, valid) in _COUNTS.items():
        value, text = _value(model, kwargs, name)
        if value is not None and not is_int(value):
            raise ProbeError(f"{text} must be an int: pass {valid}")
        if value is not None and low is not None and value < low:
            raise ProbeError(f"{text} is out of range: pass {valid}")


def check_sampling(model: nn.Module, kwargs: dict[str, Any]) -> None:
    """Raise :class:`ProbeError` for a sampling option ``model.generate`` would reject.

    Rules (those of transformers' logits processors, applied only where ``generate`` builds
    them): ``repetition_penalty`` a float > 0 unless 1.0; with sampling on (``do_sample``):
    ``temperature`` a float > 0 unless 1.0, ``top_k`` a positive int unless 0, ``top_p``
    >= 0 when below 1, ``typical_p`` > 0 when below 1, ``min_p`` in ``[0, 1]``, ``top_h`` in
    ``(0, 1]``. A value of the wrong type is refused too (transformers fails on it).
    """
    for name in _SCALARS:
        value, text = _value(model, kwargs, name)
        if isinstance(value, (bool, int, float)):
            continue  # numpy's float64 is a float: transformers takes it
        if hasattr(value, "shape"):  # a tensor or array: comparisons below would be ambiguous
            fix = {"do_sample": "bool(value)", "top_k": "int(value)"}.get(name, "float(value)")
            raise ProbeError(f"{text} must be a plain Python number or bool, not a "
                             f"{type(value).__name__}: pass e.g. {fix}")
    check_option_types(model, kwargs)
    penalty, text = _value(model, kwargs, "repetition_penalty")
    if penalty is not None and penalty != 1.0 and not _float_above_zero(penalty):
        raise ProbeError(
            f"{text} is not a valid repetition penalty: pass a float > 0 (1.0 is none, 1.2 "
            "discourages repeats)"
        )
    sampling, _ = _value(model, kwargs, "do_sample")
    if not sampling:
        return  # greedy: transformers ignores the sampling options (and warns)

    temperature, text = _value(model, kwargs, "temperature")
    if temperature is not None and temperature != 1.0 and not _float_above_zero(temperature):
        if _number(temperature) and temperature == 0:
            fix = "for greedy decoding pass do_sample=False, else a temperature > 0 such as 0.7"
        elif _number(temperature) and temperature > 0:
            fix = f"pass it as a float: temperature={float(temperature)!r}"
        else:
            fix = "pass a float > 0 such as 0.7 (1.0 leaves the scores unchanged)"
        raise ProbeError(f"{text} cannot be used with do_sample=True: {fix}")
    top_k, text = _value(model, kwargs, "top_k")
    if top_k is not None and top_k != 0 and not (isinstance(top_k, int) and top_k > 0):
        raise ProbeError(
            f"{text} cannot be used with do_sample=True: pass a positive int such as 50, or "
            "top_k=0 to turn top-k filtering off"
        )
    # (option, invalid(value) for a number, fix): invalid exactly where transformers raises
    fractions = (
        ("top_p", lambda v: v < 1.0 and v < 0.0, "a fraction in (0, 1] such as 0.9 (1.0 "
         "turns top-p off)"),
        ("typical_p", lambda v: v < 1.0 and not v > 0.0, "a fraction in (0, 1) such as 0.95 "
         "(1.0 turns typical sampling off)"),
        ("min_p", lambda v: not 0.0 <= v <= 1.0, "a fraction in [0, 1] such as 0.05, or None "
         "to turn min-p off"),
        ("top_h", lambda v: not 0.0 < v <= 1.0, "a fraction in (0, 1] such as 0.9, or None to "
         "turn top-h off"),
    )
    for name, invalid, fix in fractions:
        value, text = _value(model, kwargs, name)
        if value is not None and (not _number(value) or invalid(float(value))):
            raise ProbeError(f"{text} cannot be used with do_sample=True: pass {fix}")


def _one_line(exc: BaseException) -> str:
    """transformers' message, on one line, without its final period."""
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__


def _source(model: nn.Module, kwargs: dict[str, Any], name: str) -> str:
    """``name=value`` and where it comes from: the call, the config passed or the model's."""
    if name in kwargs:
        return f"{name}={short_repr(kwargs[name])} (passed to generate)"
    return _value(model, kwargs, name)[1]


def _named(model: nn.Module, kwargs: dict[str, Any], message: str) -> list[str]:
    """The generation options a transformers message names in backquotes, in its order."""
    import re

    from transformers import GenerationConfig

    known = set(vars(GenerationConfig()))
    names: list[str] = []
    for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", message):
        if name not in names and (name in kwargs or name in known):
            names.append(name)
    return names


def _refusal(model: nn.Module, kwargs: dict[str, Any], exc: BaseException) -> str:
    message = _one_line(exc)
    names = _named(model, kwargs, message)
    if not names:
        return (f"transformers refuses the generation settings: {message}; fix the call's "
                "options or the model's generation_config")
    given = [name for name in names if name in kwargs]
    names = given or [n for n in names if _value(model, kwargs, n)[0] is not None][:2] or names[:1]
    options = " with ".join(_source(model, kwargs, name) for name in names)
    if names[0] in kwargs:
        fix = "fix or drop it"
    elif kwargs.get("generation_config") is not None:
        fix = "fix the generation_config passed"
    else:  # transformers validates the model's config before the call's keywords apply
        fix = (f"fix the model's generation_config (model.generation_config.{names[0]}, or "
               "generation_config.json in its folder)")
    return f"{options} is refused by transformers' generate: {message}; {fix}"


def _unused(model: nn.Module, unused: dict[str, Any]) -> None:
    """Refuse keywords that are neither generation options nor inputs of the model."""
    import difflib

    from transformers import GenerationConfig

    validate = getattr(model, "_validate_model_kwargs", None)
    if not callable(validate) or not unused:
        return
    try:
        validate(dict(unused))
    except ValueError:
        known = [k for k in vars(GenerationConfig()) if not k.startswith("_")]
        for name in unused:
            try:
                validate({name: unused[name]})
            except ValueError:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
                hint = f" (did you mean {close[0]}?)" if close else ""
                if name in ("generator", "seed", "random_state"):
                    hint = (" (sampling draws from torch's global random state: call "
                            "torch.manual_seed(n) before probe.generate)")
                raise ProbeError(
                    f"{name}={short_repr(unused[name])} (passed to generate) is neither a "
                    "generation "
                    f"option nor an input of {type(model).__name__}{hint}: fix its spelling or "
                    "drop it"
                ) from None
        raise


def check_generation_config(model: nn.Module, kwargs: dict[str, Any]) -> Any:
    """Raise :class:`ProbeError` for options transformers' ``generate`` would refuse while
    preparing its config (``GenerationConfig.validate``) or its keywords (typos).

    Runs the model's own ``_prepare_generation_config`` (a copy of the configs; no forward
    pass, nothing of the model changed) where the model has one, and returns the prepared
    config (``None`` without one).
    """
    prepare = getattr(model, "_prepare_generation_config", None)
    if not callable(prepare):
        return None
    options = {k: v for k, v in kwargs.items() if k not in _GENERATE_ARGS}
    try:
        config, unused = prepare(kwargs.get("generation_config"), **options)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ProbeError(_refusal(model, kwargs, exc)) from None
    _unused(model, unused)
    return config


#: transformers' logits processors and the option each is built from
_PROCESSORS = {
    "SequenceBiasLogitsProcessor": "sequence_bias",
    "EncoderRepetitionPenaltyLogitsProcessor": "encoder_repetition_penalty",
    "RepetitionPenaltyLogitsProcessor": "repetition_penalty",
    "NoRepeatNGramLogitsProcessor": "no_repeat_ngram_size",
    "EncoderNoRepeatNGramLogitsProcessor": "encoder_no_repeat_ngram_size",
    "NoBadWordsLogitsProcessor": "bad_words_ids",
    "MinLengthLogitsProcessor": "min_length",
    "MinNewTokensLengthLogitsProcessor": "min_new_tokens",
    "ExponentialDecayLengthPenalty": "exponential_decay_length_penalty",
    "SuppressTokensLogitsProcessor": "suppress_tokens",
    "SuppressTokensAtBeginLogitsProcessor": "begin_suppress_tokens",
    "TemperatureLogitsWarper": "temperature",
    "TopKLogitsWarper": "top_k",
    "TopPLogitsWarper": "top_p",
    "MinPLogitsWarper": "min_p",
    "TopHLogitsWarper": "top_h",
    "TypicalLogitsWarper": "typical_p",
    "EpsilonLogitsWarper": "epsilon_cutoff",
    "EtaLogitsWarper": "eta_cutoff",
}


def _processor_option(exc: BaseException) -> str | None:
    """The option of the transformers logits processor whose constructor raised ``exc``."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        name = type(owner).__name__ if owner is not None else ""
        if tb.tb_frame.f_code.co_name == "__init__" and name in _PROCESSORS:
            found = _PROCESSORS[name]
        tb = tb.tb_next
    return found


def check_processors(model: nn.Module, kwargs: dict[str, Any], config: Any,
                     input_ids: Any) -> None:
    """Build transformers' own logits processors from the prepared generation ``config``
    (as ``generate`` does after the prompt's forward pass; no forward pass here) and turn what
    their constructors refuse into one line naming the option and its source.

    ``input_ids`` ``[batch, prompt]``: the prompt (its length places the first step).
    """
    build = getattr(model, "_get_logits_processor", None)
    if config is None or not callable(build) or input_ids is None:
        return
    import copy

    import torch

    config = copy.copy(config)  # the processors read the EOS ids as generate prepares them
    eos = config.eos_token_id
    try:
        eos = None if eos is None else torch.as_tensor(eos, device=input_ids.device).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        return  # odd EOS ids: left to check_token_options and transformers
    config._eos_token_tensor = eos
    try:
        build(generation_config=config, input_ids_seq_length=int(input_ids.shape[-1]),
              encoder_input_ids=input_ids, logits_processor=[], device=input_ids.device,
              model_kwargs={})
    except (ValueError, TypeError) as exc:
        name = _processor_option(exc)
        message = _one_line(exc)
        if name is None:
            raise ProbeError(_refusal(model, kwargs, exc)) from None
        fix = "fix or drop it" if name in kwargs else (
            "fix the generation_config passed" if kwargs.get("generation_config") is not None
            else f"fix the model's generation_config (model.generation_config.{name})")
        raise ProbeError(f"{_source(model, kwargs, name)} is refused by transformers' generate: "
                         f"{message}; {fix}") from None
