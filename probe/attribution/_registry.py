"""One registry of attribution methods, one result type: :class:`Attribution`.

Every way probe scores input tokens or image patches (attention, rollout, flow, gradient-
weighted relevance, captum's Integrated Gradients, saliency, GradCAM, a random baseline, and
whatever a user adds) is one function registered with :func:`register_method`. Comparison,
faithfulness, sanity checks, the viewers and ``probe eval`` all iterate over this registry,
so a new method plugs into all of them at once::

    @probe.register_method(
        "cls-layer", modalities=("vision",),
        options=(probe.MethodOption("layer", -1, int, doc="model layer"),),
    )
    def cls_layer(ctx: probe.MethodContext) -> torch.Tensor:   # -> [batch, num_units]
        trace = ctx.trace()
        layer = trace.layer_position(ctx.options["layer"])
        return trace.attentions[layer, :, :, 0, trace.num_prefix_tokens:].mean(1)

    probe.attribute(model, images, "cls-layer", layer=-2)

A method declares the options it takes (:class:`MethodOption`); :func:`attribute` validates
what the caller passes once and fills in the defaults, and ``probe eval --option`` and the CLI
flags are built from the same declarations. This module imports none of the methods: the
built-ins are registered by :mod:`probe.attribution` (the package) importing their modules.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError, UnsupportedModelError
from probe.attribution._options import MethodOption

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture._trace import Trace

__all__ = [
    "Attribution",
    "MethodContext",
    "MethodOption",
    "MethodSpec",
    "attribute",
    "list_methods",
    "method_label",
    "method_options",
    "method_spec",
    "parse_method_options",
    "register_method",
    "resolve_run",
    "unregister_method",
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
        options: the method's options as it ran (every declared option, defaults included).
        byte_level: ``tokens`` are byte-level BPE symbols (see :attr:`probe.Trace.labels`).
        units: text: ``[batch, num_units]`` bool, the real tokens that are not special tokens
            (no padding, [CLS], [SEP], BOS, ...): the units :func:`probe.compare` compares by
            default; ``None`` for vision (every patch is a unit).
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
    options: dict[str, Any] = field(default_factory=dict)
    byte_level: bool = False
    units: torch.Tensor | None = None

    @property
    def token_labels(self) -> tuple[tuple[str, ...], ...] | None:
        """Per batch item, a readable display label per token: ``tokens``, byte-level
        symbols decoded as :attr:`probe.Trace.labels` does."""
        if self.tokens is None or not self.byte_level:
            return self.tokens
        from probe._text import byte_level_labels

        return tuple(byte_level_labels(row) for row in self.tokens)

    @property
    def label(self) -> str:
        """The method name plus the options that differ from its defaults, e.g.
        ``"rollout[head_fusion=median]"``: how :func:`probe.compare` and
        :func:`probe.faithfulness` name this attribution."""
        return method_label(self.method, self.options)

    def as_grid(self) -> torch.Tensor:
        """Vision scores as ``[batch, rows, cols]``."""
        if self.grid is None:
            raise ProbeError(f"{self.method} scores are not on a patch grid (text attribution)")
        return self.scores.reshape(self.scores.shape[0], *self.grid)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def method_label(method: str, options: Mapping[str, Any]) -> str:
    """``method`` plus the ``options`` that differ from its defaults, e.g.
    ``"rollout[head_fusion=median]"`` (:attr:`Attribution.label`)."""
    try:
        defaults = method_spec(method).defaults()
    except ProbeError:  # unregistered (since)
        defaults = {}
    changed = [
        f"{k}={_short(v)}" for k, v in options.items()
        if k not in defaults or not _same(v, defaults[k])
    ]
    return f"{method}[{','.join(changed)}]" if changed else method


def _same(a: Any, b: Any) -> bool:
    """Whether an option value equals the default (tensors only when the same object)."""
    if a is b:
        return True
    if _is_tensor(a) or _is_tensor(b) or isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - objects without a plain equality differ
        return False


def _short(value: Any) -> str:
    if _is_tensor(value):
        return f"tensor{list(value.shape)}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_seed(seed: Any) -> int:
    """``seed=``: an integer ``torch.Generator().manual_seed`` takes (numpy integers too)."""
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ProbeError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) < 2**64:  # torch took -1 too, as 2**64 - 1: two names, one stream
        raise ProbeError(f"seed {seed} is out of range: pass an integer in [0, 2**64), e.g. 0")
    return int(seed)


@dataclass
class MethodContext:
    """What a method function receives: the model, the inputs, the target and helpers.

    Attributes:
        model: the model (methods must leave it unchanged).
        inputs: the user's inputs (strings, tokenizer output, ids or pixel tensor).
        tokenizer: text models: the tokenizer.
        target: ``None`` (the predicted class / the model's own output), an ``int`` class
            index, or a callable ``output -> [batch]`` scalar per item.
        options: the method's options: what the caller passed to :func:`attribute`,
            validated against the method's declarations, with every default filled in.
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
    """A registered method: its function, what it supports and the options it takes."""

    name: str
    fn: MethodFn
    modalities: tuple[Modality, ...]
    signed: bool
    uses_gradients: bool
    description: str
    options: tuple[MethodOption, ...] = ()
    #: a model capability the method needs beyond its modality (``"gates"``: CNN attention
    #: gates, :func:`probe.trace_gates`); such methods are listed only on request
    needs: str | None = None

    def option(self, name: str) -> MethodOption | None:
        """The declaration of option ``name``, or ``None`` when the method does not take it."""
        return next((o for o in self.options if o.name == name), None)

    def defaults(self) -> dict[str, Any]:
        """Every declared option with its default."""
        return {o.name: o.default for o in self.options}

    def resolve(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` validated against the declarations, defaults filled in.

        Raises:
            ProbeError: an unknown option (naming the closest declared one) or a bad value.
        """
        if not isinstance(options, Mapping):
            raise ProbeError(
                f"options of method {self.name!r} must be a dict of keyword options, got "
                f"{type(options).__name__}"
            )
        declared = {o.name: o for o in self.options}
        for key in options:
            if key not in declared:
                close = difflib.get_close_matches(str(key), list(declared), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ProbeError(
                    f"method {self.name!r} does not take option {key!r}: {hint}its options are "
                    f"{list(declared) or 'none'}"
                )
        return {
            name: opt.validate(self.name, options[name]) if name in options else opt.default
            for name, opt in declared.items()
        }


_METHODS: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    *,
    modalities: tuple[Modality, ...] = ("text", "vision"),
    signed: bool = False,
    uses_gradients: bool = False,
    description: str = "",
    options: Sequence[MethodOption] = (),
    overwrite: bool = False,
    needs: str | None = None,
) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn(ctx: MethodContext) -> Tensor [batch, num_units]`` as method ``name``.

    ``num_units`` is the number of token positions (text) or of patches (vision, row-major
    over the trace's grid, prefix tokens excluded). ``options`` declares the keyword options
    the method takes (:class:`MethodOption`): :func:`attribute` validates what callers pass
    and ``fn`` reads ``ctx.options[name]`` with every default filled in. ``needs`` names a
    capability only some models of the modality have (``"gates"``: CNN attention gates);
    :func:`list_methods` leaves such methods out unless asked for them.
    """
    if not isinstance(name, str) or not name:
        raise ProbeError(f"method name must be a non-empty string, got {name!r}")
    options = tuple(options)
    if not all(isinstance(o, MethodOption) for o in options):
        raise ProbeError(
            "options must be MethodOption declarations, e.g. MethodOption('n_steps', 50, int)")
    names = [o.name for o in options]
    if len(set(names)) != len(names):
        raise ProbeError(f"method {name!r} declares an option twice: {names}")

    def decorator(fn: MethodFn) -> MethodFn:
        if name in _METHODS and not overwrite:
            raise ProbeError(
                f"method {name!r} is already registered; pass overwrite=True to replace it")
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        _METHODS[name] = MethodSpec(
            name, fn, tuple(modalities), signed, uses_gradients, doc, options, needs
        )
        return fn

    return decorator


def unregister_method(name: str) -> None:
    """Remove method ``name`` from the registry (built-in ones too; tests restore them)."""
    if name not in _METHODS:
        raise ProbeError(f"method {name!r} is not registered: registered are {list(_METHODS)}")
    del _METHODS[name]


def list_methods(modality: Modality | None = None, *, needs: str | None = None,
                 every: bool = False) -> tuple[str, ...]:
    """Registered method names (for one modality when given), in registration order.

    Methods that need a model capability (e.g. ``needs="gates"``: ``cbam-spatial`` on CNNs
    with CBAM) are listed only when ``needs`` names it, next to the general methods, or with
    ``every=True`` (all methods, whatever they need: what ``probe models --methods`` lists).

    Raises:
        ProbeError: ``modality`` is neither ``"text"``, ``"vision"`` nor ``None``.
    """
    if modality is not None and modality not in ("text", "vision"):
        raise ProbeError(f"modality must be 'text', 'vision' or None (every method), got "
                         f"{modality!r}")
    return tuple(
        n for n, s in _METHODS.items()
        if (modality is None or modality in s.modalities) and (every or s.needs in (None, needs))
    )


def method_spec(name: str) -> MethodSpec:
    """The registration of method ``name``.

    Raises:
        ProbeError: ``name`` is not registered (the message names the closest one).
    """
    if name not in _METHODS:
        close = difflib.get_close_matches(str(name), list(_METHODS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ProbeError(f"unknown method {name!r}: {hint}use one of {list(_METHODS)}")
    return _METHODS[name]


def method_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options of method ``name`` validated against its declarations, defaults filled in.

    Raises:
        ProbeError: unknown method or option, or a bad value.
    """
    return method_spec(name).resolve(options or {})


def parse_method_options(assignments: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Command-line ``METHOD.OPTION=VALUE`` strings as typed, validated options per method.

    ``["ig.n_steps=16", "rollout.head_fusion=median"]`` ->
    ``{"ig": {"n_steps": 16}, "rollout": {"head_fusion": "median"}}``; each value is converted
    to the kind its declaration names (:meth:`MethodOption.parse`).

    Raises:
        ProbeError: a malformed assignment, an unknown method or option, or a bad value.
    """
    out: dict[str, dict[str, Any]] = {}
    for text in assignments:
        key, eq, value = text.partition("=")
        method, dot, name = key.rpartition(".")
        if not (eq and dot and method and name):
            raise ProbeError(
                f"--option {text!r} is not METHOD.OPTION=VALUE, e.g. --option ig.n_steps=16"
            )
        try:  # the refusal names the assignment: several --option may be given
            spec = method_spec(method)
            option = spec.option(name)
            if option is None:
                spec.resolve({name: None})  # raises, naming the closest declared option
                raise AssertionError("unreachable")
            out.setdefault(method, {})[name] = option.parse(method, value)
        except ProbeError as exc:
            raise ProbeError(f"--option {text}: {exc}") from None
    return out


def resolve_run(
    model: nn.Module, method: str, options: Mapping[str, Any]
) -> tuple[MethodSpec, dict[str, Any], Modality]:
    """What :func:`attribute` checks before running: the method's registration, its options
    validated with defaults filled in (what :attr:`Attribution.options` will hold), and the
    model's modality, which the method must apply to. Runs nothing.

    Raises:
        ProbeError: an unknown method, an option it does not take, a bad option value, or a
            method that does not apply to the model's modality.
    """
    spec = method_spec(method)
    resolved = spec.resolve(options)
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    if getattr(adapter, "generic", False):  # "text" was a guess: gradcam "does not apply to text"
        raise UnsupportedModelError(
            f"probe.attribute needs a model probe recognises (HuggingFace or timm); "
            f"{type(model).__name__} is a plain torch module, which probe can call but not look "
            "inside: pass a timm or HuggingFace model, or score your own maps with "
            "probe.faithfulness"
        )
    from probe.capture.adapters._hf_image_text import is_image_to_text

    if is_image_to_text(model):  # it writes tokens: no one prediction to explain
        raise UnsupportedModelError(
            f"probe.attribute explains one prediction of a classifier; {type(model).__name__} "
            "writes text from an image: trace it, probe.trace(model, pixel_values, "
            "decoder_inputs=ids), and read which patches each token looked at with "
            "probe.token_patch_maps(trace), or attribute its image encoder alone: "
            "probe.attribute(model.encoder, pixel_values, method)"
        )
    from probe.capture._weights import require_weights

    require_weights(model, "probe.attribute")
    modality: Modality = adapter.modality
    if modality not in spec.modalities:
        raise ProbeError(
            f"method {method!r} does not apply to {modality} models: use one of "
            f"{list(list_methods(modality))}"
        )
    return spec, resolved, modality


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
        trace: a plain capture of the same inputs to reuse (saves a forward pass); one of
            other inputs is refused.
        **options: the method's options (``method_spec(method).options``; e.g. ``n_steps``
            for Integrated Gradients, ``head_fusion`` for rollout).

    Returns:
        An :class:`Attribution` with ``scores`` ``[batch, num_units]``.

    Raises:
        ProbeError: an unknown method, an option it does not take, or a bad option value.
    """
    spec, resolved, modality = resolve_run(model, method, options)
    seed = check_seed(seed)
    from probe.capture._inference import usable_outside_inference

    inputs = usable_outside_inference(inputs)  # tokenized under inference_mode: no backward
    if trace is not None:
        from probe.attribution._trace_reuse import check_trace_inputs

        check_trace_inputs(model, inputs, tokenizer, trace)
    ctx = MethodContext(model, inputs, tokenizer, target, resolved, modality, seed, trace)
    from probe.capture._train_mode import public_call

    with public_call("probe.attribute"):  # a train-mode warning names this call
        scores = spec.fn(ctx)
        if modality != "vision" or ctx._trace is not None:
            ctx.trace()
    import torch

    if not isinstance(scores, torch.Tensor):  # a registered method that returned nothing
        raise ProbeError(
            f"method {spec.name!r} returned {type(scores).__name__}, not a tensor: its function "
            f"({getattr(spec.fn, '__name__', spec.fn)!r}) must return the scores "
            "[batch, num_units], one per token or patch"
        )
    if modality == "vision" and ctx._trace is None:
        return _wrap_units(scores, spec, ctx)
    tr = ctx.trace()
    return _wrap(scores, spec, tr, modality, ctx)


def _wrap_units(scores: torch.Tensor, spec: MethodSpec, ctx: MethodContext) -> Attribution:
    """Vision scores of a method that captured no attention: the grid comes from the adapter.

    This is how CNNs (no attention to capture) get their unit grid: the cells of the last
    stage's feature map; for vision transformers it is the patch grid, as in a trace.
    """
    from probe.capture import adapter_for

    adapter = adapter_for(ctx.model)
    geometry = adapter.vision_geometry(adapter.prepare(ctx.inputs).main)
    rows, cols = geometry.grid
    scores = scores.detach().float().cpu()
    if scores.dim() != 2 or scores.shape[-1] != rows * cols:
        raise ProbeError(
            f"method {spec.name!r} returned scores of shape {tuple(scores.shape)} but the unit "
            f"grid has {rows}x{cols} = {rows * cols} cells per image"
        )
    return Attribution(
        scores, spec.name, "vision", spec.signed, grid=geometry.grid,
        image_size=geometry.image_size, model_name=adapter.name, info=dict(ctx.info),
        options=dict(ctx.options),
    )


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
            model_name=tr.model_name, info=dict(ctx.info), options=dict(ctx.options),
        )
    if tuple(scores.shape) != tuple(tr.attention_mask.shape):
        raise ProbeError(
            f"method {spec.name!r} returned scores of shape {tuple(scores.shape)} but the input "
            f"has {tuple(tr.attention_mask.shape)} tokens [batch, seq]: return one score per token"
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
    units = tr.attention_mask.bool().cpu() & ~tr.special_tokens_mask.bool().cpu()
    return Attribution(
        scores, spec.name, modality, spec.signed, tokens=tr.tokens, words=tr.words,
        word_scores=word_scores, model_name=tr.model_name, byte_level=tr.byte_level,
        info=dict(ctx.info), options=dict(ctx.options), units=units,
    )
