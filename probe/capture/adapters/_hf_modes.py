"""Generation modes and ``generate`` arguments that :func:`probe.generate` refuses up front.

``transformers`` 5 moved DoLa, contrastive search and constrained beam search to code it
loads from the Hub (``custom_generate``), and fails deep inside ``generate`` on arguments of
the wrong kind (a processor that is not a list, a forced token outside the scores, a
``past_key_values`` that is not a cache). Each is named here, before any forward pass, with
the fix (``tests/test_odd_inputs_hunt3.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._text import short_repr

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_arguments", "check_modes", "check_token_options"]

#: token-id options ``generate`` uses as an index (into the scores or the decoder embedding)
_INDEXED = ("forced_bos_token_id", "forced_eos_token_id", "decoder_start_token_id")
#: KV caches that keep every key as the model computed it (the others drop, pad or quantize)
_FULL_CACHES = ("dynamic", "offloaded")
#: forward inputs probe prepares from ``inputs`` (and records the mask of)
_PREPARED = ("input_ids", "attention_mask", "inputs_embeds")
#: token-id options that may be one id or a list of ids
_TOKEN_OPTIONS = ("eos_token_id", "pad_token_id", "bos_token_id") + _INDEXED


def _setting(model: nn.Module, kwargs: dict[str, Any], name: str) -> tuple[Any, str]:
    """The value ``generate`` would use and ``name=value (where)`` for the message."""
    if name in kwargs:
        return kwargs[name], f"{name}={short_repr(kwargs[name])} (passed to generate)"
    passed = kwargs.get("generation_config")
    config = passed if passed is not None else getattr(model, "generation_config", None)
    where = "the model's generation_config" if passed is None else "the generation_config passed"
    value = getattr(config, name, None)
    return value, f"{name}={short_repr(value)} (from {where})"


def check_modes(model: nn.Module, kwargs: dict[str, Any]) -> None:
    """Refuse decoding modes that are not one new token per batch item per step."""
    custom = kwargs.get("custom_generate")
    if custom is not None:
        raise ProbeError(
            f"custom_generate={short_repr(custom)} replaces generate's decoding loop, whose "
            "steps probe cannot place: drop it (greedy or do_sample=True)"
        )
    mtp, text = _setting(model, kwargs, "use_mtp")
    if mtp:
        raise ProbeError(f"{text} asks for multi-token prediction, which feeds several tokens "
                         "per step and is not supported by probe.generate: drop it")
    for name, mode in (("dola_layers", "DoLa decoding"), ("constraints", "constrained beam "
                       "search"), ("force_words_ids", "constrained beam search")):
        value, text = _setting(model, kwargs, name)
        if value is not None:
            raise ProbeError(f"{text} asks for {mode}, which transformers loads from the Hub "
                             "and probe.generate does not support: drop it")
    guidance, text = _setting(model, kwargs, "guidance_scale")
    if guidance is not None and guidance != 1:
        raise ProbeError(f"{text} asks for classifier-free guidance, which runs a second, "
                         "unconditional forward pass at every step and is not supported by "
                         "probe.generate: drop it (or pass guidance_scale=1.0)")
    cache, text = _setting(model, kwargs, "cache_implementation")
    if isinstance(cache, str) and cache not in _FULL_CACHES and cache in _known_caches():
        raise ProbeError(f"{text} keeps a fixed-size, windowed or quantized KV cache whose keys "
                         "probe cannot place: drop it (or pass cache_implementation='dynamic')")
    if cache == "offloaded" and not _on_cuda(model):
        raise ProbeError(f"{text} moves the cache between a CUDA device and the CPU, and this "
                         "model does not run on CUDA: drop it (or pass "
                         "cache_implementation='dynamic')")
    alpha, text = _setting(model, kwargs, "penalty_alpha")
    top_k, _ = _setting(model, kwargs, "top_k")
    sampling, _ = _setting(model, kwargs, "do_sample")
    if (not sampling and isinstance(alpha, (int, float)) and alpha > 0
            and isinstance(top_k, int) and top_k > 1):
        raise ProbeError(f"{text} with top_k={top_k} asks for contrastive search, which "
                         "transformers loads from the Hub and probe.generate does not support: "
                         "drop penalty_alpha")


def _on_cuda(model: nn.Module) -> bool:
    """Whether a parameter of ``model`` lives on a CUDA device (what an offloaded cache needs)."""
    return any(p.device.type == "cuda" for p in model.parameters())


def _known_caches() -> tuple[str, ...]:
    """transformers' cache names (an unknown one is left to its own message)."""
    try:
        from transformers.generation.configuration_utils import ALL_CACHE_IMPLEMENTATIONS
    except ImportError:  # another transformers: name the ones of version 5
        return ("static", "offloaded_static", "sliding_window", "hybrid", "hybrid_chunked",
                "offloaded_hybrid", "offloaded_hybrid_chunked", "quantized")
    return tuple(ALL_CACHE_IMPLEMENTATIONS) + ("paged",)


def check_arguments(model: nn.Module, kwargs: dict[str, Any], has_tokenizer: bool) -> None:
    """Refuse ``generate`` arguments of a kind ``transformers`` fails on deep inside."""
    config = kwargs.get("generation_config")
    if config is not None and not hasattr(config, "get_generation_mode"):
        raise ProbeError(
            f"generation_config= must be a transformers GenerationConfig, got "
            f"{type(config).__name__}: pass GenerationConfig(**options) or the options as "
            "keywords"
        )
    for name, kind in (("logits_processor", "LogitsProcessorList"),
                       ("stopping_criteria", "StoppingCriteriaList")):
        value = kwargs.get(name)
        if value is not None and not isinstance(value, (list, tuple)):
            raise ProbeError(
                f"{name}= must be a list of callables (a transformers {kind}), got "
                f"{type(value).__name__}: wrap it in a list, {name}=[...]"
            )
        odd = [item for item in value or () if not callable(item)]
        if odd:
            raise ProbeError(
                f"{name}= holds {short_repr(odd[0])} ({type(odd[0]).__name__}), which is not "
                f"callable: pass transformers {kind.replace('List', '')} objects (or functions "
                "of (input_ids, scores))"
            )
    if kwargs.get("past_key_values") is not None:
        raise ProbeError(
            "past_key_values= starts generation from a cache whose keys probe did not see: "
            "drop it and pass the whole prompt"
        )
    for name in _PREPARED:
        if name in kwargs:
            raise ProbeError(
                f"{name}= passed to generate would bypass probe's inputs: put it in the inputs "
                "themselves, probe.generate(model, {'input_ids': ids, 'attention_mask': mask})"
            )
    streamer = kwargs.get("streamer")
    if streamer is not None and not (callable(getattr(streamer, "put", None))
                                     and callable(getattr(streamer, "end", None))):
        raise ProbeError(
            f"streamer= must have put() and end() methods (a transformers TextStreamer or "
            f"BaseStreamer), got {type(streamer).__name__}: pass TextStreamer(tokenizer) or drop it"
        )
    if kwargs.get("synced_gpus"):
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ProbeError("synced_gpus=True needs a torch.distributed process group, and none "
                             "is initialised in this process: drop it")
    decay = kwargs.get("exponential_decay_length_penalty")
    if decay is not None and not (isinstance(decay, (tuple, list)) and len(decay) == 2):
        raise ProbeError(f"exponential_decay_length_penalty={short_repr(decay)} (passed to "
                         "generate) must "
                         "be a pair (start_index, decay_factor), e.g. (10, 1.05)")
    stops, text = _setting(model, kwargs, "stop_strings")
    if stops and not has_tokenizer:
        raise ProbeError(f"{text} needs the tokenizer: pass tokenizer=... to probe.generate")


def _vocab(model: nn.Module) -> int | None:
    head = getattr(model, "get_output_embeddings", None)
    layer = head() if callable(head) else None
    weight = getattr(layer, "weight", None)
    if weight is not None and getattr(weight, "dim", lambda: 0)() == 2:
        return int(weight.shape[0])
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    return size if isinstance(size, int) else None


def check_token_options(model: nn.Module, kwargs: dict[str, Any]) -> None:
    """Token-id options: integers (or lists of them), and in the vocabulary where indexed."""
    vocab = _vocab(model)
    for name in _TOKEN_OPTIONS:
        value, text = _setting(model, kwargs, name)
        if value is None:
            continue
        if hasattr(value, "tolist") and not _floating(value):
            value = value.tolist()  # a tensor or numpy array/integer of ids, as transformers
        ids = list(value) if isinstance(value, (list, tuple)) else [value]
        ids = [_token_id(i) for i in ids]
        if any(i is None for i in ids):
            raise ProbeError(f"{text} is not a token id: pass an integer id (the tokenizer's "
                             "convert_tokens_to_ids gives it)")
        # eos/pad given here (not the model's config, which tiny models copy from GPT-2)
        # outside the vocabulary: generation never stops, or pads finished rows with it
        checked = name in _INDEXED or (name in kwargs and name != "bos_token_id")
        if checked and vocab is not None and any(not 0 <= i < vocab for i in ids):
            raise ProbeError(f"{text} is outside the vocabulary of {type(model).__name__} "
                             f"(ids 0..{vocab - 1}): pass an id of this model's tokenizer")
    for name in ("bad_words_ids", "sequence_bias"):
        value, text = _setting(model, kwargs, name)
        if value is None or vocab is None:
            continue
        ids = _biased_ids(value)
        bias = _odd_bias(value) if name == "sequence_bias" else None
        if bias is not None:
            raise ProbeError(f"{text}: the bias {short_repr(bias)} must be a Python float "
                             f"(transformers takes no other number): write {float(bias)!r}")
        outside = sorted(i for i in ids if isinstance(i, int) and not 0 <= i < vocab)
        if outside:
            raise ProbeError(f"{text}: token id {outside[0]} is outside the vocabulary of "
                             f"{type(model).__name__} (ids 0..{vocab - 1}); pass ids of this "
                             "model's tokenizer")


def _floating(value: Any) -> bool:
    """A float tensor or numpy array/scalar (whose values are no token ids)."""
    test = getattr(value, "is_floating_point", None)
    if callable(test):
        return bool(test())
    kind = getattr(getattr(value, "dtype", None), "kind", "")
    return kind in ("f", "c")


def _token_id(value: Any) -> int | None:
    """``value`` as a token id (a Python or numpy integer, not a bool), else ``None``."""
    import operator

    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _biased_ids(value: Any) -> list[Any]:
    """Token ids in ``bad_words_ids`` (``[[ids], ...]``) or ``sequence_bias`` (``{(ids): bias}``
    or ``[[[ids], bias], ...]``); other shapes are left to transformers' own check."""
    if isinstance(value, dict):
        groups: list[Any] = list(value)
    elif isinstance(value, (list, tuple)):
        groups = [g[0] if _bias_pair(g) else g for g in value]
    else:
        return []
    return [i for g in groups if isinstance(g, (list, tuple)) for i in g]


def _bias_pair(group: Any) -> bool:
    """Whether ``group`` is ``[[ids], bias]`` of ``sequence_bias``'s list form."""
    return (isinstance(group, (list, tuple)) and len(group) == 2
            and isinstance(group[0], (list, tuple))
            and not isinstance(group[1], (list, tuple, bool)))


def _odd_bias(value: Any) -> Any:
    """The first bias of ``sequence_bias`` that is a number but no Python float (an int such
    as ``-100`` reads as a token id in transformers' list form), else ``None``."""
    if isinstance(value, dict):
        biases = list(value.values())
    elif isinstance(value, (list, tuple)):
        biases = [g[1] for g in value if _bias_pair(g)]
    else:
        return None
    odd = [b for b in biases if not isinstance(b, (float, bool))
           and (_token_id(b) is not None or _floating(b))]
    return odd[0] if odd else None
