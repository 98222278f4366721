"""``caption-shapes``: a tiny image-to-text model trained by probe to caption generated scenes.

The model is a plain ``transformers`` ``VisionEncoderDecoderModel``: a ViT encoder (``64x64``
images cut into ``8x8`` patches, an ``8x8`` grid after one CLS token) and a GPT-2 decoder
with cross-attention over the encoder's 65 tokens, trained with ``python -m
probe.recipes.train_caption_shapes`` on :func:`probe.models._captions.make_captions`. Its
captions name each object, colour then shape, left to right (``"red disk and blue
square"``), and the generator returns each object's mask: the ground truth of where a shape
word's cross-attention should look. Tokens are whole words (a ``tokenizers`` ``WordLevel``
model of 13 words); the decoder starts from ``<s>`` and stops at ``</s>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "CAPTION_DECODER_CONFIG",
    "CAPTION_ENCODER_CONFIG",
    "CAPTION_TOKENIZER_PATH",
    "CAPTION_WEIGHTS_PATH",
    "build_caption_shapes",
    "build_caption_tokenizer",
    "caption_vocabulary",
    "load_caption_shapes",
    "read_caption_shapes_metadata",
]

#: special tokens first: ids 0..3
_SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")

CAPTION_ENCODER_CONFIG: dict[str, Any] = {
    "image_size": 64,
    "patch_size": 8,
    "num_channels": 3,
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}
"""``transformers.ViTConfig`` keyword arguments of the encoder (3 layers x 4 heads, width 64)."""

CAPTION_DECODER_CONFIG: dict[str, Any] = {
    "n_embd": 64,
    "n_layer": 2,
    "n_head": 4,
    "n_inner": 128,
    "n_positions": 16,
    "add_cross_attention": True,
    "resid_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "attn_pdrop": 0.0,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
"""``transformers.GPT2Config`` keyword arguments of the decoder besides the vocabulary size
(2 layers x 4 heads, width 64, each layer with cross-attention over the encoder's tokens)."""

CAPTION_WEIGHTS_PATH: Path = Path(__file__).parent / "weights" / "caption_shapes.safetensors"
"""The shipped float32 weights (a safetensors file with training metadata in its header)."""
CAPTION_TOKENIZER_PATH: Path = Path(__file__).parent / "data" / "caption_shapes_tokenizer.json"
"""The shipped word-level tokenizer."""


def caption_vocabulary() -> list[str]:
    """Every token, in id order: the specials, ``and``, the colours, the shapes."""
    from probe.models._captions import CAPTION_COLOURS
    from probe.models._shapes import SHAPE_CLASSES

    return [*_SPECIALS, "and", *CAPTION_COLOURS, *SHAPE_CLASSES]


def build_caption_tokenizer() -> Any:
    """The word-level tokenizer of the captions (a ``PreTrainedTokenizerFast``): words split on
    whitespace, ``</s>`` appended."""
    from probe.models._toy_mt import word_level_tokenizer

    return _wrap(word_level_tokenizer(caption_vocabulary()))


def _wrap(tok: Any) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


def build_caption_shapes() -> nn.Module:
    """A randomly initialised ``caption-shapes`` model (training mode, SDPA attention).

    Input ``pixel_values`` ``[batch, 3, 64, 64]`` normalised as
    :class:`probe.models._captions.CaptionsBatch` documents, ``decoder_input_ids`` ``[batch,
    target]`` starting with ``<s>`` (id 1).
    """
    from transformers import GPT2Config, ViTConfig, VisionEncoderDecoderConfig
    from transformers import VisionEncoderDecoderModel
    from transformers.utils import logging

    decoder = GPT2Config(vocab_size=len(caption_vocabulary()), **CAPTION_DECODER_CONFIG)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        ViTConfig(**CAPTION_ENCODER_CONFIG), decoder)
    config.decoder_start_token_id = CAPTION_DECODER_CONFIG["bos_token_id"]
    config.pad_token_id = CAPTION_DECODER_CONFIG["pad_token_id"]
    config.eos_token_id = CAPTION_DECODER_CONFIG["eos_token_id"]
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        model = VisionEncoderDecoderModel(config)
    finally:
        logging.set_verbosity(verbosity)
    gen = model.generation_config
    gen.decoder_start_token_id, gen.bos_token_id = config.decoder_start_token_id, 1
    gen.eos_token_id, gen.pad_token_id = config.eos_token_id, config.pad_token_id
    gen.max_new_tokens, gen.do_sample, gen.num_beams = 12, False, 1
    model.config._name_or_path = "caption-shapes"
    return model


def _check_files(weights: Path) -> None:
    missing = [p.name for p in (weights, CAPTION_TOKENIZER_PATH) if not p.is_file()]
    if missing:
        raise ProbeError(
            f"the caption-shapes files are missing ({', '.join(missing)}): reinstall probe or "
            "run python -m probe.recipes.train_caption_shapes"
        )


def load_caption_shapes(path: str | Path | None = None) -> tuple[nn.Module, Any]:
    """The trained ``caption-shapes`` model (eval mode, CPU, SDPA) and its tokenizer.

    Args:
        path: safetensors file to load; default :data:`CAPTION_WEIGHTS_PATH`.
    """
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    file = Path(path) if path is not None else CAPTION_WEIGHTS_PATH
    _check_files(file)
    try:
        state = load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ProbeError(f"cannot read caption-shapes weights {file} ({exc}); re-train them "
                         "with python -m probe.recipes.train_caption_shapes") from exc
    tokenizer = _wrap(Tokenizer.from_file(str(CAPTION_TOKENIZER_PATH)))
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten
        model = build_caption_shapes()
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    except RuntimeError as exc:
        raise ProbeError(
            f"caption-shapes weights {file} do not match the configs; re-train them with "
            "python -m probe.recipes.train_caption_shapes") from exc
    missing = set(model.state_dict()) - set(state)
    # the decoder's output layer is tied to its input embeddings and stored once
    if missing - {"decoder.lm_head.weight"}:
        raise ProbeError(
            f"caption-shapes weights {file} lack {sorted(missing)[:3]}; re-train them with "
            "python -m probe.recipes.train_caption_shapes")
    model.tie_weights()
    return model.eval(), tokenizer


def read_caption_shapes_metadata(path: str | Path | None = None) -> dict[str, str]:
    """The training metadata stored in the header of a ``caption-shapes`` safetensors file."""
    from safetensors import safe_open

    file = Path(path) if path is not None else CAPTION_WEIGHTS_PATH
    _check_files(file)
    with safe_open(str(file), framework="pt", device="cpu") as handle:
        return dict(handle.metadata() or {})
