"""``toy-mt``: a tiny Marian-style translation model trained by probe on the toy language pair.

The model is a plain ``transformers`` ``MarianMTModel`` (random init, sinusoidal positions,
shared word-level vocabulary of both languages) trained with ``python -m
probe.recipes.train_toy_mt`` on :mod:`probe.models._translation`, whose word alignment is
known by construction: the ground truth for cross-attention alignment, as ``vit-shapes`` is
for image saliency. Tokens are whole words (a ``tokenizers`` ``WordLevel`` model), so word
and token alignments coincide; the source gets ``</s>`` appended, the decoder starts from
``<pad>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "TOKENIZER_PATH",
    "TOY_MT_CONFIG",
    "WEIGHTS_PATH",
    "build_toy_mt",
    "build_toy_tokenizer",
    "load_toy_mt",
    "read_toy_mt_metadata",
]

TOY_MT_CONFIG: dict[str, Any] = {
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "max_position_embeddings": 32,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
    "forced_eos_token_id": None,
    "bos_token_id": None,
}
"""``MarianConfig`` keyword arguments besides the vocabulary size (2+2 layers of 4 heads)."""

WEIGHTS_PATH: Path = Path(__file__).parent / "weights" / "toy_mt.safetensors"
TOKENIZER_PATH: Path = Path(__file__).parent / "data" / "toy_mt_tokenizer.json"


def build_toy_tokenizer() -> Any:
    """The word-level tokenizer of both toy languages (a ``PreTrainedTokenizerFast``)."""
    from probe.models._translation import toy_vocabulary

    return _wrap(word_level_tokenizer(toy_vocabulary()))


def word_level_tokenizer(words: Sequence[str]) -> Any:
    """A ``tokenizers.Tokenizer`` of ``words`` (ids in their order; ``<unk>`` and ``</s>``
    among them): split on whitespace, ``</s>`` appended, decoded with spaces between words.
    The toy-mt and caption-shapes tokenizers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return tok


def _wrap(tok: Any) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def build_toy_mt(vocab_size: int) -> nn.Module:
    """A randomly initialised ``toy-mt`` model (training mode)."""
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(vocab_size=vocab_size, decoder_vocab_size=vocab_size, **TOY_MT_CONFIG)
    return MarianMTModel(config)


def load_toy_mt() -> tuple[nn.Module, Any]:
    """The trained ``toy-mt`` model (eval mode) and its tokenizer, from the shipped files."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    if not WEIGHTS_PATH.exists() or not TOKENIZER_PATH.exists():
        raise ProbeError(
            f"the toy-mt files are missing ({WEIGHTS_PATH.name}, {TOKENIZER_PATH.name}): "
            "reinstall probe or run python -m probe.recipes.train_toy_mt"
        )
    tokenizer = _wrap(Tokenizer.from_file(str(TOKENIZER_PATH)))
    model = build_toy_mt(len(tokenizer))
    state = load_file(str(WEIGHTS_PATH))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # tied copies (shared embeddings, lm_head) are not stored twice
    if unexpected or any("embed" not in m and "lm_head" not in m for m in missing):
        raise ProbeError(
            f"the toy-mt weights do not match the architecture (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}): run python -m probe.recipes.train_toy_mt"
        )
    model.tie_weights()
    model.config._name_or_path = "toy-mt"
    return model.eval(), tokenizer


def read_toy_mt_metadata() -> dict[str, str]:
    """The training metadata stored in the weights file's header."""
    from safetensors import safe_open

    with safe_open(str(WEIGHTS_PATH), framework="pt") as f:
        return dict(f.metadata() or {})
