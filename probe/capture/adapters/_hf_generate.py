"""Running ``transformers`` ``generate`` for :func:`probe.generate`, and naming what it wrote.

The model generates exactly as users call it (KV cache on, the model's own generation config,
greedy or sampling); probe only asks for the per-step scores. Generation modes that feed the
model several candidate rows per step (beam search, several return sequences, assisted and
prompt-lookup decoding) are refused with the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError
from probe.capture.adapters._hf_modes import check_arguments, check_modes, check_token_options
from probe.capture.adapters._hf_sampling import (
    check_generation_config,
    check_processors,
    check_sampling,
)
from probe.capture.adapters._words import (
    TokenSpans,
    WordIds,
    Words,
    token_spans_of_encoding,
    words_of_encoding,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Generated", "generated_words", "hf_generate"]

_OURS = ("return_dict_in_generate", "output_scores")
_ASSISTED = ("assistant_model", "prompt_lookup_num_tokens", "assistant_early_exit", "draft_model")


@dataclass(frozen=True)
class Generated:
    """What ``generate`` returned: ``sequences`` ``[batch, total]``, ``scores``
    ``[batch, generated, vocab]``, the decoder prompt length and the raw output."""

    sequences: torch.Tensor
    scores: torch.Tensor
    num_prompt_tokens: int
    output: Any


def _setting(model: nn.Module, kwargs: dict[str, Any], name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    config = kwargs.get("generation_config") or getattr(model, "generation_config", None)
    value = getattr(config, name, default)
    return default if value is None else value


def check_generate_kwargs(model: nn.Module, kwargs: dict[str, Any],
                          input_ids: torch.Tensor | None = None) -> None:
    """Refuse generation modes whose steps are not one new token per batch item, and options
    transformers would refuse or misuse (``input_ids``: the prompt, to build its logits
    processors up front)."""
    beams = _setting(model, kwargs, "num_beams", 1)
    if isinstance(beams, int) and beams > 1:
        raise ProbeError(
            f"beam search (num_beams={beams}) is not supported by probe.generate: its beams are "
            "reordered every step; use greedy (num_beams=1) or sampling (do_sample=True)"
        )
    returns = _setting(model, kwargs, "num_return_sequences", 1)
    if isinstance(returns, int) and returns > 1:
        raise ProbeError(
            f"num_return_sequences={returns} is not supported by probe.generate: repeat the "
            "prompt in the batch instead (inputs=[text] * n) with do_sample=True"
        )
    for name in _ASSISTED:
        if kwargs.get(name) is not None:
            raise ProbeError(
                f"{name}= (assisted decoding) feeds several tokens per step and is not "
                "supported by probe.generate: drop it"
            )
    check_arguments(model, kwargs, has_tokenizer=kwargs.get("tokenizer") is not None)
    check_modes(model, kwargs)
    check_sampling(model, kwargs)
    config = check_generation_config(model, kwargs)
    check_token_options(model, kwargs)
    check_processors(model, kwargs, config, input_ids)


def hf_generate(
    model: nn.Module, model_kwargs: dict[str, Any], max_new_tokens: int, kwargs: dict[str, Any]
) -> Generated:
    """Run ``model.generate`` on prepared inputs and collect sequences and scores.

    Args:
        model: a ``transformers`` model that can generate.
        model_kwargs: ``input_ids``, ``attention_mask`` (and other forward inputs).
        max_new_tokens: tokens to generate at most.
        kwargs: the user's other ``generate`` keyword arguments.
    """
    import torch

    can = getattr(model, "can_generate", None)
    if not callable(can) or not can():
        raise UnsupportedModelError(
            f"{type(model).__name__} cannot generate: load the model with its language-model "
            "head (AutoModelForCausalLM / AutoModelForSeq2SeqLM)"
        )
    check_generate_kwargs(model, kwargs, model_kwargs.get("input_ids"))
    user = {k: v for k, v in kwargs.items() if k not in _OURS}
    out = model.generate(
        **model_kwargs, max_new_tokens=max_new_tokens, return_dict_in_generate=True,
        output_scores=True, **user,
    )
    scores = torch.stack([s.detach() for s in out.scores], dim=1)
    sequences = out.sequences.detach()
    return Generated(sequences, scores, int(sequences.shape[1] - scores.shape[1]), out)


def generated_words(
    tokenizer: Any, ids: list[int], special: set[int]
) -> tuple[Words, WordIds, TokenSpans | None] | str:
    """Words of generated ``ids``, each token's word index (``None`` for special tokens) and
    each token's characters within its word (``None`` for special tokens; all ``None`` when
    the encoding has no offsets).

    The text is decoded and encoded again; the words are read from that encoding when it gives
    back the same tokens, else the reason they are missing is returned (the generated tokens
    are not how the tokenizer would write the text, so no word boundary can be trusted).
    """
    keep = [i for i, t in enumerate(ids) if t not in special]
    real = [ids[i] for i in keep]
    if not real:
        return (), (None,) * len(ids), (None,) * len(ids)
    try:
        text = tokenizer.decode(real, skip_special_tokens=True)
        enc = tokenizer([text], add_special_tokens=False, verbose=False)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return f"the tokenizer could not decode and encode its generated tokens again ({exc})"
    if list(enc["input_ids"][0]) != real:
        shown = text if len(text) <= 40 else text[:37] + "..."
        return (
            f"its generated tokens are not how the tokenizer writes their decoded text "
            f"{shown!r} (encoding it again gives other tokens), so no word boundary can be "
            "trusted"
        )
    labels = words_of_encoding(enc, 0, tokenizer, text)
    if labels is None:
        return "the tokenizer gives no word boundaries (pass a fast tokenizer)"
    words, real_ids = labels
    real_spans = token_spans_of_encoding(enc, 0, text, words, real_ids)
    word_ids: list[int | None] = [None] * len(ids)
    spans: list[tuple[int, int] | None] = [None] * len(ids)
    for i, (pos, w) in enumerate(zip(keep, real_ids)):
        word_ids[pos] = w
        spans[pos] = None if real_spans is None else real_spans[i]
    return words, tuple(word_ids), None if real_spans is None else tuple(spans)
