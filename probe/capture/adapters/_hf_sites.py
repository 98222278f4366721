"""HuggingFace attention sites: where attention lives in a ``transformers`` model and how
probe intercepts it without leaving a trace.

``transformers`` (v5) attention modules dispatch through
``ALL_ATTENTION_FUNCTIONS[config._attn_implementation]``. During a capture probe registers a
uniquely named attention function (and the matching eager mask builder), points every config
of the model at it, and restores every config and both registries in ``finally``. The function
calls the model's *own* ``eager_attention_forward`` (so T5 position bias, GPT-2 casts, GQA,
soft-capping and sinks are handled by the model's code), which is exactly what
``output_attentions=True`` under eager attention returns. When only some query rows are kept,
SDPA- and eager-loaded models keep their own mask and output and only the kept rows are
computed eagerly (:mod:`probe.capture.adapters._hf_rows`).

Families whose attention is written by hand (DeBERTa, MPNet, BLOOM, Falcon, ...) are sites
too when registered in :mod:`probe.capture.adapters._hf_hand`: probe hooks the model's own
softmax output there instead of routing the call.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from probe._errors import UnsupportedModelError
from probe.capture.adapters._base import Site, StackName, number_sites
from probe.capture.adapters._hf_hand import check_hand_site, hand_attention, intercept_hand
from probe.capture.adapters._hf_shared import call_schedule
from probe.capture.adapters._hf_rows import (
    ROW_IMPLEMENTATIONS,
    eager_rows_mask,
    implementation_function,
    mask_builder,
    take_rows,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture._recorder import StackRecorder

__all__ = ["check_modality", "find_hf_sites", "intercept_hf", "is_hf_model"]

_CROSS_NAMES = {"encoder_attn", "encdecattention", "crossattention", "cross_attn",
                "cross_attention"}
_counter = itertools.count()


# --------------------------------------------------------------------------- discovery
def is_hf_model(model: Any) -> bool:
    return hasattr(model, "config") and type(model).__module__.startswith("transformers.")


def _composite(config: Any) -> bool:
    """A config of several models: a text config with a vision or audio one (CLIP, SigLIP,
    vision-language models such as Gemma 3 or LLaVA)."""
    return getattr(config, "text_config", None) is not None and any(
        getattr(config, k, None) is not None for k in ("vision_config", "audio_config"))


_TOWER_INPUTS = {"pixel_values": "pixel_values", "input_features": "input_features",
                 "input_values": "input_values"}


def check_modality(model: Any) -> None:
    """Refuse, in one line, a speech model (its input is audio: ``input_values`` or
    ``input_features``), and a model made of several models (a text tower with a vision or
    audio one) naming its parts, each of which probe traces on its own.

    Raises:
        UnsupportedModelError: ``model`` takes audio, or its config combines a text config
            with a vision or audio config.
    """
    main = getattr(model, "main_input_name", "")
    if main in ("input_values", "input_features"):
        raise UnsupportedModelError(
            f"{type(model).__name__} is a speech model (its input is audio, {main}): probe "
            "captures text and vision models; audio is not supported yet"
        )
    if not _composite(getattr(model, "config", None)):
        return
    from transformers import PreTrainedModel

    parts: list[tuple[str, Any]] = []
    for name, module in model.named_modules():
        if (name and isinstance(module, PreTrainedModel) and not _composite(module.config)
                and not any(name.startswith(p + ".") for p, _ in parts)):
            parts.append((name, module))
    listing = ", ".join(f"model.{n}: {type(m).__name__}" for n, m in parts)
    calls = " or ".join(
        f"probe.trace(model.{n}, "
        f"{_TOWER_INPUTS.get(getattr(m, 'main_input_name', ''), 'input_ids, tokenizer=...')})"
        for n, m in parts)
    raise UnsupportedModelError(
        f"{type(model).__name__} combines several models"
        + (f" ({listing})" if parts else "")
        + ": probe traces one model at a time, not the joint forward"
        + (f"; trace a part: {calls}" if parts else "; trace its text or vision model alone")
    )


def _calls_attention_interface(module: nn.Module) -> bool:
    forward = getattr(type(module), "forward", None)
    code = getattr(forward, "__code__", None)
    return code is not None and "attention_interface" in code.co_varnames


def _stack_of(name: str, module: Any, encoder_decoder: bool) -> StackName:
    parts = {p.lower() for p in name.split(".")}
    if getattr(module, "is_cross_attention", False) or parts & _CROSS_NAMES:
        return "cross"
    if encoder_decoder and "decoder" in parts:
        return "decoder"
    return "self"


def find_hf_sites(model: nn.Module) -> list[Site]:
    """Attention modules of a HuggingFace model, in model order, assigned to stacks; a module
    the forward runs several times (ALBERT's shared layers) once per call (see
    :mod:`~probe.capture.adapters._hf_shared`). Sites are the modules that dispatch through
    ``ALL_ATTENTION_FUNCTIONS`` and the hand-written ones registered in
    :mod:`~probe.capture.adapters._hf_hand`."""
    encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
    found = [
        (name, m, _stack_of(name, m, encoder_decoder))
        for name, m in model.named_modules()
        if _calls_attention_interface(m) or hand_attention(m) is not None
    ]
    if not found:
        raise UnsupportedModelError(
            f"no attention modules found in {type(model).__name__}: probe supports transformers "
            "v5 models whose attention dispatches through ALL_ATTENTION_FUNCTIONS, and the "
            "families with hand-written attention it lists; open an issue with the model name"
        )
    for _, module, _ in found:
        check_hand_site(module, model)
    return number_sites(call_schedule(model, found))


# --------------------------------------------------------------------------- HuggingFace
def _eager_for(module: nn.Module) -> Callable[..., Any]:
    """The model's own ``eager_attention_forward`` (from the module defining ``forward``)."""
    forward = type(module).forward
    mod = sys.modules.get(getattr(forward, "__module__", ""), None)
    fn = getattr(mod, "eager_attention_forward", None)
    return fn if fn is not None else _generic_eager


def _generic_eager(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain eager attention for modules whose file has no ``eager_attention_forward``."""
    import torch

    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[..., : key.shape[-2]]
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def _dropout_active(module: nn.Module, kwargs: dict[str, Any]) -> bool:
    """Whether this attention call applies dropout (``dropout > 0`` in training mode)."""
    return bool(module.training) and float(kwargs.get("dropout") or 0.0) > 0.0


def _slice_rows(t: Any, start: int, stop: int, q_total: int) -> Any:
    """Rows ``start:stop`` of a ``[..., query, key]`` tensor; broadcast tensors unchanged."""
    import torch

    if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[-2] == q_total:
        return t[..., start:stop, :]
    return t


def _configs_of(model: nn.Module) -> list[Any]:
    """Every config object the model's modules read, sub-configs included (unique)."""
    seen: dict[int, Any] = {}
    # vars(): a module's config is a plain attribute; hasattr would go through
    # nn.Module.__getattr__ and an exception for every module without one
    stack = [getattr(model, "config", None)] + [vars(m).get("config") for m in model.modules()]
    while stack:
        cfg = stack.pop()
        if cfg is None or id(cfg) in seen or not hasattr(cfg, "_attn_implementation_internal"):
            continue
        seen[id(cfg)] = cfg
        for key in getattr(cfg, "sub_configs", {}) or {}:
            stack.append(getattr(cfg, key, None))
    return list(seen.values())


def _all_rows(
    eager: Callable[..., Any],
    module: nn.Module,
    recorder: StackRecorder,
    layer: int,
    chunk_size: int | None,
    query: torch.Tensor,
    key_states: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    kwargs: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every query row through ``eager``, ``chunk_size`` rows at a time; output and weights."""
    import torch

    q_total = query.shape[-2]
    step = chunk_size or q_total
    if step >= q_total or not recorder.wants(layer):
        out, weights = eager(module, query, key_states, value, attention_mask, **kwargs)
        recorder.record(layer, 0, weights, q_total)
        return out, (None if recorder.stream is not None else weights)
    outs = []
    for start in range(0, q_total, step):
        stop = min(start + step, q_total)
        chunk_kwargs = {k: _slice_rows(v, start, stop, q_total) for k, v in kwargs.items()}
        out, weights = eager(
            module,
            query[..., start:stop, :],
            key_states,
            value,
            _slice_rows(attention_mask, start, stop, q_total),
            **chunk_kwargs,
        )
        recorder.record(layer, start, weights, q_total)
        del weights
        outs.append(out)
    return torch.cat(outs, dim=1), None


def _kept_rows(
    impl: str,
    eager: Callable[..., Any],
    module: nn.Module,
    recorder: StackRecorder,
    layer: int,
    rows: tuple[int, ...],
    query: torch.Tensor,
    key_states: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    kwargs: dict[str, Any],
) -> tuple[torch.Tensor, None]:
    """The output from the original implementation ``impl``; eager weights of ``rows`` only."""
    import torch

    q_total = query.shape[-2]
    idx = torch.tensor(rows, dtype=torch.long, device=query.device)
    # the model's own eager forward computes every row: keep the wanted ones. Also with active
    # dropout: SDPA's dropout mask cannot be reproduced, so output and kept weights both come
    # from one eager call (one mask), as in a full capture
    if impl == "eager" or _dropout_active(module, kwargs):
        if impl != "eager":  # the model built an SDPA mask: the eager function needs its own
            every = torch.arange(q_total, device=query.device)
            attention_mask = eager_rows_mask(
                impl, attention_mask, module, query, key_states, every, kwargs.get("is_causal")
            )
        out, weights = eager(module, query, key_states, value, attention_mask, **kwargs)
        recorder.record_rows(layer, rows, weights.index_select(-2, idx), q_total)
        return out, None
    original = implementation_function(impl, eager)
    out = original(module, query, key_states, value, attention_mask, **kwargs)[0]
    mask = eager_rows_mask(
        impl, attention_mask, module, query, key_states, idx, kwargs.get("is_causal")
    )
    row_kwargs = {k: take_rows(v, idx, q_total) for k, v in kwargs.items()}
    if "dropout" in row_kwargs:
        row_kwargs["dropout"] = 0.0  # inactive here (eval mode): never a second dropout draw
    _, weights = eager(
        module, query.index_select(-2, idx), key_states, value, mask, **row_kwargs
    )
    recorder.record_rows(layer, rows, weights, q_total)
    return out, None


@contextmanager
def intercept_hf(
    model: nn.Module,
    sites: list[Site],
    recorders: dict[str, StackRecorder],
    chunk_size: int | None,
) -> Iterator[None]:
    """Route every attention call of ``model`` through probe for the duration of the block.

    Full captures run every attention call through the model's eager function (in chunks of
    ``chunk_size`` query rows). When a recorder keeps only some query rows
    (``recorder.selects_rows``), configs whose implementation is ``"sdpa"`` or ``"eager"``
    keep their own mask builder and output, and only the kept rows are computed eagerly (see
    :mod:`probe.capture.adapters._hf_rows`); other implementations (flash, flex, custom
    kernels) fall back to the chunked eager path and the recorder picks its rows.

    Hand-written sites (:mod:`~probe.capture.adapters._hf_hand`) are hooked where the model
    hands on its softmax; a model with any such site runs in full mode (every config on the
    eager mask, so a module that branches on ``"sdpa"`` takes its eager branch) and its
    recorders pick their rows from whole layers.

    Everything switched is restored in ``finally``: each config's ``_attn_implementation``,
    the entries added to the two registries and the hooks, also when the forward raises.
    """
    from transformers.masking_utils import AttentionMaskInterface, eager_mask
    from transformers.modeling_utils import AttentionInterface

    hand = [s for s in sites if hand_attention(s.module) is not None]
    by_module: dict[int, list[Site]] = {}  # a shared module: one site per call, in order
    for s in sites:
        if hand_attention(s.module) is None:
            by_module.setdefault(id(s.module), []).append(s)
    calls: dict[int, int] = {}

    def site_of(module: nn.Module) -> Site | None:
        """The site of this call of ``module``: the k-th call of a module listed n times is
        its (k mod n)-th site, so a module run more often than listed is caught by the
        recorder's once-per-forward check."""
        listed = by_module.get(id(module))
        if listed is None:
            return None
        k = calls.get(id(module), 0)
        calls[id(module)] = k + 1
        return listed[k % len(listed)]
    base = f"probe_capture_{next(_counter)}"
    selecting = not hand and any(r.selects_rows for r in recorders.values())

    def attention_for(impl: str | None) -> Callable[..., Any]:
        def probe_attention(
            module: nn.Module,
            query: torch.Tensor,
            key_states: torch.Tensor,
            value: torch.Tensor,
            attention_mask: torch.Tensor | None,
            **kwargs: Any,
        ) -> tuple[torch.Tensor, torch.Tensor | None]:
            import torch

            eager = _eager_for(module)
            site = site_of(module)
            args = (query, key_states, value, attention_mask)
            if site is not None and _dropout_active(module, kwargs):
                recorders[site.stack].dropout_active = True
            if impl is None:  # every row through eager: full capture, or the fallback
                if site is None:
                    return eager(module, *args, **kwargs)
                recorder = recorders[site.stack]
                return _all_rows(eager, module, recorder, site.layer, chunk_size, *args, kwargs)
            original = implementation_function(impl, eager)
            if site is None:
                return original(module, *args, **kwargs)
            recorder = recorders[site.stack]
            q_total = query.shape[-2]
            if not recorder.wants(site.layer):  # count the call; no weights are needed
                empty = query.new_empty((*query.shape[:2], 0, key_states.shape[-2]))
                recorder.record(site.layer, 0, empty, q_total)
                return original(module, *args, **kwargs)
            rows = recorder.wanted_rows(site.layer, q_total)
            if rows is not None:
                return _kept_rows(impl, eager, module, recorder, site.layer, rows, *args, kwargs)
            if impl != "eager":  # this stack keeps every row: eager on the converted mask
                every = torch.arange(q_total, device=query.device)
                mask = eager_rows_mask(
                    impl, attention_mask, module, query, key_states, every, kwargs.get("is_causal")
                )
                args = (query, key_states, value, mask)
            return _all_rows(eager, module, recorder, site.layer, chunk_size, *args, kwargs)

        return probe_attention

    configs = _configs_of(model)
    previous = [(cfg, cfg._attn_implementation_internal) for cfg in configs]
    modes: dict[str, str | None] = {}
    assigned = []
    for cfg, impl in previous:
        mode = impl if selecting and impl in ROW_IMPLEMENTATIONS else None
        key = base if mode is None else f"{base}_{mode}"
        modes[key] = mode
        assigned.append((cfg, key))
    try:
        for key, mode in modes.items():
            AttentionInterface._global_mapping[key] = attention_for(mode)
            AttentionMaskInterface._global_mapping[key] = (
                eager_mask if mode is None else mask_builder(mode)
            )
        for cfg, key in assigned:
            cfg._attn_implementation_internal = key
        with intercept_hand(hand, recorders):
            yield
    finally:
        for cfg, value in previous:
            cfg._attn_implementation_internal = value
        for key in modes:
            AttentionInterface._global_mapping.pop(key, None)
            AttentionMaskInterface._global_mapping.pop(key, None)
