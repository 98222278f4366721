"""Checking ``generate``'s sampling options before anything runs.

``transformers`` builds its logits processors (temperature, top-k, top-p, ...) after the
prompt's forward pass and raises its own ``ValueError`` from deep inside ``generate``.
:func:`check_sampling` applies the same rules up front, to the values ``generate`` would use
(the call's keyword, else the ``generation_config=`` passed, else the model's own), and raises
:class:`ProbeError` naming the option, where it came from and the fix. It refuses exactly what
``transformers`` 5 refuses (``tests/test_generate_options.py`` holds both side by side).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_sampling"]


def _value(model: nn.Module, kwargs: dict[str, Any], name: str) -> tuple[Any, str]:
    """The value ``generate`` uses for ``name`` and where it comes from (for the message)."""
    if name in kwargs:
        return kwargs[name], f"{name}={kwargs[name]!r}"
    passed = kwargs.get("generation_config")
    config = passed if passed is not None else getattr(model, "generation_config", None)
    value = getattr(config, name, None)
    where = (
        "the model's generation_config" if passed is None else "the generation_config passed"
    )
    return value, f"{name}={value!r} (from {where})"


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
