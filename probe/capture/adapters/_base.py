"""The model room's contract: :class:`ModelAdapter` and the adapter registry.

An adapter is the only code that knows a model framework (HuggingFace ``transformers``,
timm, ...). It detects the models of its family, prepares inputs (text, ids, pixels), runs
the forward pass, reports the device and geometry (patch grid, prefix tokens, token and word
labels), the embedding layer for gradient methods, the transformer blocks for GradCAM and
sanity checks, and the attention sites with the way to intercept them. Everything else in
probe talks to an adapter and to the :class:`~probe.capture._trace.Trace`.

A new model family is one new file::

    @register_adapter
    class MyFamily(ModelAdapter):
        family = "encoder"
        modality = "text"

        @classmethod
        def detect(cls, model) -> bool: ...
        def sites(self) -> list[Site]: ...
        def intercept(self, sites, recorders, chunk_size): ...
        def prepare(self, inputs, *, tokenizer=None, decoder_inputs=None, forward_kwargs=None): ...
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from probe._errors import ProbeError, UnsupportedModelError
from probe._text import with_article

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture._recorder import StackRecorder

__all__ = [
    "Family",
    "Modality",
    "ModelAdapter",
    "Prepared",
    "Site",
    "VisionGeometry",
    "adapter_for",
    "dataset_hint",
    "list_adapters",
    "number_sites",
    "register_adapter",
    "unregister_adapter",
]

Family = Literal["encoder", "decoder", "encoder-decoder", "vision"]
Modality = Literal["text", "vision"]
StackName = Literal["self", "decoder", "cross"]


@dataclass(frozen=True)
class Site:
    """One attention module: its name, the stack it belongs to and its layer in that stack."""

    module: Any
    name: str
    stack: StackName
    layer: int


def number_sites(found: list[tuple[str, Any, StackName]]) -> list[Site]:
    """``(name, module, stack)`` in model order -> :class:`Site` s numbered per stack."""
    counts: dict[str, int] = {}
    out = []
    for name, module, stack in found:
        out.append(Site(module, name, stack, counts.get(stack, 0)))
        counts[stack] = counts.get(stack, 0) + 1
    return out


@dataclass(frozen=True)
class VisionGeometry:
    """Where the patch tokens of an image input are.

    Attributes:
        grid: ``(rows, cols)`` of the patch grid.
        num_prefix_tokens: tokens before the patches (CLS, distillation, registers), or ``-1``
            when the model does not say (then it is read from the captured sequence length).
        image_size: ``(height, width)`` of the model input.
        patch_size: ``(height, width)`` of one patch in pixels.
        num_suffix_tokens: tokens after the patches (YOLOS's detection tokens).
    """

    grid: tuple[int, int]
    num_prefix_tokens: int
    image_size: tuple[int, int]
    patch_size: tuple[int, int]
    num_suffix_tokens: int = 0


@dataclass
class Prepared:
    """Inputs ready for the forward pass, and what probe learned while preparing them.

    Attributes:
        kwargs: keyword arguments of the model's forward, on the model's device.
        main_key: the keyword of the main input (``"input_ids"``, ``"pixel_values"``, ``"x"``).
        attention_mask: ``[batch, key]`` bool on the CPU (text), else ``None``.
        decoder_mask: ``[batch, target]`` bool, encoder-decoders.
        tokens, words, word_ids, decoder_tokens: labels (text models with a tokenizer).
        token_spans: per item, each token's ``(start, end)`` characters within its word
            (``None`` for tokens of no word), when the text and its offsets are known.
        special_tokens_mask: ``[batch, key]`` bool, structural special tokens.
        byte_level: the tokens are byte-level BPE symbols (``Ġthe``; GPT-2, RoBERTa, Llama 3).
        unk_token: the tokenizer's unknown token (``[UNK]``, ``<unk>``), ``None`` without one.
        input_ids: ``[batch, seq]`` copy of the token ids (text).
        pixel_values: ``[batch, channel, height, width]`` copy of the pixels (vision).
        batch: batch size when known before the forward pass.
    """

    kwargs: dict[str, Any] = field(default_factory=dict)
    main_key: str = "input_ids"
    attention_mask: torch.Tensor | None = None
    decoder_mask: torch.Tensor | None = None
    tokens: tuple[tuple[str, ...], ...] | None = None
    words: tuple[tuple[str, ...], ...] | None = None
    word_ids: tuple[tuple[int | None, ...], ...] | None = None
    token_spans: tuple[tuple[tuple[int, int] | None, ...], ...] | None = None
    decoder_tokens: tuple[tuple[str, ...], ...] | None = None
    special_tokens_mask: torch.Tensor | None = None
    byte_level: bool = False
    unk_token: str | None = None
    input_ids: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    batch: int | None = None

    @property
    def main(self) -> torch.Tensor:
        """The main input tensor (ids or pixels) as passed to the forward."""
        return self.kwargs[self.main_key]

    def others(self) -> dict[str, Any]:
        """Every forward keyword argument except the main input."""
        return {k: v for k, v in self.kwargs.items() if k != self.main_key}


class ModelAdapter:
    """What probe needs to know about one model family. Subclass and :func:`register_adapter`.

    Subclasses set ``family`` and ``modality`` and implement :meth:`detect`, :meth:`sites`,
    :meth:`intercept` and :meth:`prepare`; the rest has working defaults that families
    override where their models differ.
    """

    family: ClassVar[Family] = "encoder"
    modality: ClassVar[Modality] = "text"
    #: adapters are tried from the highest priority down; the first that detects the model wins
    priority: ClassVar[int] = 0
    #: True only for the fallback that runs any module but knows nothing about it
    generic: ClassVar[bool] = False
    #: name of the last step of a sanity check's cascade: the parameters below the first block
    input_step: ClassVar[str] = "embeddings"

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._sites: list[Site] | None = None

    # ------------------------------------------------------------------ detection
    @classmethod
    def detect(cls, model: Any) -> bool:
        """Whether ``model`` belongs to this family."""
        raise NotImplementedError(f"{cls.__name__} must implement detect()")

    # ------------------------------------------------------------------ attention sites
    def find_sites(self) -> list[Site]:
        """The attention modules of the model, in model order, assigned to stacks."""
        raise NotImplementedError(f"{type(self).__name__} must implement find_sites()")

    def sites(self) -> list[Site]:
        """:meth:`find_sites`, computed once per adapter."""
        if self._sites is None:
            self._sites = self.find_sites()
        return self._sites

    def intercept(
        self,
        sites: list[Site],
        recorders: dict[str, StackRecorder],
        chunk_size: int | None,
    ) -> AbstractContextManager[None]:
        """A context manager routing the attention of ``sites`` into ``recorders``.

        Everything it switches (flags, configs, hooks, registries) is restored on exit, also
        when the forward raises.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement intercept()")

    # ------------------------------------------------------------------ inputs and forward
    def prepare(
        self,
        inputs: Any,
        *,
        tokenizer: Any = None,
        decoder_inputs: Any = None,
        forward_kwargs: dict[str, Any] | None = None,
    ) -> Prepared:
        """Check and convert user inputs into forward keyword arguments (see :class:`Prepared`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement prepare()")

    def prepare_unchecked(self, inputs: Any, **options: Any) -> Prepared:
        """:meth:`prepare` without the checks a capture alone needs (ViT-MAE's grid order): to
        compare a ``trace=`` with the inputs ``probe.attribute`` got (the trace was checked when
        it was captured). The same as :meth:`prepare` unless an adapter says otherwise."""
        return self.prepare(inputs, **options)

    def forward(self, kwargs: dict[str, Any]) -> Any:
        """Run the model on forward keyword arguments (no grad/mode changes); the
        ``config.problem_type`` transformers infers from ``labels`` is put back."""
        from probe.capture.adapters._labels import keeping_config

        with keeping_config(self.model, kwargs):
            return self.model(**kwargs)

    def call(self, main: torch.Tensor, others: dict[str, Any] | None = None) -> Any:
        """Run the model with ``main`` as its main input (ids or pixels) and ``others``."""
        return self.forward({self.main_key: main, **(others or {})})

    def run(self, prepared: Prepared) -> Any:
        """The model's output for prepared inputs."""
        return self.forward(prepared.kwargs)

    def generate(self, prepared: Prepared, max_new_tokens: int, kwargs: dict[str, Any]) -> Any:
        """Generate from prepared inputs with the KV cache on (text generation families)."""
        raise UnsupportedModelError(
            f"{self.name} is {with_article(self.family)} model: probe.generate needs a HuggingFace "
            "decoder or encoder-decoder with a language-model head"
        )

    def forward_parameters(self) -> tuple[frozenset[str], bool]:
        """Keyword parameters the model's forward takes, and whether it also takes ``**kwargs``
        probe cannot list (see :func:`forward_keywords`)."""
        return forward_keywords(self.model)

    @property
    def main_key(self) -> str:
        """The forward keyword of the main input."""
        return "pixel_values" if self.modality == "vision" else "input_ids"

    def predicted_class(self, prepared: Prepared) -> torch.Tensor:
        """``[batch]`` predicted classes of unmodified inputs (no gradients), on the CPU."""
        import torch

        from probe.capture._outputs import predicted_class

        with torch.no_grad():
            return predicted_class(self.run(prepared), self.model).cpu()

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        """The model's name: ``probe_name``, the config's path or the timm architecture."""
        model = self.model
        name = getattr(model, "probe_name", None)
        if name:
            return str(name)
        cfg = getattr(model, "config", None)
        path = getattr(cfg, "_name_or_path", "") if cfg is not None else ""
        if path:
            if os.path.isabs(str(path)):
                return os.path.basename(str(path).rstrip("/"))
            return str(path)
        pretrained = getattr(model, "pretrained_cfg", None) or {}
        if isinstance(pretrained, dict) and pretrained.get("architecture"):
            return str(pretrained["architecture"])
        return type(model).__name__

    @property
    def device(self) -> torch.device:
        """The device the model computes on, where probe puts its inputs.

        A model dispatched by ``accelerate`` (``from_pretrained(device_map=...)``,
        ``dispatch_model``, ``cpu_offload``, ``disk_offload``) keeps offloaded parameters on the
        ``meta`` device and moves them in for each forward: its device is the execution device
        of the first module accelerate dispatches (the embedding, in model order). Otherwise the
        device of the first parameter (or buffer) that holds data; CPU for a model without any.
        """
        import torch

        for module in self.model.modules():
            # accelerate sets the hook as a plain attribute; vars() skips nn.Module.__getattr__
            execution = _execution_device(vars(module).get("_hf_hook"))
            if execution is not None:
                return execution
        # lazily: the first tensor with data answers (a tuple of all of them costs ~1 ms)
        for tensor in itertools.chain(self.model.parameters(), self.model.buffers()):
            if tensor.device.type != "meta":
                return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's first floating parameter (float32 if none)."""
        import torch

        return next(
            (p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32
        )

    # ------------------------------------------------------------------ geometry
    def vision_geometry(self, pixels: torch.Tensor) -> VisionGeometry:
        """Patch grid, prefix tokens, image and patch size for ``pixels`` (vision families)."""
        raise ProbeError(
            f"{self.name} is {with_article(self.modality)} model: it has no patch grid"
        )

    def input_size(self) -> tuple[int, int] | None:
        """``(height, width)`` the model expects, or ``None`` if it takes any size."""
        return None

    def pools_patches(self) -> bool:
        """Vision: whether the classifier pools the patch tokens instead of reading CLS."""
        return False

    # ------------------------------------------------------------------ modules
    def embedding_layer(self) -> nn.Module:
        """The layer embedding the attributed token ids (gradient methods on text)."""
        get = getattr(self.model, "get_input_embeddings", None)
        layer = get() if callable(get) else None
        if layer is None:
            raise ProbeError(
                f"{type(self.model).__name__} has no input embedding layer "
                "(get_input_embeddings()); gradient methods for text need a transformers model"
            )
        return layer

    def block(self, index: int) -> nn.Module:
        """The transformer block holding the ``index``-th self-attention module (GradCAM)."""
        sites = sorted((s for s in self.sites() if s.stack == "self"), key=lambda s: s.layer)
        n = len(sites)
        if isinstance(index, bool) or not isinstance(index, int) or not -n <= index < n:
            raise ProbeError(f"block must be a block index in -{n}..{n - 1}, got {index!r}")
        name = sites[index % n].name
        parts = name.split(".")
        numbered = [i for i, p in enumerate(parts) if p.isdigit()]
        if not numbered:
            raise ProbeError(
                f"cannot find the transformer block around attention module {name!r}; GradCAM "
                "needs blocks in a numbered list such as blocks.0, blocks.1, ..."
            )
        return self.model.get_submodule(".".join(parts[: numbered[-1] + 1]))

    def stacks(self) -> list[str]:
        """Names of the outermost stacks of blocks (sanity checks randomise them block by block:
        each child of a stack is one step)."""
        from probe.capture.adapters._blocks import outer_stacks

        return outer_stacks(self.model)

    # ------------------------------------------------------------------ descriptions
    def describe(self) -> str:
        return f"{type(self).__name__}({self.name!r}, family={self.family!r})"

    def __repr__(self) -> str:
        return self.describe()


# ---------------------------------------------------------------------------- registry
_ADAPTERS: dict[str, type[ModelAdapter]] = {}


def register_adapter(cls: type[ModelAdapter]) -> type[ModelAdapter]:
    """Class decorator: make ``cls`` one of the families :func:`adapter_for` tries."""
    if not (isinstance(cls, type) and issubclass(cls, ModelAdapter)):
        raise ProbeError(f"register_adapter takes a ModelAdapter subclass, got {cls!r}")
    _ADAPTERS[cls.__name__] = cls
    return cls


def unregister_adapter(cls: type[ModelAdapter] | str) -> None:
    """Remove an adapter registered with :func:`register_adapter` (by class or name)."""
    name = cls if isinstance(cls, str) else cls.__name__
    if name not in _ADAPTERS:
        raise ProbeError(f"no adapter named {name!r} is registered: {sorted(_ADAPTERS)}")
    del _ADAPTERS[name]


def list_adapters() -> tuple[str, ...]:
    """Registered adapter names, in the order they are tried."""
    ordered = sorted(_ADAPTERS.values(), key=lambda c: -c.priority)
    return tuple(c.__name__ for c in ordered)


def adapter_for(model: Any) -> ModelAdapter:
    """The adapter of ``model``'s family.

    Raises:
        ProbeError: ``model`` is not a ``torch.nn.Module`` (e.g. a model name).
        UnsupportedModelError: no registered family recognises the model.
    """
    from torch import nn

    if isinstance(model, ModelAdapter):
        return model
    if not isinstance(model, nn.Module):
        hint = " (load it first: probe.load_model(name) returns (model, processor))" if isinstance(
            model, str
        ) else ""
        raise ProbeError(f"expected a torch.nn.Module model, got {type(model).__name__}{hint}")
    for cls in sorted(_ADAPTERS.values(), key=lambda c: -c.priority):
        if cls.detect(model):
            return cls(model)
    raise UnsupportedModelError(
        f"probe cannot capture {type(model).__name__}: no HuggingFace or timm attention modules "
        "found (pass a transformers or timm transformer model)"
    )


def each_module(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``model.named_modules()``, a thin alias so adapters read alike."""
    return iter(model.named_modules())


Detector = Callable[[Any], bool]


def _execution_device(hook: Any) -> torch.device | None:
    """The ``execution_device`` of an accelerate hook (or of the first in a ``SequentialHook``);
    read by duck typing so that probe does not import accelerate."""
    import torch

    if hook is None:
        return None
    for h in (hook, *getattr(hook, "hooks", ())):
        device = getattr(h, "execution_device", None)
        if device is not None:
            if isinstance(device, int) and not isinstance(device, bool):
                return torch.device("cuda", device)
            return torch.device(device)
    return None


def dataset_hint(inputs: Any) -> str:
    """``"; ..."`` naming the fix for inputs that are a dataset or one of its batches, else ``""``.

    A DataLoader (or another iterable of batches) goes to ``probe.attribute_batches``; an
    ``(inputs, labels, ...)`` batch, as a DataLoader yields it, holds the inputs at index 0.
    """
    from collections.abc import Iterable, Mapping

    import torch

    labels = (
        isinstance(inputs, (tuple, list)) and len(inputs) >= 2
        and isinstance(inputs[1], torch.Tensor) and inputs[1].dim() <= 1
    )
    if labels and (isinstance(inputs[0], (torch.Tensor, Mapping)) or (
        isinstance(inputs[0], (list, tuple)) and all(isinstance(t, str) for t in inputs[0])
    )):
        return "; this looks like an (inputs, labels, ...) batch: pass batch[0]"
    if isinstance(inputs, Iterable) and not hasattr(inputs, "__array__") and not isinstance(
        inputs, (str, bytes, torch.Tensor, Mapping, list, tuple)
    ):  # numpy arrays and PIL images are pictures, not datasets
        return (
            f"; for a {type(inputs).__name__} of batches use probe.attribute_batches (or "
            "iterate and pass one batch at a time)"
        )
    return ""


def _typed_kwargs(annotation: Any, function: Any) -> frozenset[str] | None:
    """The keys of the ``TypedDict`` in a ``**kwargs: Unpack[...]`` annotation, else None.

    A string annotation (a module with postponed annotations) is resolved by name in the
    function's module; anything unresolvable is None (the model judges its own ``**kwargs``).
    """
    import inspect
    import typing

    if isinstance(annotation, str):
        found = re.fullmatch(r"\s*(?:typing\.|typing_extensions\.)?Unpack\[\s*([\w.]+)\s*\]\s*",
                             annotation)
        if found is None:
            return None
        scope = getattr(inspect.unwrap(function), "__globals__", {})
        head, *rest = found.group(1).split(".")
        target = scope.get(head)
        for part in rest:
            target = getattr(target, part, None)
        typed = target
    else:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if getattr(origin, "_name", None) != "Unpack" or len(args) != 1:
            return None
        (typed,) = args
    keys = getattr(typed, "__required_keys__", None), getattr(typed, "__optional_keys__", None)
    if keys[0] is None or keys[1] is None:
        return None
    return frozenset(keys[0]) | frozenset(keys[1])


def forward_keywords(module: Any) -> tuple[frozenset[str], bool]:
    """Keyword parameters ``module.forward`` takes, and whether it also takes ``**kwargs``
    probe cannot list.

    A ``**kwargs: Unpack[SomeKwargs]`` forward (transformers' ``TransformersKwargs``) takes
    the keys of that ``TypedDict``, so they count as named and the ``**kwargs`` as listed. A
    transformers model whose ``**kwargs`` carry no annotation (GPT-2, Longformer,
    ``EncoderDecoderModel``) passes them to its attention and loss the way the annotated ones
    do: they take ``TransformersKwargs``' keys (see :func:`_hf_untyped_kwargs`).
    """
    import inspect

    try:
        params = inspect.signature(module.forward).parameters.values()
    except (AttributeError, TypeError, ValueError):
        return frozenset(), True
    named = frozenset(
        p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    var_kw = [p for p in params if p.kind == p.VAR_KEYWORD]
    if not var_kw:
        return named, False
    typed = _typed_kwargs(var_kw[0].annotation, module.forward)
    if typed is None and var_kw[0].annotation is inspect.Parameter.empty:
        typed = _hf_untyped_kwargs(module)
    return (named, True) if typed is None else (named | typed, False)


def _hf_untyped_kwargs(model: Any) -> frozenset[str] | None:
    """The keywords a transformers model's unannotated ``**kwargs`` take, else None.

    They are ``TransformersKwargs``' keys (what the annotated models declare); a composite
    ``EncoderDecoderModel`` / ``VisionEncoderDecoderModel`` also hands every other keyword to
    its encoder and every ``decoder_``-prefixed one to its decoder, so their keywords count
    too. A model that is not a transformers ``PreTrainedModel`` is None (it judges its own).
    """
    try:
        from transformers import PretrainedConfig, PreTrainedModel
        from transformers.utils import TransformersKwargs
    except ImportError:  # pragma: no cover - transformers is a dependency
        return None
    if not isinstance(model, PreTrainedModel):
        return None
    keys = frozenset(TransformersKwargs.__required_keys__) | frozenset(
        TransformersKwargs.__optional_keys__)
    config = getattr(model, "config", None)
    parts = getattr(model, "encoder", None), getattr(model, "decoder", None)
    if (all(isinstance(getattr(config, n, None), PretrainedConfig) for n in ("encoder", "decoder"))
            and all(isinstance(p, PreTrainedModel) for p in parts)):
        (encoder, enc_open), (decoder, dec_open) = (forward_keywords(p) for p in parts)
        if enc_open or dec_open:
            return None
        keys |= encoder | {f"decoder_{k}" for k in decoder}
    return keys
