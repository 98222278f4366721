"""``probe.trace``: run a model once and capture its attention into a :class:`Trace`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError
from probe._index import in_range, is_flag, is_int, is_real
from probe.capture._autograd import require_autograd
from probe.capture._inference import usable_outside_inference
from probe.capture._locks import model_lock
from probe.capture._recorder import (
    CaptureOptions,
    StackRecorder,
    StreamOptions,
    check_unique,
    unshare_outputs,
)
from probe.capture._row_recorder import RowRecorder, check_query_rows, resolve_query_rows
from probe.capture._trace import Trace, stored_attentions
from probe.capture._train_mode import warn_if_dropout
from probe.capture._weights import require_weights
from probe.capture._windows import trace_windows
from probe.capture.adapters import Prepared, Site, adapter_for

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["trace"]

_FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


def trace(
    model: nn.Module,
    inputs: Any = None,
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
    query_rows: int | Sequence[int] | slice | range | None = None,
    model_name: str | None = None,
    device: torch.device | str | None = None,
    **forward_kwargs: Any,
) -> Trace:
    """Run ``model`` on ``inputs`` once and capture every attention map exactly.

    Works on HuggingFace ``transformers`` models whatever ``attn_implementation`` they were
    loaded with (SDPA, eager, ...) and on timm vision transformers with fused attention on.
    The captured weights equal ``output_attentions=True`` under eager attention (HF) or the
    unfused ``softmax(q k^T * scale)`` (timm); the model's outputs are unchanged to float
    precision, and the model is left exactly as it was (configs, flags, hooks), also when the
    forward raises. HF families whose attention is written by hand (DeBERTa, MPNet, BLOOM,
    Falcon, ...: :mod:`probe.capture.adapters._hf_hand`) are recorded from the tensor their own
    softmax hands on, one whole layer at a time (``chunk_size`` does not split them;
    ``query_rows`` picks its rows from the whole layer).

    Args:
        model: a HuggingFace ``PreTrainedModel`` or a timm model.
        inputs: text models: a string, a list of strings (needs ``tokenizer``), a tokenizer
            output / mapping of forward keyword arguments, or an ``input_ids`` tensor
            ``[batch, seq]``. Vision models: ``pixel_values`` ``[batch, channel, height, width]``
            (also as the keyword ``pixel_values=``; image-to-text models take the decoder's
            ids as ``decoder_inputs=`` or ``decoder_input_ids=``).
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
        query_rows: keep only these query rows of the main stack (``trace.attentions``: the
            encoder of encoder-decoders): an int, a list of ints (negative counts from the end,
            ``-1`` is the last token) or a slice. ``attentions`` becomes ``[layer, batch,
            head, rows, key]`` and ``trace.query_indices`` names the rows; memory grows with
            ``rows x seq`` instead of ``seq^2``. On HF models loaded with SDPA the output comes
            from SDPA itself (bitwise unchanged) and only the kept rows are computed eagerly;
            eager-loaded models compute every row as their own forward does and keep the
            selected ones; other implementations (flash attention) fall back to the chunked
            eager path (``chunk_size``), and timm models keep the rows of their unfused
            attention. Rows index the (padded) sequence, the same for every batch item;
            padded query rows are zero as in full captures. Not with ``stream=True`` (the
            rollout needs every row) nor ``requires_grad=True`` (the kept rows are computed
            beside the model's own attention); analyses of the whole matrix (rollout, flow,
            relevance, ...) refuse a row-selected trace.
        model_name: name recorded in the trace (default: the model's own name).
        device: where the captured attention is gathered (``"cpu"``, ``"cuda:0"``, ...). Each
            layer's attention is recorded on the device that layer runs on, then copied here;
            the model is never moved. Default: the device of the first recorded layer's
            attention (for a model on one device, that device; for a model dispatched by
            ``accelerate`` over several devices or with CPU/disk offload, the execution device
            of its first attention layer). ``"cpu"`` keeps accelerator memory free.
        **forward_kwargs: passed to the model's forward. A name that is neither a parameter of
            the forward nor close to one of probe's own options raises :class:`ProbeError`
            (naming the closest valid option); when the forward takes ``**kwargs`` (most
            ``transformers`` models) other names pass through, but a near-miss of a probe
            option (``average_head=True``) still raises.

    Threads: captures and gradient methods on the same model run one at a time (a re-entrant
    lock per model); captures on different models run in parallel.

    Windowed attention (Swin, timm and HF): each block's windows ``[batch * windows, head, N,
    N]`` go to ``trace.windows`` (:class:`~probe.capture._windows.WindowBlock`, with the
    geometry to map them back to image tokens); reading ``trace.attentions`` raises, as
    blocks of different stages do not stack. Only ``layers``, ``dtype``, ``device`` and
    ``model_name`` apply.

    Training mode: with attention dropout active the weights are recorded after dropout (what
    the model used; random, rows not summing to 1), also with ``query_rows`` (such layers then
    run eagerly on every row), and one ``UserWarning`` per call says to call ``model.eval()``.

    Returns:
        A frozen :class:`Trace`; ``trace.output`` holds the model's output.

    Raises:
        ProbeError: bad inputs or options (the message says how to fix them).
        UnsupportedModelError: no attention module probe can capture.
    """
    import torch

    inputs = usable_outside_inference(inputs)
    decoder_inputs = usable_outside_inference(decoder_inputs)
    options = _options(
        layers, heads, average_heads, dtype, requires_grad, stream, head_fusion,
        discard_ratio, start_layer, chunk_size, device,
    )
    check_model_name(model_name)
    if query_rows is not None:
        _check_query_rows(query_rows, stream, requires_grad)
    if requires_grad:
        require_autograd("probe.trace(..., requires_grad=True)")
    adapter = adapter_for(model)
    require_weights(model, "probe.trace")
    if inputs is None and adapter.main_key in forward_kwargs:  # trace(model, pixel_values=x)
        inputs = usable_outside_inference(forward_kwargs.pop(adapter.main_key))
    if inputs is None:
        raise ProbeError(f"probe.trace needs the model's inputs: probe.trace(model, inputs) "
                         f"(or {adapter.main_key}=...)")
    _check_forward_kwargs(adapter, forward_kwargs)
    if getattr(adapter, "windowed", False):  # Swin: blocks of windows, see _windows.py
        return trace_windows(adapter, inputs, options, query_rows=query_rows,
                             model_name=model_name, forward_kwargs=forward_kwargs)
    sites = adapter.sites()
    vision = adapter.modality == "vision"
    prepared = adapter.prepare(
        inputs, tokenizer=tokenizer, decoder_inputs=decoder_inputs, forward_kwargs=forward_kwargs
    )
    stacks = _stack_sizes(sites, model)
    for kind, names in stacks.items():  # layers= applies to every stack: valid in each
        _check_layers(options, names, start_layer, stream, kind)
    if options.stream is not None:
        n = len(stacks["self"])
        options = replace(options, stream=replace(options.stream, start_layer=start_layer % n))

    geometry = adapter.vision_geometry(prepared.main) if vision else None
    main_mask = prepared.attention_mask
    recorders: dict[str, StackRecorder] = {}
    if query_rows is not None:
        if prepared.input_ids is not None:  # vision: the token count is known at the first layer
            resolve_query_rows(query_rows, int(prepared.input_ids.shape[-1]))
        recorders["self"] = RowRecorder(
            "self", stacks["self"], options, main_mask, main_mask, query_rows
        )
    else:
        recorders["self"] = StackRecorder(
            "self", stacks["self"], options, key_mask=main_mask, query_mask=main_mask,
            num_prefix_tokens=geometry.num_prefix_tokens if geometry else 0, stream=stream,
            grid_tokens=(geometry.grid[0] * geometry.grid[1] + geometry.num_suffix_tokens
                         if geometry else 0),
        )
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
    with model_lock(adapter.model), adapter.intercept(sites, recorders, chunk), grad_context:
        output = adapter.run(prepared)

    main = recorders["self"]
    if not main.called:
        raise UnsupportedModelError(
            f"no attention was recorded during the forward pass of {type(model).__name__}: its "
            "attention modules were not called through a path probe intercepts"
        )
    warn_if_dropout(recorders.values(), "probe.trace")
    stack = main.finish()
    decoder = recorders["decoder"].finish() if "decoder" in recorders and not stream else None
    cross = recorders["cross"].finish() if "cross" in recorders and not stream else None
    unshare_outputs(output, [stack, decoder, cross])

    seq_len = _seq_len(stack, main)
    batch = _batch_size(prepared, stack, main)
    attention_mask = main_mask if main_mask is not None else torch.ones(
        batch, seq_len, dtype=torch.bool)
    special = prepared.special_tokens_mask
    grid = image_size = None
    num_prefix = num_suffix = 0
    if geometry is not None:
        grid, num_prefix = geometry.grid, geometry.num_prefix_tokens
        image_size, num_suffix = geometry.image_size, geometry.num_suffix_tokens
        if num_prefix < 0 or num_prefix + grid[0] * grid[1] + num_suffix != seq_len:
            num_prefix = seq_len - grid[0] * grid[1] - num_suffix
            if num_prefix < 0:
                raise UnsupportedModelError(
                    f"cannot map {seq_len} tokens onto a {grid[0]}x{grid[1]} patch grid; this "
                    "vision model's token layout is not supported yet"
                )
        special = torch.zeros(batch, seq_len, dtype=torch.bool)
        special[:, :num_prefix] = True
        special[:, seq_len - num_suffix:] = True
    if special is None:
        special = torch.zeros(batch, seq_len, dtype=torch.bool)

    return Trace(
        attentions=stored_attentions(stack),  # type: ignore[arg-type]
        layer_names=stack.layer_names,
        layer_indices=stack.layer_indices,
        head_indices=stack.head_indices,
        model_name=model_name or adapter.name,
        family=adapter.family,
        attention_mask=(
            attention_mask.to(torch.bool).cpu() if attention_mask.device.type != "cpu"
            else attention_mask.to(torch.bool)
        ),
        special_tokens_mask=special.to(torch.bool).cpu(),
        num_prefix_tokens=num_prefix,
        num_suffix_tokens=num_suffix,
        tokens=prepared.tokens,
        words=prepared.words,
        word_ids=prepared.word_ids,
        token_spans=prepared.token_spans,
        grid=grid,
        image_size=image_size,
        decoder=decoder,
        cross=cross,
        decoder_tokens=prepared.decoder_tokens,
        byte_level=prepared.byte_level,
        unk_token=prepared.unk_token,
        rollout_result=main.rollout_state if stream else None,
        rollout_options=options.stream.as_dict() if options.stream else None,
        output=output,
        layer_tensors=stack.layer_tensors,
        input_ids=prepared.input_ids,
        pixel_values=prepared.pixel_values,
        num_heads=main.num_heads,
        num_model_layers=len(stacks["self"]),
        query_indices=stack.query_indices,
    )


# --------------------------------------------------------------------------- options
def _check_dtype(dtype: Any) -> Any:
    """``dtype`` (a floating ``torch.dtype``, its name, or ``None``) as a ``torch.dtype`` or
    ``None``; anything else raises."""
    import torch

    if isinstance(dtype, str):
        if dtype not in _FLOAT_DTYPES:
            raise ProbeError(f"dtype {dtype!r} is not supported: use one of {list(_FLOAT_DTYPES)}")
        dtype = getattr(torch, dtype)
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise ProbeError(
            f"dtype must be a floating torch dtype such as torch.float16, got {dtype!r}")
    return dtype


def check_model_name(model_name: Any) -> None:
    """``model_name=``: a string (recorded as the model's name) or ``None`` (its own name)."""
    if model_name is not None and not isinstance(model_name, str):
        raise ProbeError(
            f"model_name must be a string (the name recorded for the model) or None for the "
            f"model's own, got {model_name!r} ({type(model_name).__name__}): pass "
            f"model_name={str(model_name)!r}"
        )


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
    device: Any = None,
) -> CaptureOptions:
    def ints(name: str, value: Sequence[int] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        if is_int(value):  # 2 or np.int64(2): that one index
            value = [value]
        if not isinstance(value, (list, tuple, range, set, frozenset)) or not all(
            is_int(v) for v in value  # numpy integers count (list(np.arange(2)))
        ):
            raise ProbeError(f"{name} must be a list of integers, got {value!r}")
        if len(value) == 0:
            raise ProbeError(f"{name} is empty: pass None to keep all {name}")
        value = tuple(int(v) for v in value)
        check_unique(name, value, value)
        return value

    for name, flag in (("average_heads", average_heads), ("requires_grad", requires_grad),
                       ("stream", stream)):
        if not is_flag(flag):  # np.True_ counts
            # average_heads="no" averaged and requires_grad=None captured without gradients
            raise ProbeError(f"{name} must be True or False, got {flag!r}")
    dtype = _check_dtype(dtype)
    if not is_int(start_layer):
        raise ProbeError(f"start_layer must be an integer layer index, got {start_layer!r}")
    start_layer = int(start_layer)
    stream_options = None
    if not stream:  # they only shape the rollout stream=True folds during the capture
        for name, value, default in (("head_fusion", head_fusion, "mean"),
                                     ("discard_ratio", discard_ratio, 0.0),
                                     ("start_layer", start_layer, 0)):
            same = value == default if isinstance(default, str) else (
                is_real(value) and value == default)
            if not same:
                raise ProbeError(
                    f"{name}={value!r} applies only with stream=True (the rollout folded "
                    f"during the capture): pass stream=True, or drop it and give it to "
                    f"probe.rollout(trace, {name}=...)"
                )
    if stream:
        from probe.analysis._fusion import check_head_fusion

        check_head_fusion(head_fusion)
        if not is_real(discard_ratio) or not 0.0 <= discard_ratio < 1.0:
            raise ProbeError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
        if layers is not None:
            raise ProbeError(
                "stream=True folds every layer into the rollout: drop layers=..., use start_layer"
            )
        if requires_grad:
            raise ProbeError(
                "stream=True keeps no attention, so it cannot be combined with requires_grad")
        stream_options = StreamOptions(head_fusion, float(discard_ratio), int(start_layer))
    if chunk_size is not None and (not is_int(chunk_size) or chunk_size < 1):
        raise ProbeError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    gather = _gather_device(device)
    return CaptureOptions(
        layers=ints("layers", layers),
        heads=ints("heads", heads),
        average_heads=bool(average_heads),
        dtype=dtype,
        requires_grad=bool(requires_grad),
        stream=stream_options,
        chunk_size=None if chunk_size is None else int(chunk_size),
        device=gather,
    )


def _check_query_rows(query_rows: Any, stream: bool, requires_grad: bool) -> None:
    check_query_rows(query_rows)
    if stream:
        raise ProbeError(
            "stream=True folds every query row into the rollout: drop query_rows (or stream)"
        )
    if requires_grad:
        raise ProbeError(
            "query_rows computes the kept rows beside the model's own attention, so they carry "
            "no gradient: drop query_rows to capture with requires_grad=True"
        )


def _gather_device(device: Any) -> torch.device | None:
    """``device=`` of :func:`trace` as a ``torch.device`` (``None``: the first layer's)."""
    import torch

    if device is None:
        return None
    try:
        gather = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ProbeError(
            f"device must name a torch device such as 'cpu' or 'cuda:0', got {device!r}"
        ) from None
    if gather.type == "meta":
        raise ProbeError("device='meta' holds no data: gather the attention on 'cpu' or a GPU")
    try:
        torch.empty(0, device=gather)  # no CUDA here, an ordinal past the count, no MPS ...
    except (RuntimeError, AssertionError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        reason = reason.split(". ")[0].rstrip(".")  # its first sentence
        raise ProbeError(
            f"device={str(device) if isinstance(device, str) else str(gather)!r} is not usable "
            f"here: {reason}; gather on 'cpu' or a device torch sees"
        ) from None
    return gather


def _check_forward_kwargs(adapter: Any, forward_kwargs: dict[str, Any]) -> None:
    """Every extra keyword must be a forward parameter; near-misses of probe options never are."""
    if not forward_kwargs:
        return
    import difflib
    import inspect

    skip = ("model", "inputs", "forward_kwargs")
    own = [n for n in inspect.signature(trace).parameters if n not in skip]
    named, var_kw = adapter.forward_parameters()
    what = f"{type(adapter.model).__name__}.forward"
    for name in forward_kwargs:
        _check_not_an_input(adapter, name)
        if name in named:
            continue
        if name == "forward_kwargs":
            value = forward_kwargs[name]
            keys = ", ".join(f"{k}=..." for k in value) if isinstance(value, dict) else "..."
            raise ProbeError(
                "probe.trace takes the model's keyword arguments directly: write "
                f"probe.trace(model, inputs, {keys}) instead of forward_kwargs={{...}}"
            )
        close_own = difflib.get_close_matches(name, own, n=1, cutoff=0.75)
        if var_kw and not close_own:
            continue  # the forward takes **kwargs: let the model judge it
        if var_kw:
            raise ProbeError(
                f"unknown option {name!r}: not a probe.trace option and too close to "
                f"{close_own[0]!r} to pass on to {what}(**kwargs); did you mean {close_own[0]!r}?"
            )
        close = close_own or difflib.get_close_matches(name, sorted(named), n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]!r}?" if close else
                f"drop it (probe.trace options: {', '.join(own)}; {what} keywords: "
                f"{', '.join(sorted(named)) or 'none'})")
        raise ProbeError(
            f"unknown option {name!r}: it is neither a probe.trace option nor a keyword {what} "
            f"takes; {hint}"
        )


#: inputs a text adapter reads from ``inputs`` itself (to check them and to record the padding):
#: given as forward keywords they reached the model behind the trace's back
_TEXT_INPUTS = ("input_ids", "inputs_embeds", "attention_mask", "token_type_ids",
                "decoder_input_ids", "decoder_attention_mask")


def _check_not_an_input(adapter: Any, name: str) -> None:
    """A forward keyword that repeats an input probe prepares (``attention_mask=`` beside bare
    ids) is refused: the model saw it, while the trace's mask and checks did not."""
    if name == adapter.main_key:
        raise ProbeError(
            f"{name}= repeats the inputs: pass it as the inputs, probe.trace(model, {name}), "
            "not as a keyword"
        )
    if adapter.modality != "text" or name not in _TEXT_INPUTS:
        return
    if name in ("decoder_input_ids", "decoder_attention_mask"):
        raise ProbeError(
            f"{name}= is read from the inputs, not from a keyword: pass "
            "decoder_inputs=decoder_input_ids, or both in the inputs mapping, "
            "probe.trace(model, {'input_ids': ..., 'decoder_input_ids': ..., "
            "'decoder_attention_mask': ...})"
        )
    raise ProbeError(
        f"{name}= is read from the inputs, not from a keyword (probe checks it and records the "
        f"padding from it): pass it in the inputs mapping, probe.trace(model, {{'input_ids': "
        f"ids, {name!r}: {name}}})"
    )


def _stack_sizes(sites: list[Site], model: Any = None) -> dict[str, list[str]]:
    stacks: dict[str, list[str]] = {}
    for s in sites:
        stacks.setdefault(s.stack, []).append(s.name)
    if "self" not in stacks:
        name = type(model).__name__ if model is not None else "the model"
        found = " and ".join(f"{k} ({len(v)})" for k, v in stacks.items())
        raise UnsupportedModelError(
            f"no encoder self-attention found in {name} (only {found} attention modules): its "
            "encoder attention neither dispatches through transformers' ALL_ATTENTION_FUNCTIONS "
            "nor is one of the hand-written attentions probe hooks; open an issue with the model "
            "name"
        )
    return stacks


def _check_layers(
    options: CaptureOptions, names: list[str], start_layer: int, stream: bool, kind: str = "self"
) -> None:
    n = len(names)
    what = {"self": "the model", "decoder": "the decoder", "cross": "the cross-attention"}[kind]
    for layer in options.layers or ():
        in_range(layer, n, owner=what)
    if options.layers:
        check_unique("layers", options.layers, tuple(layer % n for layer in options.layers))
    if stream:
        in_range(start_layer, n, name="start_layer")


# --------------------------------------------------------------------------- metadata
def _seq_len(stack: Any, recorder: StackRecorder) -> int:
    stored = stored_attentions(stack)
    if stored is not None:
        return int(stored.shape[-1])
    if recorder.rollout_state is not None:
        return int(recorder.rollout_state.shape[-1])
    return int(stack.layer_tensors[0].shape[-1])


def _batch_size(p: Prepared, stack: Any, recorder: StackRecorder) -> int:
    if p.batch is not None:
        return p.batch
    if p.attention_mask is not None:
        return int(p.attention_mask.shape[0])
    stored = stored_attentions(stack)
    if stored is not None:
        return int(stored.shape[1])
    return int(recorder.rollout_state.shape[0])
