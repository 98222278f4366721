"""``probe.generate``: let a model generate as users call it and record attention at every step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError
from probe._index import is_flag, is_int
from probe._text import with_article
from probe.capture._capture import _check_layers, _options, _stack_sizes, check_model_name
from probe.capture._gen_recorder import GenerationRecorder
from probe.capture._generation_trace import GenerationTrace
from probe.capture._locks import model_lock
from probe.capture._recorder import StackRecorder, unshare_outputs
from probe.capture._trace import AttentionStack
from probe.capture._train_mode import warn_if_dropout
from probe.capture._weights import require_weights
from probe.capture.adapters import adapter_for

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["generate"]


def generate(
    model: nn.Module,
    inputs: Any,
    *,
    tokenizer: Any = None,
    max_new_tokens: int | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    average_heads: bool = False,
    dtype: torch.dtype | str | None = None,
    keep_prompt: bool = True,
    chunk_size: int | None = None,
    model_name: str | None = None,
    **generate_kwargs: Any,
) -> GenerationTrace:
    """Run ``model.generate(...)`` with the KV cache on and capture attention at every step.

    The model generates exactly as without probe (same tokens, greedy or sampling with the
    same seed); every attention call is routed through the model's own eager attention, so
    the captured rows equal one teacher-forced eager forward (``output_attentions=True``)
    over the prompt and the generated tokens. The model, its configs and ``transformers``'
    registries are left as they were, also when generation raises.

    Args:
        model: a HuggingFace decoder (GPT-2, Llama, ...) or encoder-decoder (T5, BART,
            Marian, ...) with its language-model head, or an image-to-text
            ``VisionEncoderDecoderModel`` (then ``inputs`` are ``pixel_values`` ``[batch,
            channel, height, width]``, generation starts from the decoder start token, and the
            result's ``source_grid`` / ``source_prefix_tokens`` place the cross-attention keys
            on the image's patch grid).
        inputs: a string, a list of strings (with ``tokenizer``; decoder-only batches need
            ``tokenizer.padding_side == "left"``), a tokenizer output or ``input_ids``
            ``[batch, prompt]``.
        tokenizer: HF tokenizer, to encode text and to name tokens and words.
        max_new_tokens: tokens to generate at most; default: the ``max_new_tokens`` of a
            ``generation_config=`` passed, else 20. ``max_length=`` is refused (it would be
            overridden): count new tokens instead.
        layers, heads, average_heads, dtype: as in :func:`probe.trace` (every stack).
        keep_prompt: keep the prompt's own attention rows of the first step (``P x P`` per
            head and layer). ``False`` keeps only the generated rows, so a long prompt costs
            ``generated x P`` memory instead of ``P^2``: on models loaded with SDPA each step's
            output comes from SDPA itself (bitwise as without probe) and only the last query
            row is computed eagerly; eager-loaded models compute the prompt rows as their own
            forward does; other implementations (flash attention) fall back to eager attention
            in chunks of ``chunk_size`` rows.
        chunk_size: compute eagerly computed attention this many query rows at a time (results
            identical); irrelevant to the rows computed alone with ``keep_prompt=False``.
        model_name: name recorded in the result (default: the model's own name).
        **generate_kwargs: passed to ``model.generate`` (``do_sample``, ``temperature``,
            ``top_k``, ``eos_token_id``, ``generation_config``, ...). Beam search, several
            return sequences and assisted decoding are refused (:class:`ProbeError`), and so
            are sampling options transformers would reject (``do_sample=True`` with
            ``temperature=0.0``, a negative ``top_k``, ...), before any forward pass.

    Returns:
        A frozen :class:`GenerationTrace`: ``attentions`` ``[layer, batch, head, generated,
        total]``, ``cross`` ``[layer, batch, head, generated, source]`` for encoder-decoders,
        the generated ids and text, the scores; ``to_trace()`` gives an ordinary Trace.

    Raises:
        ProbeError: bad inputs or options, unsupported generation modes.
        UnsupportedModelError: the model cannot generate.
    """
    import torch

    if "max_length" in generate_kwargs:
        raise ProbeError(
            "probe.generate counts new tokens: pass max_new_tokens=N instead of "
            f"max_length={generate_kwargs['max_length']!r} (prompt included, it would be "
            "overridden)"
        )
    if max_new_tokens is None:
        configured = getattr(generate_kwargs.get("generation_config"), "max_new_tokens", None)
        max_new_tokens = 20 if configured is None else configured
    if not is_int(max_new_tokens) or max_new_tokens < 1:  # np.int64(4) counts
        raise ProbeError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    max_new_tokens = int(max_new_tokens)
    if not is_flag(keep_prompt):
        raise ProbeError(f"keep_prompt must be True or False, got {keep_prompt!r}")
    keep_prompt = bool(keep_prompt)
    options = _options(layers, heads, average_heads, dtype, False, False, "mean", 0.0, 0,
                       chunk_size)
    check_model_name(model_name)
    adapter = adapter_for(model)
    require_weights(model, "probe.generate")
    if adapter.family not in ("decoder", "encoder-decoder"):
        adapter.sites()  # a model probe cannot capture at all says why first (speech, TrOCR)
        raise UnsupportedModelError(
            f"{adapter.name} is {with_article(adapter.family)} model: probe.generate needs a "
            "decoder or an encoder-decoder with a language-model head (e.g. the embedded toy-mt: "
            "probe.load_model('toy-mt'), --model toy-mt)"
        )
    if tokenizer is not None and "tokenizer" not in generate_kwargs and _stop_strings(
            model, generate_kwargs):
        generate_kwargs["tokenizer"] = tokenizer  # transformers needs it to find stop strings
    sites = adapter.sites()
    prepared = adapter.prepare(inputs, tokenizer=tokenizer)
    stacks = _stack_sizes(sites, model)
    for kind, names in stacks.items():
        _check_layers(options, names, 0, False, kind)
    seq2seq = adapter.family == "encoder-decoder"
    _mask_bare_padding(prepared, model, generate_kwargs, seq2seq)
    mask = prepared.attention_mask
    recorders: dict[str, Any] = {}
    if seq2seq:
        recorders["self"] = StackRecorder("self", stacks["self"], options, mask, mask)
        recorders["decoder"] = GenerationRecorder("self", stacks["decoder"], options, None,
                                                  keep_prompt)
        recorders["cross"] = GenerationRecorder("cross", stacks["cross"], options, None,
                                                keep_prompt)
        generating = recorders["decoder"]
    else:
        generating = GenerationRecorder("self", stacks["self"], options, mask, keep_prompt)
        recorders["self"] = generating

    with model_lock(adapter.model), adapter.intercept(sites, recorders, options.chunk_size), \
            torch.no_grad():
        result = adapter.generate(prepared, max_new_tokens, generate_kwargs)

    if not generating.called:
        raise UnsupportedModelError(
            f"no attention was recorded while {type(model).__name__} generated: its attention "
            "modules were not called through a path probe intercepts"
        )
    warn_if_dropout(recorders.values(), "probe.generate")
    total = int(result.sequences.shape[1])
    if generating.steps != int(result.scores.shape[1]):
        raise ProbeError(
            f"recorded {generating.steps} generation steps for {int(result.scores.shape[1])} "
            "generated tokens: this generation mode is not supported by probe.generate"
        )
    rows, prompt_rows = generating.finish_steps(total)
    sequences = result.sequences.cpu()
    n_prompt = result.num_prompt_tokens
    special = _special(sequences, tokenizer, adapter.special_from_config)
    gen_mask = _generated_mask(sequences[:, n_prompt:], model, generate_kwargs)
    key_mask = torch.ones(sequences.shape, dtype=torch.bool)
    if not seq2seq and mask is not None:
        key_mask[:, : mask.shape[1]] = mask
    extra: dict[str, Any] = {}
    if seq2seq:
        encoder = recorders["self"].finish()
        unshare_outputs(result.output, [encoder])  # output_attentions=True returns its maps
        cross_rows, cross_prompt = recorders["cross"].finish_steps(None)
        cross = recorders["cross"]
        extra = dict(
            encoder=encoder,
            cross=AttentionStack(
                "cross", cross_rows, tuple(cross.layer_names[i] for i in cross.keep),
                tuple(cross.keep), _head_indices(options, cross.num_heads),
                num_model_layers=len(cross.layer_names), num_heads=cross.num_heads,
            ),
            cross_prompt=cross_prompt, source_tokens=prepared.tokens, source_mask=mask,
            source_ids=prepared.input_ids,
            source_special_tokens_mask=prepared.special_tokens_mask,
        )
        if adapter.modality == "vision":  # image-to-text: the keys are the encoder's tokens
            extra.update(_image_source(adapter, prepared, int(cross_rows.shape[-1])))
    words = _generated_words(tokenizer, sequences[:, n_prompt:], special[:, n_prompt:])
    return GenerationTrace(
        attentions=rows,
        layer_names=tuple(generating.layer_names[i] for i in generating.keep),
        layer_indices=tuple(generating.keep),
        head_indices=_head_indices(options, generating.num_heads),
        model_name=model_name or adapter.name,
        family=adapter.family,
        tokens=_tokens(tokenizer, sequences),
        byte_level=prepared.byte_level,
        unk_token=prepared.unk_token,
        num_prompt_tokens=n_prompt,
        sequences=sequences,
        scores=result.scores.cpu(),
        attention_mask=key_mask,
        special_tokens_mask=special,
        generated_mask=gen_mask,
        prompt_attentions=prompt_rows,
        words=None if words is None else words[0],
        word_ids=None if words is None else words[1],
        token_spans=None if words is None else words[2],
        prompt_words=prepared.words,
        prompt_word_ids=prepared.word_ids,
        prompt_token_spans=prepared.token_spans,
        text=_texts(tokenizer, sequences[:, n_prompt:]),
        num_heads=generating.num_heads,
        num_model_layers=len(generating.layer_names),
        output=result.output,
        **extra,
    )


def _image_source(adapter: Any, prepared: Any, keys: int) -> dict[str, Any]:
    """An image source's mask, special tokens (its prefix) and patch grid, for ``keys``
    encoder tokens (image-to-text models)."""
    import torch

    geometry = adapter.vision_geometry(prepared.main)
    rows, cols = geometry.grid
    prefix = keys - rows * cols - geometry.num_suffix_tokens
    if prefix < 0:
        raise UnsupportedModelError(
            f"cannot map {keys} encoder tokens onto a {rows}x{cols} patch grid; this image "
            "encoder's token layout is not supported yet"
        )
    batch = int(prepared.batch or 1)
    special = torch.zeros(batch, keys, dtype=torch.bool)
    special[:, :prefix] = True
    return dict(source_mask=torch.ones(batch, keys, dtype=torch.bool),
                source_special_tokens_mask=special, source_grid=geometry.grid,
                source_prefix_tokens=prefix, source_image_size=geometry.image_size,
                source_pixel_values=prepared.pixel_values)


def _stop_strings(model: Any, kwargs: dict[str, Any]) -> bool:
    if kwargs.get("stop_strings"):
        return True
    config = kwargs.get("generation_config") or getattr(model, "generation_config", None)
    return bool(getattr(config, "stop_strings", None))


def _head_indices(options: Any, num_heads: int) -> tuple[int, ...] | None:
    if options.average_heads:
        return None
    if options.heads is not None:
        return tuple(h % num_heads for h in options.heads)
    return tuple(range(num_heads))


# --------------------------------------------------------------------------- labels
def _tokens(tokenizer: Any, ids: torch.Tensor) -> tuple[tuple[str, ...], ...] | None:
    if tokenizer is None:
        return None
    return tuple(tuple(tokenizer.convert_ids_to_tokens(row.tolist())) for row in ids)


def _texts(tokenizer: Any, ids: torch.Tensor) -> tuple[str, ...] | None:
    if tokenizer is None:
        return None
    return tuple(str(tokenizer.decode(row.tolist(), skip_special_tokens=True)) for row in ids)


def _special(ids: torch.Tensor, tokenizer: Any, from_config: Any) -> torch.Tensor:
    from probe.capture.adapters._words import special_mask

    return special_mask(ids, tokenizer) if tokenizer is not None else from_config(ids).cpu()


def _generated_words(
    tokenizer: Any, ids: torch.Tensor, special: torch.Tensor
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...] | None] | None:
    """Per batch item, the words of its generated text, each generated token's word and each
    token's characters within its word.

    Returns ``(words, word_ids, token_spans)``, plain tuples when every item's words are
    exact, else :class:`PerItem` tuples in which reading an item without words raises why
    (``token_spans`` is ``None`` when an item's encoding had no offsets); ``None`` without a
    tokenizer.
    """
    from probe.capture._item_words import PerItem
    from probe.capture.adapters._hf_generate import generated_words

    if tokenizer is None:
        return None
    words: list[Any] = []
    word_ids: list[Any] = []
    spans: list[Any] = []
    missing: list[str | None] = []
    for b, (row, sp) in enumerate(zip(ids.tolist(), special.tolist())):
        labels = generated_words(tokenizer, row, {t for t, s in zip(row, sp) if s})
        if isinstance(labels, str):
            words.append(None)
            word_ids.append(None)
            spans.append(None)
            missing.append(
                f"batch item {b} has no generated words: {labels}; read its tokens "
                f"(gen.generated_tokens[{b}]) and token-level attention instead"
            )
        else:
            words.append(labels[0])
            word_ids.append(labels[1])
            spans.append(labels[2])
            missing.append(None)
    no_offsets = any(s is None and m is None for s, m in zip(spans, missing))
    if all(m is None for m in missing):
        return tuple(words), tuple(word_ids), None if no_offsets else tuple(spans)
    return (PerItem(tuple(words), tuple(missing)), PerItem(tuple(word_ids), tuple(missing)),
            None if no_offsets else PerItem(tuple(spans), tuple(missing)))


def _token_ids(model: Any, kwargs: dict[str, Any], key: str) -> list[int]:
    """The ``eos_token_id`` or ``pad_token_id`` generation uses: ``generate``'s keyword, else
    its ``generation_config=``, else the model's generation config (ids as a list; none for a
    value that is no id, which the check of the generation options refuses)."""
    found = kwargs.get(key)
    if found is None:
        config = kwargs.get("generation_config") or getattr(model, "generation_config", None)
        found = getattr(config, key, None)
    if hasattr(found, "tolist"):  # a tensor (0-d too) or numpy array/integer of ids
        found = found.tolist()
    if found is None:
        return []
    try:
        return [int(found)] if not isinstance(found, (list, tuple)) else [int(i) for i in found]
    except (TypeError, ValueError):  # not ids: the generation options' check words it
        return []


def _mask_bare_padding(prepared: Any, model: Any, kwargs: dict[str, Any], seq2seq: bool) -> None:
    """Bare ``input_ids`` holding the pad id: the attention mask transformers infers.

    Without an ``attention_mask``, ``generate`` masks every pad id (when the pad id is no EOS
    id), so the trace masks the same tokens; a decoder-only row ending in padding (right
    padding, which generation cannot continue from) is refused, as is one that ends in an
    EOS-valued pad id while other rows do not.
    """
    import torch

    ids = prepared.input_ids
    if ids is None or "attention_mask" in prepared.kwargs:
        return
    pads, eos = _token_ids(model, kwargs, "pad_token_id"), _token_ids(model, kwargs, "eos_token_id")
    if len(pads) != 1:
        return
    ends = ids[:, -1] == pads[0]
    if pads[0] in eos:  # transformers masks nothing: only a batch padded unevenly is wrong
        right = not seq2seq and bool(ends.any()) and not bool(ends.all())
    else:
        right = not seq2seq and bool(ends.any())
    if right:
        row = int(ends.nonzero()[0])
        raise ProbeError(
            f"input_ids row {row} ends in the pad token id {pads[0]} and no attention_mask was "
            "given: that is right padding, which decoder-only generation cannot continue from; "
            "left-pad the rows and pass attention_mask= with 0 at the padding "
            "(tokenizer.padding_side = 'left' does both)"
        )
    if pads[0] in eos or not bool((ids == pads[0]).any()):
        return
    mask = (ids != pads[0]).cpu()
    prepared.attention_mask = mask
    device = getattr(prepared.kwargs.get("input_ids"), "device", ids.device)
    prepared.kwargs["attention_mask"] = mask.to(dtype=torch.long, device=device)
    if prepared.special_tokens_mask is not None:
        prepared.special_tokens_mask = prepared.special_tokens_mask & mask


def _generated_mask(ids: torch.Tensor, model: Any, kwargs: dict[str, Any]) -> torch.Tensor:
    """``[batch, generated]`` True up to and including each item's first EOS."""
    import torch

    eos_ids = _token_ids(model, kwargs, "eos_token_id")
    if not eos_ids:
        return torch.ones(ids.shape, dtype=torch.bool)
    is_eos = torch.isin(ids, torch.tensor(eos_ids, dtype=ids.dtype)).long()
    ended_before = is_eos.cumsum(-1) - is_eos
    return ended_before == 0
