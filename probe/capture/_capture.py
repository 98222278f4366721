"""``probe.trace``: run a model once and capture its attention into a :class:`Trace`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError
from probe.capture._recorder import CaptureOptions, StackRecorder, StreamOptions
from probe.capture._sites import (
    Site,
    find_hf_sites,
    find_timm_sites,
    intercept_hf,
    intercept_timm,
    is_hf_model,
)
from probe.capture._trace import Trace

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["trace"]

_FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


def trace(
    model: nn.Module,
    inputs: Any,
    *,
    tokenizer: Any = None,
    decoder_inputs: Any = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    average_heads: bool = False,
    dtype: torch.dtype | str | None = None,
    requires_grad: bool = False,
    stream: bool = False,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
    chunk_size: int | None = None,
    model_name: str | None = None,
    **forward_kwargs: Any,
) -> Trace:
    """Run ``model`` on ``inputs`` once and capture every attention map exactly.

    Works on HuggingFace ``transformers`` models whatever ``attn_implementation`` they were
    loaded with (SDPA, eager, ...) and on timm vision transformers with fused attention on.
    The captured weights equal ``output_attentions=True`` under eager attention (HF) or the
    unfused ``softmax(q k^T * scale)`` (timm); the model's outputs are unchanged to float
    precision, and the model is left exactly as it was (configs, flags, hooks), also when the
    forward raises.

    Args:
        model: a HuggingFace ``PreTrainedModel`` or a timm model.
        inputs: text models: a string, a list of strings (needs ``tokenizer``), a tokenizer
            output / mapping of forward keyword arguments, or an ``input_ids`` tensor
            ``[batch, seq]``. Vision models: ``pixel_values`` ``[batch, channel, height, width]``.
        tokenizer: HF tokenizer used to encode strings and to name tokens and words.
        decoder_inputs: encoder-decoder models: decoder text (string or list) or
            ``decoder_input_ids`` ``[batch, tgt]``; default: the decoder start token alone.
        layers: keep only these layers (model numbering, negative counts from the end); for
            encoder-decoders the same indices are kept in every stack and must exist in each.
        heads: keep only these heads of every kept layer.
        average_heads: store the mean over the (kept) heads; the head dimension becomes 1.
        dtype: storage dtype of the attention (``torch.float16``, ``"bfloat16"``, ...).
        requires_grad: keep each layer's attention in the autograd graph (``trace.layer_tensors``)
            so that gradients can be read after a backward pass from ``trace.output``.
        stream: fold each layer into an attention rollout as it is produced and keep only the
            rollout (``trace.rollout_result``, ``[batch, query, key]``); no layer's attention is
            kept, so long inputs fit in memory. ``head_fusion``, ``discard_ratio`` and
            ``start_layer`` are the rollout options (see :func:`probe.rollout`).
        chunk_size: compute attention this many query rows at a time (default: 256 in streaming
            mode on HF models, whole layers otherwise); results are identical.
        model_name: name recorded in the trace (default: the model's own name).
        **forward_kwargs: passed to the model's forward.

    Returns:
        A frozen :class:`Trace`; ``trace.output`` holds the model's output.

    Raises:
        ProbeError: bad inputs or options (the message says how to fix them).
        UnsupportedModelError: no attention module probe can capture.
    """
    import torch

    options = _options(
        layers, heads, average_heads, dtype, requires_grad, stream, head_fusion,
        discard_ratio, start_layer, chunk_size,
    )
    hf = is_hf_model(model)
    if hf:
        sites = find_hf_sites(model)
    elif type(model).__module__.startswith("timm."):
        sites = find_timm_sites(model)
    else:
        sites = _find_any_sites(model)
        hf = bool(sites) and sites[0].module.__class__.__module__.startswith("transformers.")
    vision = _is_vision(model, hf)
    prepared = _prepare_inputs(model, inputs, tokenizer, decoder_inputs, vision, hf, forward_kwargs)
    stacks = _stack_sizes(sites)
    for kind, names in stacks.items():  # layers= applies to every stack: valid in each
        _check_layers(options, names, start_layer, stream, kind)
    if options.stream is not None:
        n = len(stacks["self"])
        options = replace(options, stream=replace(options.stream, start_layer=start_layer % n))

    geometry = _vision_geometry(model, prepared.kwargs, hf) if vision else None
    main_mask = prepared.attention_mask
    recorders: dict[str, StackRecorder] = {
        "self": StackRecorder(
            "self", stacks["self"], options, key_mask=main_mask, query_mask=main_mask,
            num_prefix_tokens=geometry[1] if geometry else 0, stream=stream,
        )
    }
    other_options = replace(options, layers=()) if stream else options
    dec_mask = prepared.decoder_mask
    if stacks.get("decoder"):
        recorders["decoder"] = StackRecorder(
            "self", stacks["decoder"], other_options, key_mask=dec_mask, query_mask=dec_mask
        )
    if stacks.get("cross"):
        recorders["cross"] = StackRecorder(
            "cross", stacks["cross"], other_options, key_mask=main_mask, query_mask=dec_mask
        )

    chunk = options.chunk_size or (256 if stream else None)
    grad_context = torch.enable_grad() if requires_grad else torch.no_grad()
    intercept = (
        intercept_hf(model, sites, recorders, chunk) if hf else intercept_timm(model, sites, recorders)
    )
    with intercept, grad_context:
        output = model(**prepared.kwargs)

    main = recorders["self"]
    if not main.called:
        raise UnsupportedModelError(
            f"no attention was recorded during the forward pass of {type(model).__name__}: its "
            "attention modules were not called through a path probe intercepts"
        )
    stack = main.finish()
    decoder = recorders["decoder"].finish() if "decoder" in recorders and not stream else None
    cross = recorders["cross"].finish() if "cross" in recorders and not stream else None

    seq_len = _seq_len(stack, main)
    batch = _batch_size(prepared, stack, main)
    attention_mask = main_mask if main_mask is not None else torch.ones(batch, seq_len, dtype=torch.bool)
    special = prepared.special_tokens_mask
    grid = image_size = None
    num_prefix = 0
    if geometry is not None:
        grid, num_prefix, image_size = geometry
        if num_prefix < 0 or num_prefix + grid[0] * grid[1] != seq_len:
            num_prefix = seq_len - grid[0] * grid[1]
            if num_prefix < 0:
                raise UnsupportedModelError(
                    f"cannot map {seq_len} tokens onto a {grid[0]}x{grid[1]} patch grid; this "
                    "vision model's token layout is not supported yet"
                )
        special = torch.zeros(batch, seq_len, dtype=torch.bool)
        special[:, :num_prefix] = True
    if special is None:
        special = torch.zeros(batch, seq_len, dtype=torch.bool)

    return Trace(
        attentions=stack.attentions,
        layer_names=stack.layer_names,
        layer_indices=stack.layer_indices,
        head_indices=stack.head_indices,
        model_name=model_name or _model_name(model),
        family="vision" if vision else _family(model, sites, hf),
        attention_mask=attention_mask.to(torch.bool).cpu() if attention_mask.device.type != "cpu" else attention_mask.to(torch.bool),
        special_tokens_mask=special.to(torch.bool).cpu(),
        num_prefix_tokens=num_prefix,
        tokens=prepared.tokens,
        words=prepared.words,
        word_ids=prepared.word_ids,
        grid=grid,
        image_size=image_size,
        decoder=decoder,
        cross=cross,
        decoder_tokens=prepared.decoder_tokens,
        rollout_result=main.rollout_state if stream else None,
        rollout_options=options.stream.as_dict() if options.stream else None,
        output=output,
        layer_tensors=stack.layer_tensors,
        input_ids=prepared.input_ids,
        pixel_values=prepared.pixel_values,
        num_heads=main.num_heads,
        num_model_layers=len(stacks["self"]),
    )


# --------------------------------------------------------------------------- options
def _options(
    layers: Sequence[int] | None,
    heads: Sequence[int] | None,
    average_heads: bool,
    dtype: Any,
    requires_grad: bool,
    stream: bool,
    head_fusion: str,
    discard_ratio: float,
    start_layer: int,
    chunk_size: int | None,
) -> CaptureOptions:
    import torch

    def ints(name: str, value: Sequence[int] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        if isinstance(value, int):
            value = [value]
        if isinstance(value, (str, bytes)) or not all(isinstance(v, int) for v in value):
            raise ProbeError(f"{name} must be a list of integers, got {value!r}")
        if len(value) == 0:
            raise ProbeError(f"{name} is empty: pass None to keep all {name}")
        return tuple(value)

    if isinstance(dtype, str):
        if dtype not in _FLOAT_DTYPES:
            raise ProbeError(f"dtype {dtype!r} is not supported: use one of {list(_FLOAT_DTYPES)}")
        dtype = getattr(torch, dtype)
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise ProbeError(f"dtype must be a floating torch dtype such as torch.float16, got {dtype!r}")
    stream_options = None
    if stream:
        from probe.analysis._fusion import check_head_fusion

        check_head_fusion(head_fusion)
        if not 0.0 <= discard_ratio < 1.0:
            raise ProbeError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
        if layers is not None:
            raise ProbeError(
                "stream=True folds every layer into the rollout: drop layers=..., use start_layer"
            )
        if requires_grad:
            raise ProbeError("stream=True keeps no attention, so it cannot be combined with requires_grad")
        stream_options = StreamOptions(head_fusion, float(discard_ratio), int(start_layer))
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ProbeError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return CaptureOptions(
        layers=ints("layers", layers),
        heads=ints("heads", heads),
        average_heads=bool(average_heads),
        dtype=dtype,
        requires_grad=bool(requires_grad),
        stream=stream_options,
        chunk_size=chunk_size,
    )


def _stack_sizes(sites: list[Site]) -> dict[str, list[str]]:
    stacks: dict[str, list[str]] = {}
    for s in sites:
        stacks.setdefault(s.stack, []).append(s.name)
    if "self" not in stacks:
        raise UnsupportedModelError("no self-attention modules found in the model")
    return stacks


def _check_layers(
    options: CaptureOptions, names: list[str], start_layer: int, stream: bool, kind: str = "self"
) -> None:
    n = len(names)
    what = {"self": "the model", "decoder": "the decoder", "cross": "the cross-attention"}[kind]
    for layer in options.layers or ():
        if not -n <= layer < n:
            raise ProbeError(
                f"layer {layer} is out of range: {what} has {n} layers (use 0..{n - 1} or "
                "negative indices)"
            )
    if stream and not -n <= start_layer < n:
        raise ProbeError(
            f"start_layer {start_layer} is out of range: the model has {n} layers (use 0..{n - 1} "
            "or negative indices)"
        )


def _find_any_sites(model: nn.Module) -> list[Site]:
    try:
        return find_hf_sites(model)
    except UnsupportedModelError:
        pass
    try:
        return find_timm_sites(model)
    except UnsupportedModelError:
        raise UnsupportedModelError(
            f"probe cannot capture {type(model).__name__}: no HuggingFace or timm attention "
            "modules found (pass a transformers or timm transformer model)"
        ) from None


# --------------------------------------------------------------------------- inputs
class _Prepared:
    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}
        self.attention_mask: torch.Tensor | None = None
        self.decoder_mask: torch.Tensor | None = None
        self.tokens: tuple[tuple[str, ...], ...] | None = None
        self.words: tuple[tuple[str, ...], ...] | None = None
        self.word_ids: tuple[tuple[int | None, ...], ...] | None = None
        self.decoder_tokens: tuple[tuple[str, ...], ...] | None = None
        self.special_tokens_mask: torch.Tensor | None = None
        self.input_ids: torch.Tensor | None = None
        self.pixel_values: torch.Tensor | None = None
        self.batch: int | None = None


def _is_vision(model: nn.Module, hf: bool) -> bool:
    if hf:
        return getattr(model, "main_input_name", "input_ids") == "pixel_values"
    return hasattr(model, "patch_embed")


def _model_device(model: nn.Module) -> torch.device:
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _prepare_inputs(
    model: nn.Module,
    inputs: Any,
    tokenizer: Any,
    decoder_inputs: Any,
    vision: bool,
    hf: bool,
    forward_kwargs: dict[str, Any],
) -> _Prepared:
    import torch

    p = _Prepared()
    device = _model_device(model)
    if vision:
        if not isinstance(inputs, torch.Tensor):
            raise ProbeError(
                f"vision models take a pixel tensor [batch, channel, height, width], got "
                f"{type(inputs).__name__}; convert images with the model's preprocessing first"
            )
        _check_pixels(model, inputs, hf)
        key = "pixel_values" if hf else "x"
        p.kwargs = {key: inputs.to(device), **forward_kwargs} if hf else {"x": inputs.to(device)}
        if not hf and forward_kwargs:
            raise ProbeError(f"timm models take no extra forward arguments, got {sorted(forward_kwargs)}")
        p.pixel_values = inputs.detach().clone()
        p.batch = int(inputs.shape[0])
        return p

    encoding: Any = None
    if isinstance(inputs, str) or (
        isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, str) for t in inputs)
    ):
        if tokenizer is None:
            raise ProbeError(
                "text inputs need a tokenizer: pass tokenizer=... (probe.load_model returns one)"
            )
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if any(not t.strip() for t in texts):
            raise ProbeError("empty text: pass a non-empty string")
        encoding = tokenizer(texts, return_tensors="pt", padding=True, truncation=False)
        kwargs = dict(encoding)
    elif isinstance(inputs, Mapping):
        kwargs = dict(inputs)
        encoding = inputs if hasattr(inputs, "word_ids") else None
        if "input_ids" not in kwargs and "inputs_embeds" not in kwargs:
            raise ProbeError("the input mapping has no 'input_ids': pass a tokenizer's output")
    elif isinstance(inputs, torch.Tensor):
        if inputs.dim() == 1:
            raise ProbeError(
                f"input_ids must be [batch, seq], got shape {tuple(inputs.shape)}: use "
                "ids.unsqueeze(0)"
            )
        if inputs.dim() != 2 or inputs.dtype not in (torch.int64, torch.int32):
            raise ProbeError(
                f"text models take input_ids as an integer tensor [batch, seq], got "
                f"{inputs.dtype} {tuple(inputs.shape)}"
            )
        kwargs = {"input_ids": inputs}
    else:
        raise ProbeError(
            f"unsupported inputs of type {type(inputs).__name__}: pass a string, a list of "
            "strings, a tokenizer output or an input_ids tensor"
        )
    kwargs.pop("token_type_ids", None) if not _accepts(model, "token_type_ids") else None
    input_ids = kwargs.get("input_ids")
    if input_ids is not None:
        _check_length(model, input_ids)
        p.input_ids = input_ids.detach().clone()
    mask = kwargs.get("attention_mask")
    if mask is None and input_ids is not None:
        mask = torch.ones_like(input_ids, dtype=torch.bool)
    p.attention_mask = None if mask is None else mask.detach().to(torch.bool).cpu()
    if tokenizer is not None and input_ids is not None:
        p.tokens = tuple(tuple(tokenizer.convert_ids_to_tokens(row.tolist())) for row in input_ids)
        special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
        special = torch.tensor(
            [[int(t) in special_ids for t in row.tolist()] for row in input_ids], dtype=torch.bool
        )
        p.special_tokens_mask = special & p.attention_mask if p.attention_mask is not None else special
    elif input_ids is not None:
        p.special_tokens_mask = _special_from_config(model, input_ids)
    if encoding is not None and getattr(encoding, "is_fast", False) and isinstance(inputs, (str, list, tuple)):
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        p.words, p.word_ids = _words(encoding, texts)

    if getattr(model.config, "is_encoder_decoder", False) and "decoder_input_ids" not in kwargs:
        kwargs.update(_decoder_kwargs(model, decoder_inputs, tokenizer, int(input_ids.shape[0]) if input_ids is not None else 1))
    if "decoder_input_ids" in kwargs:
        dec = kwargs["decoder_input_ids"]
        dmask = kwargs.get("decoder_attention_mask")
        p.decoder_mask = (dmask if dmask is not None else torch.ones_like(dec)).to(torch.bool).cpu()
        if tokenizer is not None:
            p.decoder_tokens = tuple(tuple(tokenizer.convert_ids_to_tokens(r.tolist())) for r in dec)
    kwargs.update(forward_kwargs)
    p.kwargs = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    return p


def _accepts(model: nn.Module, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return True


def _decoder_kwargs(model: nn.Module, decoder_inputs: Any, tokenizer: Any, batch: int) -> dict[str, Any]:
    import torch

    if decoder_inputs is None:
        start = getattr(model.config, "decoder_start_token_id", None)
        if start is None:
            raise ProbeError(
                "this encoder-decoder model has no decoder_start_token_id: pass decoder_inputs=..."
            )
        return {"decoder_input_ids": torch.full((batch, 1), int(start), dtype=torch.long)}
    if isinstance(decoder_inputs, torch.Tensor):
        return {"decoder_input_ids": decoder_inputs}
    if isinstance(decoder_inputs, (str, list, tuple)):
        if tokenizer is None:
            raise ProbeError("decoder text needs a tokenizer: pass tokenizer=...")
        texts = [decoder_inputs] if isinstance(decoder_inputs, str) else list(decoder_inputs)
        enc = tokenizer(text_target=texts, return_tensors="pt", padding=True)
        return {"decoder_input_ids": enc["input_ids"], "decoder_attention_mask": enc["attention_mask"]}
    raise ProbeError(
        f"decoder_inputs must be a string, a list of strings or a tensor, got {type(decoder_inputs).__name__}"
    )


def _max_length(model: nn.Module) -> int | None:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            offset = 2 if getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else 0
            return value - offset
    return None


def _check_length(model: nn.Module, input_ids: torch.Tensor) -> None:
    limit = _max_length(model)
    n = int(input_ids.shape[1])
    if limit is not None and n > limit:
        raise ProbeError(
            f"the input is {n} tokens long but {_model_name(model)} accepts at most {limit}: "
            "shorten the text or split it into chunks"
        )


def _special_from_config(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    import torch

    cfg = model.config
    ids = {
        getattr(cfg, n, None)
        for n in ("bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id", "pad_token_id")
    }
    ids.discard(None)
    flat = {i for x in ids for i in (x if isinstance(x, list) else [x])}
    return torch.isin(input_ids.cpu(), torch.tensor(sorted(flat), dtype=input_ids.dtype))


def _words(encoding: Any, texts: list[str]) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[int | None, ...], ...]]:
    words_all = []
    ids_all = []
    for b, text in enumerate(texts):
        word_ids = encoding.word_ids(b)
        n_words = max((w for w in word_ids if w is not None), default=-1) + 1
        words = []
        for w in range(n_words):
            span = encoding.word_to_chars(b, w)
            words.append(text[span.start : span.end] if span is not None else "")
        words_all.append(tuple(words))
        ids_all.append(tuple(word_ids))
    return tuple(words_all), tuple(ids_all)


# --------------------------------------------------------------------------- vision
def _check_pixels(model: nn.Module, x: torch.Tensor, hf: bool) -> None:
    if x.dim() == 3:
        raise ProbeError(
            f"pixel_values must be [batch, channel, height, width], got {tuple(x.shape)}: use "
            "x.unsqueeze(0)"
        )
    if x.dim() != 4 or not x.is_floating_point():
        raise ProbeError(
            f"pixel_values must be a float tensor [batch, channel, height, width], got "
            f"{x.dtype} {tuple(x.shape)}"
        )
    if hf:
        channels = int(getattr(model.config, "num_channels", x.shape[1]))
        size = getattr(model.config, "image_size", None)
        expected = (size, size) if isinstance(size, int) else tuple(size) if size else None
        strict = True
    else:
        pe = model.patch_embed
        channels = int(pe.proj.in_channels) if hasattr(pe, "proj") else int(x.shape[1])
        expected = tuple(pe.img_size) if getattr(pe, "img_size", None) is not None else None
        strict = bool(getattr(pe, "strict_img_size", True)) and not getattr(pe, "dynamic_img_size", False)
    if x.shape[1] != channels:
        raise ProbeError(f"the model expects {channels} channels, got {x.shape[1]} (pixel_values {tuple(x.shape)})")
    if strict and expected is not None and tuple(x.shape[-2:]) != expected:
        raise ProbeError(
            f"the model expects {expected[0]}x{expected[1]} images, got "
            f"{x.shape[-2]}x{x.shape[-1]}: resize the image first"
        )


def _vision_geometry(
    model: nn.Module, kwargs: dict[str, Any], hf: bool
) -> tuple[tuple[int, int], int, tuple[int, int]]:
    """(patch grid, number of prefix tokens or -1 if unknown, image size)."""
    x = kwargs["pixel_values"] if hf else kwargs["x"]
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if hf:
        patch = model.config.patch_size
        ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)
        return (h // ph, w // pw), -1, (h, w)
    pe = model.patch_embed
    if getattr(pe, "dynamic_img_size", False) and hasattr(pe, "dynamic_feat_size"):
        grid = tuple(pe.dynamic_feat_size((h, w)))
    else:
        grid = tuple(pe.grid_size)
    return (int(grid[0]), int(grid[1])), int(getattr(model, "num_prefix_tokens", -1)), (h, w)


# --------------------------------------------------------------------------- metadata
def _seq_len(stack: Any, recorder: StackRecorder) -> int:
    if stack.attentions is not None:
        return int(stack.attentions.shape[-1])
    if recorder.rollout_state is not None:
        return int(recorder.rollout_state.shape[-1])
    return int(stack.layer_tensors[0].shape[-1])


def _batch_size(p: _Prepared, stack: Any, recorder: StackRecorder) -> int:
    if p.batch is not None:
        return p.batch
    if p.attention_mask is not None:
        return int(p.attention_mask.shape[0])
    if stack.attentions is not None:
        return int(stack.attentions.shape[1])
    return int(recorder.rollout_state.shape[0])


def _family(model: nn.Module, sites: list[Site], hf: bool) -> str:
    if hf and getattr(model.config, "is_encoder_decoder", False):
        return "encoder-decoder"
    if any(getattr(s.module, "is_causal", False) for s in sites if s.stack == "self"):
        return "decoder"
    return "encoder"


def _model_name(model: nn.Module) -> str:
    name = getattr(model, "probe_name", None)
    if name:
        return str(name)
    cfg = getattr(model, "config", None)
    path = getattr(cfg, "_name_or_path", "") if cfg is not None else ""
    if path:
        return os.path.basename(str(path).rstrip("/")) if os.path.isabs(str(path)) else str(path)
    pretrained = getattr(model, "pretrained_cfg", None) or {}
    if isinstance(pretrained, dict) and pretrained.get("architecture"):
        return str(pretrained["architecture"])
    return type(model).__name__
