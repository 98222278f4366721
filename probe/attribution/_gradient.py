"""Gradient-based attribution methods (captum), registered in the method registry.

Every method runs captum on a forward function built from the model and the target (see
:mod:`probe.attribution._targets`): ``forward(x, *per_item_kwargs, classes) -> [batch]``. The
attention mask and the other per-item keyword tensors of text models travel as captum's
``additional_forward_args``, so captum expands them together with the inputs (Integrated
Gradients runs ``n_steps`` copies of the batch at once); ``target=None`` is fixed to the
predicted class of the unmodified input before any attribution runs.

Units and reductions:

* text: one score per token position. Captum's layer methods act on the output of the
  input embedding layer (``model.get_input_embeddings()``, for BERT
  ``embeddings.word_embeddings``; the encoder's for encoder-decoders, whose decoder inputs
  stay fixed); ``[batch, seq, dim]`` attributions are reduced per token:
  Integrated Gradients and input x gradient sum over ``dim`` (signed; the sum keeps IG's
  completeness), saliency takes the L2 norm of the gradient over ``dim`` (unsigned).
* vision: one score per patch, row-major over the patch grid. Pixel attributions
  ``[batch, channel, H, W]`` are summed over the channels and the pixels of each patch:
  signed for Integrated Gradients and input x gradient (so patch scores of IG still add up to
  ``f(x) - f(baseline)``), of ``|gradient|`` for saliency.

Nothing is left on the model: captum removes its hooks, probe removes its own in ``finally``,
gradients are taken with ``torch.autograd.grad`` (parameter ``.grad`` stay as they were),
inputs are copied before captum marks them ``requires_grad``, and the train/eval mode is not
touched.
"""

from __future__ import annotations

import math

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from probe._errors import ProbeError
from probe.attribution._registry import MethodContext, MethodOption, register_method

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture.adapters import ModelAdapter

    from probe.attribution._targets import Target

__all__ = [
    "IGMethod",
    "IntegratedGradientsResult",
    "check_completeness",
    "completeness",
    "differentiable",
    "integrated_gradients",
]

#: Captum's integration rules for Integrated Gradients.
IGMethod = Literal[
    "gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"
]
_IG_METHODS = (
    "gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"
)


# --------------------------------------------------------------------------- model state
@contextmanager
def differentiable(model: nn.Module) -> Iterator[None]:
    """Enable autograd and make every parameter require grad for the block; restore after.

    Frozen parameters (``requires_grad=False``) would cut the graph between token ids and the
    attention, so they are switched on for the block and switched back in ``finally``.
    Gradients are only ever taken with ``torch.autograd.grad`` w.r.t. inputs or activations,
    so no parameter ``.grad`` is written. The block holds the model's re-entrant lock (see
    :func:`probe.capture._locks.model_lock`): other threads working on the same model wait,
    captures inside the block (same thread) do not.
    """
    import torch

    from probe.capture._autograd import require_autograd
    from probe.capture._locks import model_lock

    require_autograd("this gradient method")
    with model_lock(model):
        frozen = [p for p in model.parameters() if not p.requires_grad]
        try:
            for p in frozen:
                p.requires_grad_(True)
            with torch.enable_grad():
                yield
        finally:
            for p in frozen:
                p.requires_grad_(False)


# --------------------------------------------------------------------------- inputs
@dataclass
class _Batch:
    """The model inputs, ready for captum."""

    adapter: ModelAdapter
    x: torch.Tensor  # text: input_ids [batch, seq]; vision: pixels [batch, channel, H, W] (a copy)
    names: tuple[str, ...]  # per-item keyword tensors passed as additional forward args
    extras: tuple[torch.Tensor, ...]
    static: dict[str, Any]  # other keyword arguments, passed as they are
    special: torch.Tensor | None = None  # text: [batch, seq] bool, special or padding tokens
    grid: tuple[int, int] | None = None
    patch: tuple[int, int] | None = None
    suffix: int = 0  # vision: tokens after the patches (YOLOS's detection tokens)

    @property
    def vision(self) -> bool:
        return self.adapter.modality == "vision"

    @property
    def batch_size(self) -> int:
        return int(self.x.shape[0])

    def call(self, x: torch.Tensor, extras: tuple[Any, ...]) -> Any:
        """The model's output on main input ``x`` with per-item ``extras``."""
        return self.adapter.call(x, {**dict(zip(self.names, extras)), **self.static})


def _prepare(model: nn.Module, inputs: Any, tokenizer: Any) -> _Batch:
    import torch

    from probe.capture import adapter_for

    adapter = adapter_for(model)
    prepared = adapter.prepare(inputs, tokenizer=tokenizer)
    kwargs = prepared.others()
    if adapter.modality == "vision":
        x = prepared.main.detach().clone().to(adapter.dtype)
        geometry = adapter.vision_geometry(x)
        return _Batch(adapter, x, (), (), kwargs, None, geometry.grid, geometry.patch_size,
                      geometry.num_suffix_tokens)
    ids = prepared.kwargs.get("input_ids")
    kwargs.pop("input_ids", None)
    if ids is None:
        raise ProbeError(
            "gradient methods need token ids: pass strings with a tokenizer, a tokenizer output or "
            "an input_ids tensor (not inputs_embeds)"
        )
    batch = int(ids.shape[0])
    names = tuple(
        k
        for k, v in kwargs.items()
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == batch
    )
    extras = tuple(kwargs.pop(k) for k in names)
    mask = prepared.attention_mask
    special = prepared.special_tokens_mask
    if special is None:
        special = torch.zeros(ids.shape, dtype=torch.bool)
    if mask is not None:
        special = special | ~mask
    return _Batch(adapter, ids.detach().clone(), names, extras, kwargs, special.to(ids.device))


def _forward_fn(model: nn.Module, batch: _Batch, target: Target) -> Callable[..., torch.Tensor]:
    """``forward(x, *extras, classes) -> [batch]``: the target scalar of each batch item."""
    from probe.attribution._targets import resolve_target

    def forward(x: torch.Tensor, *args: Any) -> torch.Tensor:
        *extras, classes = args
        output = batch.call(x, tuple(extras))
        mask = dict(zip(batch.names, extras)).get("attention_mask")
        return resolve_target(
            classes if classes is not None else target, output, model, attention_mask=mask
        )

    return forward


def _fix_target(model: nn.Module, batch: _Batch, target: Target) -> torch.Tensor | None:
    """Per-item class indices ``[batch]`` for ``None``/tensor targets, else ``None``."""
    import torch

    from probe.attribution._targets import class_tensor_message, predicted_class

    if target is None:
        with torch.no_grad():
            return predicted_class(batch.call(batch.x, batch.extras), model)
    if isinstance(target, torch.Tensor):
        if target.dim() != 1 or target.shape[0] != batch.batch_size or target.is_floating_point():
            raise ProbeError(class_tensor_message(target, batch.batch_size))
        return target.detach().long().to(batch.x.device)
    return None


def _patch_sum(attr: torch.Tensor, batch: _Batch) -> torch.Tensor:
    """``[batch, channel, H, W]`` pixel scores -> ``[batch, rows * cols]`` per-patch sums."""
    import torch.nn.functional as F

    rows, cols = batch.grid  # type: ignore[misc]
    ph, pw = batch.patch  # type: ignore[misc]
    per_pixel = attr.sum(1)  # over channels: [batch, H, W]
    height, width = rows * ph, cols * pw
    per_pixel = per_pixel[:, :height, :width]
    pad_h, pad_w = height - per_pixel.shape[1], width - per_pixel.shape[2]
    if pad_h or pad_w:  # dynamically padded images: the pad pixels carry no score
        per_pixel = F.pad(per_pixel, (0, pad_w, 0, pad_h))
    return per_pixel.reshape(-1, rows, ph, cols, pw).sum(dim=(2, 4)).flatten(1)


MAX_IG_STEPS = 4096  # 134 MB of Legendre matrix; captum's examples use 50 to 300


def _check_int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ProbeError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


# --------------------------------------------------------------------------- IG
@dataclass(frozen=True, eq=False)
class IntegratedGradientsResult:
    """Integrated Gradients of one batch (Sundararajan, Taly & Yan 2017).

    Attributes:
        scores: ``[batch, num_units]`` per token (sum over the embedding dim) or per patch
            (signed sum over the patch's pixels and channels).
        attributions: captum's raw attributions: text ``[batch, seq, dim]`` on the word
            embeddings, vision ``[batch, channel, H, W]`` on the pixels.
        delta: ``[batch]`` captum's convergence delta ``sum(attributions) - (f(x) - f(b))``,
            or ``None`` with ``return_delta=False``.
        target_input: ``[batch]`` the explained scalar ``f(x)`` at the input.
        target_baseline: ``[batch]`` ``f(b)`` at the baseline.
        baseline: the baseline: token ids ``[batch, seq]`` or pixels ``[batch, channel, H, W]``.
        n_steps: number of integration steps.
    """

    scores: torch.Tensor
    attributions: torch.Tensor
    delta: torch.Tensor | None
    target_input: torch.Tensor | None
    target_baseline: torch.Tensor | None
    baseline: torch.Tensor
    n_steps: int


def _text_baseline(model: nn.Module, tokenizer: Any, batch: _Batch, baseline: Any) -> torch.Tensor:
    import torch

    if isinstance(baseline, torch.Tensor):
        if tuple(baseline.shape) != tuple(batch.x.shape) or baseline.is_floating_point():
            raise ProbeError(
                f"a text baseline tensor must be token ids shaped like the input "
                f"{tuple(batch.x.shape)}, got {baseline.dtype} {tuple(baseline.shape)}"
            )
        _check_baseline_ids(model, baseline)
        return baseline.to(batch.x.device, torch.long)
    if baseline is None:
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(getattr(model, "config", None), "pad_token_id", None)
        if pad is None:
            raise ProbeError(
                "this model has no [PAD] token for the Integrated Gradients baseline; pass "
                "baseline=<token id> (e.g. the unk or eos id)"
            )
        baseline = int(pad)
    if isinstance(baseline, bool) or not isinstance(baseline, int):
        raise ProbeError(
            "a text baseline must be None ([PAD]), a token id or ids [batch, seq], got "
            f"{baseline!r}"
        )
    _check_baseline_ids(model, torch.tensor([baseline]))
    fill = torch.full_like(batch.x, baseline)
    return torch.where(batch.special, batch.x, fill)  # type: ignore[arg-type]


def _check_baseline_ids(model: nn.Module, ids: torch.Tensor) -> None:
    """Baseline token ids inside the model's vocabulary (else an IndexError from the
    embedding, deep inside captum)."""
    embeddings = getattr(model, "get_input_embeddings", None)
    layer = embeddings() if callable(embeddings) else None
    vocab = getattr(layer, "num_embeddings", None)
    if not isinstance(vocab, int) or ids.numel() == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab:
        bad = low if low < 0 else high
        raise ProbeError(
            f"the Integrated Gradients baseline token id {bad} is outside the vocabulary of "
            f"{type(model).__name__} (ids 0..{vocab - 1}): pass baseline=None ([PAD]) or an id "
            "of its tokenizer (e.g. the unk or mask id)"
        )


def _vision_baseline(batch: _Batch, baseline: Any) -> torch.Tensor:
    import torch

    if baseline is None:
        return torch.zeros_like(batch.x)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(batch.x, float(baseline))
    if isinstance(baseline, torch.Tensor):
        try:
            return baseline.to(batch.x).expand_as(batch.x).clone()
        except RuntimeError:
            raise ProbeError(
                f"the baseline {tuple(baseline.shape)} does not broadcast to the pixels "
                f"{tuple(batch.x.shape)}"
            ) from None
    raise ProbeError(
        f"a vision baseline must be None (zeros), a number or a tensor, got {baseline!r}"
    )


def integrated_gradients(
    model: nn.Module,
    inputs: Any,
    target: Target = None,
    tokenizer: Any = None,
    n_steps: int = 50,
    baseline: int | float | torch.Tensor | None = None,
    return_delta: bool = True,
    integration: IGMethod = "gausslegendre",
    internal_batch_size: int | None = None,
) -> IntegratedGradientsResult:
    """Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
    Networks") with captum, reduced to one score per token or patch.

    Text: captum ``LayerIntegratedGradients`` on the input embedding layer
    (``model.get_input_embeddings()``), interpolating the word embeddings between the
    baseline's and the input's; the default baseline replaces every token by [PAD] but keeps
    special tokens ([CLS], [SEP]) and padding as they are, and keeps the attention mask, so
    only the words are "removed". Position and token-type embeddings are not interpolated.
    Token scores are the sum over the embedding dim.

    Vision: captum ``IntegratedGradients`` on the pixels. The default baseline is all zeros
    *in the model's normalised input space*, i.e. the per-channel mean colour of the
    normalisation (mid-grey for mean 0.5), not black; pass a tensor for another one. Patch
    scores are the signed sum over the patch's pixels and channels.

    Completeness: the scores of an item add up to ``f(x) - f(baseline)`` up to the
    integration error reported in ``delta`` (raise ``n_steps`` to shrink it; see
    :func:`completeness`).

    Args:
        model: HF text or vision model, or timm ViT (left unchanged).
        inputs: as for :func:`probe.trace`.
        target: what to explain (see :mod:`probe.attribution._targets`); ``None``: the predicted
        class.
        tokenizer: text models: the tokenizer.
        n_steps: integration steps.
        baseline: text: ``None`` ([PAD]), a token id, or ids ``[batch, seq]``; vision: ``None``
            (zeros), a number, or a tensor broadcastable to the pixels.
        return_delta: compute ``delta``, ``f(x)`` and ``f(baseline)`` (two forward passes).
        integration: captum's integration rule (its ``method`` argument).
        internal_batch_size: run the ``n_steps * batch`` model calls in chunks of this size.

    Returns:
        An :class:`IntegratedGradientsResult`.
    """
    import torch
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    n_steps = _check_int("n_steps", n_steps)
    if n_steps > MAX_IG_STEPS:  # 10**9 was a MemoryError (numpy's 7 EiB Legendre matrix)
        raise ProbeError(
            f"n_steps {n_steps} is too many: use at most {MAX_IG_STEPS} (the default is 50; "
            "the Gauss-Legendre nodes of n steps alone take 8*n*n bytes)"
        )
    if internal_batch_size is not None:
        internal_batch_size = _check_int("internal_batch_size", internal_batch_size)
    if integration not in _IG_METHODS:
        raise ProbeError(
            f"unknown Integrated Gradients integration {integration!r}; use one of "
            f"{list(_IG_METHODS)}"
        )
    if n_steps < 2 and integration.startswith("riemann"):  # captum asserts it, bare
        raise ProbeError(
            f"integration {integration!r} needs n_steps >= 2 (got {n_steps}): raise n_steps, or "
            "use integration='gausslegendre', which takes one step"
        )
    batch = _prepare(model, inputs, tokenizer)
    with differentiable(model):
        classes = _fix_target(model, batch, target)
        forward = _forward_fn(model, batch, target)
        args = (*batch.extras, classes)
        if batch.vision:
            base = _vision_baseline(batch, baseline)
            explainer: Any = IntegratedGradients(forward)
        else:
            base = _text_baseline(model, tokenizer, batch, baseline)
            explainer = LayerIntegratedGradients(forward, batch.adapter.embedding_layer())
        out = explainer.attribute(
            batch.x,
            baselines=base,
            additional_forward_args=args,
            n_steps=n_steps,
            method=integration,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=return_delta,
        )
    attributions, delta = out if return_delta else (out, None)
    attributions = attributions.detach()
    scores = _patch_sum(attributions, batch) if batch.vision else attributions.sum(-1)
    f_x = f_b = None
    if return_delta:
        with torch.no_grad():
            f_x = forward(batch.x, *args).detach()
            f_b = forward(base, *args).detach()
        delta = delta.detach()
    return IntegratedGradientsResult(scores, attributions, delta, f_x, f_b, base, n_steps)


def completeness(result: IntegratedGradientsResult) -> torch.Tensor:
    """Completeness gap of Integrated Gradients: ``sum(attributions) - (f(x) - f(baseline))``.

    Sundararajan et al. 2017 prove the attributions add up to ``f(x) - f(baseline)``; the
    gap is the numerical integration error (captum's convergence delta, recomputed here from
    independent forward passes). It shrinks as ``n_steps`` grows.

    Returns:
        ``[batch]`` float64 signed gap.
    """
    if not isinstance(result, IntegratedGradientsResult):  # an Attribution has no f(x)
        raise ProbeError(
            f"completeness needs what probe.integrated_gradients(..., return_delta=True) "
            f"returned, got {type(result).__name__}"
        )
    if result.target_input is None or result.target_baseline is None:
        raise ProbeError(
            "this result has no f(x)/f(baseline): run integrated_gradients with return_delta=True"
        )
    total = result.attributions.double().flatten(1).sum(-1)
    return total - (result.target_input.double() - result.target_baseline.double())


def check_completeness(
    result: IntegratedGradientsResult, rtol: float = 0.01, atol: float = 1e-4
) -> torch.Tensor:
    """Check that IG attributions add up to ``f(x) - f(baseline)``; return the gaps.

    Passes when ``|gap| <= atol + rtol * |f(x) - f(baseline)|`` for every batch item.

    Returns:
        ``[batch]`` float64 gaps (see :func:`completeness`).

    Raises:
        ProbeError: an item's gap is too large (the message says to raise ``n_steps``).
    """
    gaps = completeness(result)
    f_x, f_b = result.target_input, result.target_baseline
    diff = f_x.double() - f_b.double()  # type: ignore[union-attr]
    bad = gaps.abs() > atol + rtol * diff.abs()
    if bool(bad.any()):
        worst = int((gaps.abs() * bad).argmax())
        raise ProbeError(
            f"Integrated Gradients is incomplete: item {worst}'s attributions sum to "
            f"{float(gaps[worst] + diff[worst]):.6g} but f(x) - f(baseline) = "
            f"{float(diff[worst]):.6g}; raise n_steps (now {result.n_steps})"
        )
    return gaps


# --------------------------------------------------------------------------- methods
def _check_baseline(baseline: Any) -> None:
    number = isinstance(baseline, (int, float)) and not isinstance(baseline, bool)
    tensor = type(baseline).__module__.startswith("torch") and hasattr(baseline, "shape")
    if not (number or tensor):
        shape = getattr(baseline, "shape", None)
        shown = (f"a {type(baseline).__name__} of shape {tuple(shape)}" if shape is not None
                 else repr(baseline))
        fix = ": pass torch.as_tensor(baseline)" if shape is not None else ""
        raise ProbeError(
            "option 'baseline' of method 'ig' must be None, a number (text: a token id) or a "
            f"tensor, got {shown}{fix}"
        )
    finite = (math.isfinite(baseline) if number
              else not baseline.is_floating_point() or bool(baseline.isfinite().all()))
    if not finite:
        raise ProbeError(
            "option 'baseline' of method 'ig' holds NaN or inf: the path from it gives NaN "
            "attributions; pass finite values (None: zeros for images, [PAD] for text)"
        )


@register_method(
    "ig", modalities=("text", "vision"), signed=True, uses_gradients=True,
    options=(
        MethodOption("n_steps", 50, int, minimum=1, doc="integration steps"),
        MethodOption(
            "baseline", None, object, check=_check_baseline,
            doc="text: None ([PAD]), a token id or ids; vision: None (zeros), a number or a tensor",
        ),
        MethodOption("integration", "gausslegendre", str, choices=_IG_METHODS,
                     doc="captum's integration rule"),
        MethodOption("internal_batch_size", None, int, minimum=1,
                     doc="run the model calls in chunks of this size"),
    ),
)
def _ig(ctx: MethodContext) -> torch.Tensor:
    """Integrated Gradients (Sundararajan et al. 2017) via captum, per token or patch.

    Options: ``n_steps`` (50), ``baseline``, ``integration``, ``internal_batch_size`` (see
    :func:`integrated_gradients`). ``info["delta"]`` holds captum's convergence delta.
    """
    result = integrated_gradients(
        ctx.model, ctx.inputs, target=ctx.target, tokenizer=ctx.tokenizer, **ctx.options
    )
    ctx.info["delta"] = result.delta
    ctx.info["target_input"] = result.target_input
    ctx.info["target_baseline"] = result.target_baseline
    return result.scores


def _gradient_attribution(ctx: MethodContext, name: str, times_input: bool) -> torch.Tensor:
    from captum.attr import InputXGradient, LayerGradientXActivation, Saliency

    batch = _prepare(ctx.model, ctx.inputs, ctx.tokenizer)
    with differentiable(ctx.model):
        classes = _fix_target(ctx.model, batch, ctx.target)
        forward = _forward_fn(ctx.model, batch, ctx.target)
        args = (*batch.extras, classes)
        if batch.vision:
            x = batch.x.clone().requires_grad_(True)  # our copy: the user's tensor is untouched
            if times_input:
                attr = InputXGradient(forward).attribute(x, additional_forward_args=args)
            else:
                attr = Saliency(forward).attribute(x, abs=True, additional_forward_args=args)
            return _patch_sum(attr.detach(), batch)
        explainer = LayerGradientXActivation(
            forward, batch.adapter.embedding_layer(), multiply_by_inputs=times_input
        )
        attr = explainer.attribute(batch.x, additional_forward_args=args).detach()
    return attr.sum(-1) if times_input else attr.norm(dim=-1)


@register_method("saliency", modalities=("text", "vision"), uses_gradients=True)
def _saliency(ctx: MethodContext) -> torch.Tensor:
    """Gradient saliency (Simonyan, Vedaldi & Zisserman 2014) via captum.

    Text: the L2 norm over the embedding dim of the gradient w.r.t. the word embeddings
    (captum ``LayerGradientXActivation`` with ``multiply_by_inputs=False``). Vision: captum
    ``Saliency`` (``|gradient|`` w.r.t. the pixels) summed over each patch's pixels and
    channels.
    """
    return _gradient_attribution(ctx, "saliency", times_input=False)


@register_method("inputxgrad", modalities=("text", "vision"), signed=True, uses_gradients=True)
def _inputxgrad(ctx: MethodContext) -> torch.Tensor:
    """Input x gradient (Shrikumar et al. 2016, "Not Just a Black Box") via captum.

    Text: word embedding times its gradient (captum ``LayerGradientXActivation``), summed
    over the embedding dim. Vision: captum ``InputXGradient`` on the pixels, signed sum per
    patch.
    """
    return _gradient_attribution(ctx, "inputxgrad", times_input=True)
