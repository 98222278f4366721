"""One registry of attribution methods, one result type: :class:`Attribution`.

Every way probe scores input tokens or image patches (attention, rollout, flow, gradient-
weighted relevance, captum's Integrated Gradients, saliency, GradCAM, a random baseline, and
whatever a user adds) is one function registered with :func:`register_method`. Comparison,
faithfulness, sanity checks, the viewers and ``probe eval`` all iterate over this registry,
so a new method plugs into all of them at once::

    @probe.register_method("cls-last", modalities=("vision",))
    def cls_last(ctx: probe.MethodContext) -> torch.Tensor:   # -> [batch, num_units]
        trace = ctx.trace()
        return trace.attentions[-1, :, :, 0, trace.num_prefix_tokens:].mean(1)

    probe.attribute(model, images, "cls-last")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture._trace import Trace

__all__ = [
    "Attribution",
    "MethodContext",
    "MethodSpec",
    "attribute",
    "list_methods",
    "register_method",
]

Modality = Literal["text", "vision"]


@dataclass(frozen=True)
class Attribution:
    """Scores of one method for every input unit (token or patch).

    Attributes:
        scores: ``[batch, num_units]``: text: one score per token position (padding gets 0);
            vision: one score per patch token, row-major over ``grid``.
        method: the registered method name.
        modality: ``"text"`` or ``"vision"``.
        signed: whether scores can be negative (choose a diverging colormap).
        tokens: text: token strings per batch item.
        words: text: words per batch item; ``word_scores`` the per-word scores (sum over the
            word's sub-tokens).
        word_scores: text: tuple per batch item of ``[num_words]`` tensors.
        grid: vision: ``(rows, cols)`` patch grid; ``image_size`` the input size.
        model_name: the model's name.
        info: method-specific extras (e.g. the IG convergence delta).
    """

    scores: torch.Tensor
    method: str
    modality: Modality
    signed: bool = False
    tokens: tuple[tuple[str, ...], ...] | None = None
    words: tuple[tuple[str, ...], ...] | None = None
    word_scores: tuple[torch.Tensor, ...] | None = None
    grid: tuple[int, int] | None = None
    image_size: tuple[int, int] | None = None
    model_name: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def as_grid(self) -> torch.Tensor:
        """Vision scores as ``[batch, rows, cols]``."""
        if self.grid is None:
            raise ProbeError(f"{self.method} scores are not on a patch grid (text attribution)")
        return self.scores.reshape(self.scores.shape[0], *self.grid)


@dataclass
class MethodContext:
    """What a method function receives: the model, the inputs, the target and helpers.

    Attributes:
        model: the model (methods must leave it unchanged).
        inputs: the user's inputs (strings, tokenizer output, ids or pixel tensor).
        tokenizer: text models: the tokenizer.
        target: ``None`` (the predicted class / the model's own output), an ``int`` class
            index, or a callable ``output -> [batch]`` scalar per item.
        options: method-specific keyword options passed to :func:`attribute`.
        modality: ``"text"`` or ``"vision"``.
        seed: seed for stochastic methods (random baseline).
        info: methods may store extras here (e.g. the IG convergence delta); they land in
            ``Attribution.info``.
    """

    model: nn.Module
    inputs: Any
    tokenizer: Any = None
    target: int | Callable[[Any], torch.Tensor] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    modality: Modality = "text"
    seed: int = 0
    _trace: Trace | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def trace(self) -> Trace:
        """A plain capture of the inputs (cached: computed once per context)."""
        if self._trace is None:
            from probe.capture._capture import trace

            self._trace = trace(self.model, self.inputs, tokenizer=self.tokenizer)
        return self._trace


MethodFn = Callable[[MethodContext], "torch.Tensor"]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its function and what it supports."""

    name: str
    fn: MethodFn
    modalities: tuple[Modality, ...]
    signed: bool
    uses_gradients: bool
    description: str


_METHODS: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    *,
    modalities: tuple[Modality, ...] = ("text", "vision"),
    signed: bool = False,
    uses_gradients: bool = False,
    description: str = "",
    overwrite: bool = False,
) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn(ctx: MethodContext) -> Tensor [batch, num_units]`` as method ``name``.

    ``num_units`` is the number of token positions (text) or of patches (vision, row-major
    over the trace's grid, prefix tokens excluded).
    """

    def decorator(fn: MethodFn) -> MethodFn:
        if name in _METHODS and not overwrite:
            raise ProbeError(f"method {name!r} is already registered; pass overwrite=True to replace it")
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        _METHODS[name] = MethodSpec(name, fn, tuple(modalities), signed, uses_gradients, doc)
        return fn

    return decorator


def _ensure_builtins() -> None:
    # importing the modules registers the built-in methods
    import probe.attribution._attention  # noqa: F401
    import probe.attribution._gradient  # noqa: F401


def list_methods(modality: Modality | None = None) -> tuple[str, ...]:
    """Registered method names (for one modality when given), in registration order."""
    _ensure_builtins()
    return tuple(n for n, s in _METHODS.items() if modality is None or modality in s.modalities)


def method_spec(name: str) -> MethodSpec:
    _ensure_builtins()
    if name not in _METHODS:
        raise ProbeError(f"unknown method {name!r}: use one of {list(_METHODS)}")
    return _METHODS[name]


def attribute(
    model: nn.Module,
    inputs: Any,
    method: str,
    *,
    tokenizer: Any = None,
    target: int | Callable[[Any], torch.Tensor] | None = None,
    seed: int = 0,
    trace: Trace | None = None,
    **options: Any,
) -> Attribution:
    """Score every input token or patch with a registered method.

    Args:
        model: HF or timm model.
        inputs: as for :func:`probe.trace`.
        method: a name from :func:`list_methods`.
        tokenizer: text models: the tokenizer.
        target: ``None`` (predicted class, or the model's output for embedding models), a class
            index, or a callable mapping the model output to one scalar per batch item.
        seed: seed of stochastic methods.
        trace: a plain capture of the same inputs to reuse (saves a forward pass).
        **options: method-specific options (e.g. ``n_steps`` for Integrated Gradients).

    Returns:
        An :class:`Attribution` with ``scores`` ``[batch, num_units]``.
    """
    spec = method_spec(method)
    from probe.capture import adapter_for

    modality: Modality = adapter_for(model).modality
    if modality not in spec.modalities:
        raise ProbeError(
            f"method {method!r} does not apply to {modality} models: use one of "
            f"{list(list_methods(modality))}"
        )
    ctx = MethodContext(model, inputs, tokenizer, target, dict(options), modality, seed, trace)
    scores = spec.fn(ctx)
    tr = ctx.trace()
    return _wrap(scores, spec, tr, modality, ctx)


def _wrap(
    scores: torch.Tensor, spec: MethodSpec, tr: Trace, modality: Modality, ctx: MethodContext
) -> Attribution:
    import torch

    scores = scores.detach().float().cpu()
    if modality == "vision":
        rows, cols = tr.grid  # type: ignore[misc]
        if scores.shape[-1] != rows * cols:
            raise ProbeError(
                f"method {spec.name!r} returned {scores.shape[-1]} scores per image but the patch "
                f"grid has {rows * cols}"
            )
        return Attribution(
            scores, spec.name, modality, spec.signed, grid=tr.grid, image_size=tr.image_size,
            model_name=tr.model_name, info=dict(ctx.info),
        )
    scores = scores * tr.attention_mask.to(scores.dtype)
    word_scores = None
    if tr.word_ids is not None:
        word_scores = tuple(
            torch.zeros(len(words)).index_add_(
                0,
                torch.tensor([w for w in ids if w is not None], dtype=torch.long),
                scores[b][[i for i, w in enumerate(ids) if w is not None]],
            )
            for b, (words, ids) in enumerate(zip(tr.words, tr.word_ids))  # type: ignore[arg-type]
        )
    return Attribution(
        scores, spec.name, modality, spec.signed, tokens=tr.tokens, words=tr.words,
        word_scores=word_scores, model_name=tr.model_name,
        info=dict(ctx.info),
    )
