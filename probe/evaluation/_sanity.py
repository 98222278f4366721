"""Sanity checks for attribution maps: cascading model-parameter randomisation.

Adebayo et al. 2018, "Sanity Checks for Saliency Maps": if a map explains the *trained*
model, it must change when the model's weights are destroyed. The check re-initialises the
parameters of a deep copy of the model block by block, from the output down to the input
(the classifier head first, then the last transformer block, ..., the first block, and the
embeddings last), recomputes every method's map after each step and reports the Spearman
rank correlation with the map of the trained model. A map whose correlation stays high while
the weights it should depend on are random is not explaining the model. Attention-only maps
(``attention``, ``rollout``) are reported as they come out: they cannot react to the head,
and that is worth seeing.

The order is found generically (:func:`cascade_order`): the transformer stack is the
``ModuleList``/``Sequential`` named ``blocks``, ``layer``, ``layers``, ``h`` or ``block`` (timm
``model.blocks``, HF ``encoder.layer``, ``model.layers``, ``transformer.h``, ...); a CNN's
stacks are its stages (ResNet ``layer1..4``, timm ``stages.i`` or ``blocks.i``), one residual
block per step. Parameters registered after the first block are the layers above it,
parameters registered before it are the embeddings (a CNN's stem). The original model is never
modified, and not even run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from probe.attribution._registry import Attribution
from probe._errors import ProbeError
from probe._index import is_int
from probe._report import markdown_table

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["SanityResult", "cascade_order", "sanity_check"]

Explain = Callable[["nn.Module"], Union["torch.Tensor", Attribution]]
Run = Union[str, tuple[str, Mapping[str, Any]], Explain]
Methods = Union[Run, Sequence[Run], Mapping[str, Run]]

ORIGINAL = "original"
"""Name of step 0: the copy before any parameter is randomised."""


@dataclass(frozen=True, eq=False)
class SanityResult:
    """Rank correlation of each method's map with its map on the trained model, per step.

    Attributes:
        steps: ``("original", first randomised block, ...)``; cumulative: after step ``i`` every
            block in ``steps[1 : i + 1]`` is random (top-down: head first, embeddings last).
        correlations: method -> ``[num_steps]`` Spearman correlation (mean over the batch) with
            the map of the trained model. Step 0 recomputes the map on the untouched copy: 1 for
            deterministic methods, below 1 shows the method's own run-to-run noise.
        per_item: method -> ``[num_steps, batch]`` the same per batch item.
        maps: method -> ``[num_steps, batch, num_units]`` the maps after each step (raw scores).
        reference: method -> ``[batch, num_units]`` the map of the trained model.
        absolute: method -> whether the correlation used absolute values (signed maps).
        seed: the seed of the re-initialisation (and of stochastic methods).
    """

    steps: tuple[str, ...]
    correlations: dict[str, torch.Tensor]
    per_item: dict[str, torch.Tensor] = field(repr=False)
    maps: dict[str, torch.Tensor] = field(repr=False)
    reference: dict[str, torch.Tensor] = field(repr=False)
    absolute: dict[str, bool] = field(default_factory=dict)
    seed: int = 0

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.correlations)

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per method and step: ``method, step (index), randomised (block name),
        correlation``."""
        return [
            {"method": m, "step": i, "randomised": s, "correlation": float(self.correlations[m][i])}
            for m in self.correlations
            for i, s in enumerate(self.steps)
        ]

    def to_markdown(self, digits: int = 3) -> str:
        """Steps as rows, methods as columns (Spearman correlation with the trained model)."""
        methods = list(self.correlations)
        rows = [[step, *(float(self.correlations[m][i]) for m in methods)]
                for i, step in enumerate(self.steps)]
        return markdown_table(["randomised up to", *methods], rows, digits, missing=None)

    def __str__(self) -> str:
        return self.to_markdown()


# --------------------------------------------------------------------------- the order
def cascade_order(model: nn.Module) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The order of cascading randomisation: ``((step name, parameter names), ...)``, top-down.

    Parameters are grouped into units: each block of a stack (``blocks.3``,
    ``bert.encoder.layer.5``, a CNN's ``layer4.1``) and, outside the stacks, each module owning
    parameters (``head``, ``norm``, ``classifier``, ``bert.pooler.dense``; a parameter set on
    the model itself, such as timm's ``cls_token``, is its own unit). Units registered before
    the first block form one last step named ``embeddings`` (``stem`` for CNNs; or their common
    module prefix, e.g. ``bert.embeddings``); all others are steps in reverse registration
    order, so the classifier head comes first and the first block last before the embeddings.
    Tied parameters appear once (under their first name).
    """
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    stacks = adapter.stacks()
    units: dict[str, list[str]] = {}
    blocks: set[str] = set()
    for pname, _ in model.named_parameters():
        unit = None
        for stack in stacks:
            if pname.startswith(stack + "."):
                index = pname[len(stack) + 1 :].split(".", 1)[0]
                unit = f"{stack}.{index}"
                blocks.add(unit)
                break
        if unit is None:
            unit = pname.rsplit(".", 1)[0] if "." in pname else pname
        units.setdefault(unit, []).append(pname)
    names = list(units)
    first_block = next(i for i, u in enumerate(names) if u in blocks)
    below, above = names[:first_block], names[first_block:]
    steps = [(u, tuple(units[u])) for u in reversed(above)]
    if below:
        params = tuple(p for u in below for p in units[u])
        modules = {name for name, _ in model.named_modules()}
        prefix = _common_prefix(below)
        # name the step after a module holding only embeddings (e.g. "bert.embeddings")
        if not prefix or prefix not in modules or any(s.startswith(prefix + ".") for s in stacks):
            prefix = adapter.input_step
        steps.append((prefix, params))
    return tuple(steps)


def _common_prefix(units: list[str]) -> str:
    parts = [u.split(".") for u in units]
    prefix: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        prefix.append(level[0])
    return ".".join(prefix)


def _randomise(params: list[torch.Tensor], gen: torch.Generator) -> None:
    """Re-initialise in place: i.i.d. normal truncated at 2 sigma, sigma = the tensor's RMS
    (0.02 for all-zero tensors such as biases), so every tensor keeps its scale but loses what
    was learned (LayerNorm gains included)."""
    import torch

    with torch.no_grad():
        for p in params:
            rms = float(p.detach().double().pow(2).mean().sqrt()) if p.numel() else 0.0
            sigma = rms if rms > 0 and math.isfinite(rms) else 0.02
            noise = torch.empty(p.shape, dtype=torch.float32)
            torch.nn.init.trunc_normal_(noise, 0.0, sigma, -2 * sigma, 2 * sigma, generator=gen)
            p.copy_(noise.to(device=p.device, dtype=p.dtype))


# --------------------------------------------------------------------------- methods
def _explainers(
    methods: Methods,
    inputs: Any,
    tokenizer: Any,
    seed: int,
    options: dict[str, Any],
    target_box: list[Any],
) -> list[tuple[str, Explain, bool]]:
    """``(name, explain(model) -> scores, is_registered_name)`` for every method."""
    if isinstance(methods, str) or callable(methods) or _is_pair(methods):
        items: list[tuple[str, Any]] = [(_name(methods), methods)]
    elif isinstance(methods, Mapping):
        items = [(str(k), v) for k, v in methods.items()]
    elif isinstance(methods, Sequence):
        items = [(_name(m), m) for m in methods]
    else:
        raise ProbeError(
            f"methods must be a method name, a callable explain(model) -> scores, or a list or "
            f"mapping of them, got {type(methods).__name__}"
        )
    if not items:
        raise ProbeError("no methods given: pass at least one method name or explain callable")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ProbeError(f"duplicate method names {names}: pass a mapping with distinct names")
    out = []
    for name, m in items:
        if isinstance(m, str) or _is_pair(m):
            from probe.attribution._registry import attribute, method_options

            method, own = (m, {}) if isinstance(m, str) else m
            merged = {**options, **own}
            method_options(method, merged)  # unknown names and bad options fail before any work

            def explain(
                model: nn.Module, _m: str = method, _o: dict[str, Any] = merged
            ) -> Attribution:
                return attribute(
                    model,
                    inputs,
                    _m,
                    tokenizer=tokenizer,
                    target=target_box[0],
                    seed=seed,
                    **_o,
                )

            out.append((name, explain, True))
        elif callable(m):
            out.append((name, m, False))
        else:
            raise ProbeError(
                f"method {name!r} must be a registered name, a (name, options) pair or a "
                "callable explain(model), "
                f"got {type(m).__name__}"
            )
    return out


def _is_pair(m: Any) -> bool:
    """``m`` is a ``(method name, options)`` pair."""
    return isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str) and isinstance(
        m[1], Mapping
    )


def _name(m: Any) -> str:
    if isinstance(m, str):
        return m
    if _is_pair(m):
        from probe.attribution._registry import method_label

        return method_label(m[0], m[1])  # as compare_batches labels it
    return str(getattr(m, "__name__", type(m).__name__))


def _as_map(value: Any, name: str) -> tuple[torch.Tensor, bool | None]:
    import torch

    signed = None
    if isinstance(value, Attribution):
        signed = value.signed
        value = value.scores
    if not isinstance(value, torch.Tensor) or value.dim() not in (1, 2):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ProbeError(
            f"method {name!r} must return scores [batch, num_units] or an Attribution, got {shape}"
        )
    value = value.detach().to("cpu", torch.float64)
    return (value if value.dim() == 2 else value[None]), signed


def _check_inputs(model: nn.Module, inputs: Any, tokenizer: Any) -> None:
    """Refuse empty inputs and inputs the model's adapter refuses (e.g. one image ``[3, H, W]``)
    before any work, with the adapter's own message."""
    import torch

    from probe.capture import adapter_for

    tensors = (
        list(inputs.values()) if isinstance(inputs, Mapping)
        else [inputs] if isinstance(inputs, torch.Tensor) else []
    )
    empty = any(isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape[0] == 0 for t in tensors)
    if empty or (isinstance(inputs, Sequence) and not isinstance(inputs, str) and not inputs):
        raise ProbeError("no inputs: pass at least one item")
    adapter_for(model).prepare(inputs, tokenizer=tokenizer)


def _fixed_target(model: nn.Module, inputs: Any, tokenizer: Any) -> Any:
    """The classes the trained model predicts (``Tensor [batch]``), or ``None`` for models
    without class logits."""
    import torch

    from probe.attribution._targets import model_logits
    from probe.capture import adapter_for
    from probe.evaluation._perturb import _eval_mode, text_inputs

    adapter = adapter_for(model)
    with _eval_mode(model):
        if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
            out = adapter.call(inputs.detach().to(adapter.device, adapter.dtype))
        else:
            kwargs, _ = text_inputs(model, inputs, tokenizer)
            out = adapter.forward(kwargs)
    logits = model_logits(out, model)
    if logits is None or logits.dim() != 2:
        return None
    return logits.argmax(-1).cpu()


def _default_mask(model: nn.Module, inputs: Any, tokenizer: Any) -> torch.Tensor | None:
    import torch

    if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
        return None  # vision maps: every patch is a unit
    from probe.evaluation._perturb import text_inputs

    return text_inputs(model, inputs, tokenizer)[1]


# --------------------------------------------------------------------------- the check
def sanity_check(
    model: nn.Module,
    inputs: Any,
    methods: Methods,
    tokenizer: Any = None,
    target: Any = None,
    seed: int = 0,
    *,
    absolute: bool | None = None,
    mask: torch.Tensor | None = None,
    fix_target: bool = True,
    method_seed: int | None = None,
    **options: Any,
) -> SanityResult:
    """Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity Checks for
    Saliency Maps").

    A deep copy of ``model`` (for a model dispatched by accelerate, a copy with every
    offloaded weight loaded, on the CPU and without accelerate's hooks: it needs the model's
    full size in CPU memory) is randomised step by step in :func:`cascade_order` (head first,
    embeddings last; each tensor re-drawn from a truncated normal of its own RMS scale, seeded
    by ``seed``); after each step every method's map is recomputed and compared with its map
    on the trained model by Spearman rank correlation (per item over the valid units, then
    averaged: see :func:`probe.spearman`). As in the paper, signed maps are compared by their
    absolute values (importance regardless of sign).

    Args:
        model: HF or timm transformer, or timm CNN; never modified (only its copy is run).
        inputs: as for :func:`probe.attribute` (images ``[batch, 3, H, W]``, text, ids).
        methods: a registered method name (run through :func:`probe.attribute` on the copy),
            a ``(name, options)`` pair (named like :attr:`Attribution.label`, e.g.
            ``"rollout[head_fusion=max]"``, as in :func:`probe.compare_batches`), a callable
            ``explain(model) -> scores [batch, num_units]`` (or an Attribution), or a list or
            ``{name: method}`` mapping of them.
        tokenizer: text models: the tokenizer.
        target: as for :func:`probe.attribute`. With ``None`` and ``fix_target=True`` the class
            the trained model predicts is fixed for every step (otherwise the randomised
            model's own, changing, prediction would be explained); models without class logits
            keep ``None``. Callables get no target: they decide themselves.
        seed: seed of the re-initialisation, also passed to stochastic methods.
        absolute: compare absolute values: ``None`` (default) for signed maps only (a signed
            Attribution, or a callable's map that has negative values on the trained model);
            ``True``/``False`` for all maps.
        mask: valid units ``[batch, num_units]`` for the correlation; default: every patch
            (vision), real non-special tokens (text).
        fix_target: see ``target``.
        method_seed: seed passed to stochastic methods (default: ``seed``). Evaluations that
            run the check batch by batch keep ``seed`` for the re-initialisation, so every batch
            meets the same randomised weights, and give each batch its own ``method_seed``.
        **options: method options passed to :func:`probe.attribute` (registered names only).

    Returns:
        A :class:`SanityResult`: ``steps[0]`` is ``"original"``, then the randomised blocks in
        cumulative top-down order; ``correlations[method]`` is ``[num_steps]``.
    """
    import torch

    from probe.capture.adapters._dispatch import working_copy
    from probe.evaluation._agreement import spearman

    if not is_int(seed):  # np.int64(0) counts
        raise ProbeError(f"seed must be an int, got {seed!r}")
    seed = int(seed)
    if method_seed is None:
        method_seed = seed
    elif not is_int(method_seed):
        raise ProbeError(f"method_seed must be an int or None, got {method_seed!r}")
    method_seed = int(method_seed)
    order = cascade_order(model)  # fails early for unsupported models
    _check_inputs(model, inputs, tokenizer)
    target_box: list[Any] = [target]
    explainers = _explainers(methods, inputs, tokenizer, method_seed, dict(options), target_box)

    clone = working_copy(model)
    clone.eval()
    if target is None and fix_target and any(named for _, _, named in explainers):
        target_box[0] = _fixed_target(clone, inputs, tokenizer)
    if mask is None:
        mask = _default_mask(clone, inputs, tokenizer)

    reference: dict[str, torch.Tensor] = {}
    use_abs: dict[str, bool] = {}
    for name, explain, _ in explainers:
        ref, signed = _as_map(explain(clone), name)
        if signed is None:
            signed = bool((ref < 0).any())
        reference[name] = ref
        use_abs[name] = bool(signed) if absolute is None else bool(absolute)

    params = dict(clone.named_parameters())
    gen = torch.Generator().manual_seed(seed)
    steps = [ORIGINAL]
    maps: dict[str, list[torch.Tensor]] = {name: [] for name in reference}
    per_item: dict[str, list[torch.Tensor]] = {name: [] for name in reference}
    for step in range(len(order) + 1):
        if step > 0:
            block, names = order[step - 1]
            _randomise([params[n] for n in names], gen)
            steps.append(block)
        for name, explain, _ in explainers:
            current, _ = _as_map(explain(clone), name)
            if current.shape != reference[name].shape:
                raise ProbeError(
                    f"method {name!r} returned shape {tuple(current.shape)} after randomising, "
                    f"{tuple(reference[name].shape)} before: it must score the same units"
                )
            a, b = (
                (reference[name], current)
                if not use_abs[name]
                else (reference[name].abs(), current.abs())
            )
            per_item[name].append(spearman(a, b, mask, reduction="none"))
            maps[name].append(current)
    del clone
    stacked = {name: torch.stack(v) for name, v in per_item.items()}
    correlations = {
        name: torch.stack(
            [
                torch.nanmean(row)
                if not bool(torch.isnan(row).all())
                else torch.tensor(float("nan"), dtype=torch.float64)
                for row in v
            ]
        )
        for name, v in stacked.items()
    }
    return SanityResult(
        steps=tuple(steps),
        correlations=correlations,
        per_item=stacked,
        maps={name: torch.stack(v) for name, v in maps.items()},
        reference=reference,
        absolute=use_abs,
        seed=seed,
    )
