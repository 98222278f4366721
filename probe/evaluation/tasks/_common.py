"""What the eval tasks share: the evaluation seeds and sizes, method and option checks,
the vision model's input size, progress bars and mean +- standard error."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["DEFAULT_MODEL", "DEFAULT_N", "EVAL_IMAGE_SEED", "MAX_IMAGE_SEED", "QUICK_N"]

EVAL_IMAGE_SEED: int = 20_000
"""Base seed of the evaluation images: ``make_shapes(n, EVAL_IMAGE_SEED + 1000 * seed)``.

Distinct from the ``vit-shapes`` training seeds (>= 1,000,000) and its held-out split (10,000).
"""

_TRAINING_SEEDS_FROM = 1_000_000
_RECIPE_EVAL_SEED = 10_000
MAX_IMAGE_SEED: int = (_TRAINING_SEEDS_FROM - EVAL_IMAGE_SEED) // 1000 - 1
"""The largest ``--seed`` of the evals on generated images (faithfulness, sanity): above it
``EVAL_IMAGE_SEED + 1000 * seed`` reaches the shapes models' training seeds."""

DEFAULT_N: dict[str, int | None] = {
    "faithfulness": 500, "sanity": 16, "text": None, "coref": None,
}
"""Default ``--n`` per task (``None``: every sentence pair / minimal pair)."""

QUICK_N: dict[str, int] = {"faithfulness": 48, "sanity": 4, "text": 8, "coref": 10}
"""``--n`` under ``--quick`` (an explicit ``--n`` wins)."""

DEFAULT_MODEL: dict[str, str] = {
    "faithfulness": "vit-shapes", "sanity": "vit-shapes", "text": "minilm", "coref": "minilm",
}


def _mean_se(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, standard error and count of the finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return float("nan"), float("nan"), 0
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, float("nan"), len(xs)
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var / len(xs)), len(xs)




def _progress(
    iterable: Iterable[Any], quiet: bool, desc: str, total: int | None = None
) -> Iterable[Any]:
    if quiet:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def _select_methods(
    modality: str, methods: Sequence[str], needs: str | None = None
) -> tuple[str, ...]:
    """``methods`` (every method of ``modality`` when empty, the random baseline last)
    checked against the registry;
    ``needs`` adds the methods that need that model capability (``"gates"``)."""
    from probe.attribution._registry import list_methods, method_spec

    available = list_methods(modality, needs=needs)  # type: ignore[arg-type]
    if not methods:  # the random baseline last, as the README's tables show it
        return tuple(sorted(available, key=lambda name: name == "random"))
    for name in methods:
        method_spec(name)  # unknown names raise
        if name not in available:
            raise ProbeError(
                f"method {name!r} does not apply to {modality} models: use one of {list(available)}"
            )
    return tuple(dict.fromkeys(methods))


def _vision_input(model: nn.Module) -> int:
    """The square input size of a vision model (images are generated at this size)."""
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    if adapter.modality != "vision":
        raise ProbeError(
            f"{type(model).__name__} is not a vision model: the faithfulness and sanity evals "
            "run on images (use --model vit-shapes, cnn-shapes or a timm model)"
        )
    size = adapter.input_size()
    if size is None:  # CNNs take any size: the one they were trained at (timm's config)
        configured = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
        size = tuple(configured[-2:]) if isinstance(configured, (tuple, list)) else None
    if size is None:
        raise ProbeError(
            f"cannot tell the input size of {type(model).__name__} (no fixed size and no "
            "pretrained_cfg['input_size']); set model.pretrained_cfg = {'input_size': (3, H, W)}"
        )
    h, w = size
    if h != w or h < 16:
        raise ProbeError(
            f"the shapes images are square and at least 16 pixels, but the model takes {h}x{w}; "
            "use a model with a square input of 16 pixels or more"
        )
    return h


def _check_options(options: Any, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``options`` (method -> keyword options) checked against the methods' declarations, so
    a bad option fails before any work instead of marking the method as skipped."""
    from probe.attribution._registry import method_options

    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ProbeError("options must map a method name to a dict of its keyword options")
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ProbeError(
            f"options for methods that do not run: {unknown}; evaluated: {list(names)}"
        )
    for name, given in options.items():
        method_options(name, given)
    return {k: dict(v) for k, v in options.items()}


def _image_seed(seed: int) -> int:
    value = EVAL_IMAGE_SEED + 1000 * seed
    if value >= _TRAINING_SEEDS_FROM or value == _RECIPE_EVAL_SEED:
        raise ProbeError(
            f"--seed {seed} would draw images from a vit-shapes training seed; use a --seed "
            f"below {(_TRAINING_SEEDS_FROM - EVAL_IMAGE_SEED) // 1000}"
        )
    return value


def _predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``[batch]`` predicted classes of a timm or HF vision classifier (CPU tensor)."""
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    return adapter.predicted_class(adapter.prepare(images))


def _paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Mean and standard error of the per-image differences ``a - b`` (same images)."""
    mean, se, _ = _mean_se([x - y for x, y in zip(a, b)])
    return {"mean_difference": mean, "se": se}


def _model_name(model: nn.Module, name: str | None) -> str:
    return name or getattr(model, "probe_name", None) or type(model).__name__


def cli_n_wording(message: str) -> str:
    """A task's refusal of ``n=`` in the command line's words (``--n``); other messages come
    back as they were."""
    found = re.fullmatch(r"n=(\S+) is more than (.*): use n=(\S+), or n=None to use all of them",
                         message)
    if found is not None:
        n, what, span = found.groups()
        return f"--n {n} is more than {what}: use --n {span}, or drop --n to use all of them"
    found = re.fullmatch(r"n must be a positive integer(?:, or None for all of them)?, got (.*)",
                         message)
    return message if found is None else f"--n must be a positive integer, got {found.group(1)}"


def take_first(items: Sequence[Any], n: Any, what: str) -> list[Any]:
    """The first ``n`` of ``items`` (all of them when ``n`` is ``None``).

    An ``n`` beyond ``len(items)`` is refused: it silently ran on fewer items than asked for
    (``probe eval coref --n 1000`` scored the 46 shipped pairs), and a result labelled with
    the larger ``n`` would overstate the evidence. Messages name ``n=`` (the Python keyword);
    ``probe eval`` words them as ``--n`` (:func:`cli_n_wording`).

    Args:
        items: the evaluation items.
        n: how many to take: a positive integer, or ``None``.
        what: names the items and their source in messages (``"minimal pairs of X"``).

    Raises:
        ProbeError: ``n`` is not a positive integer, or larger than ``len(items)``.
    """
    from probe._index import is_int

    if n is None:
        return list(items)
    if not is_int(n) or n < 1:
        raise ProbeError(f"n must be a positive integer, or None for all of them, got {n!r}")
    if n > len(items):
        span = "1" if len(items) == 1 else f"1..{len(items)}"
        raise ProbeError(f"n={n} is more than the {len(items)} {what}: use n={span}, or "
                         "n=None to use all of them")
    return list(items[: int(n)])
