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
source (``tests/test_generate_config.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._text import short_repr

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_generation_config", "check_sampling"]

#: ``generate``'s own parameters: not generation options, never in the config
_GENERATE_ARGS = (
    "generation_config", "logits_processor", "stopping_criteria", "prefix_allowed_tokens_fn",
    "synced_gpus", "assistant_model", "streamer", "negative_prompt_ids",
    "negative_prompt_attention_mask", "custom_generate", "use_model_defaults", "tokenizer",
)


#: options check_sampling compares as single numbers
_SCALARS = ("repetition_penalty", "do_sample", "temperature", "top_k", "top_p", "typical_p",
            "min_p", "top_h")


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


def check_generation_config(model: nn.Module, kwargs: dict[str, Any]) -> None:
    """Raise :class:`ProbeError` for options transformers' ``generate`` would refuse while
    preparing its config (``GenerationConfig.validate``) or its keywords (typos).

    Runs the model's own ``_prepare_generation_config`` (a copy of the configs; no forward
    pass, nothing of the model changed) where the model has one.
    """
    prepare = getattr(model, "_prepare_generation_config", None)
    if not callable(prepare):
        return
    options = {k: v for k, v in kwargs.items() if k not in _GENERATE_ARGS}
    try:
        _, unused = prepare(kwargs.get("generation_config"), **options)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ProbeError(_refusal(model, kwargs, exc)) from None
    _unused(model, unused)
