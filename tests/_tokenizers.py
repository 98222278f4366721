"""Tiny tokenizers of every family, trained offline in memory on a few sentences.

Each builder returns a ``transformers.PreTrainedTokenizerFast``: WordPiece (BERT), byte-level
BPE (GPT-2 / RoBERTa, no pad token), a Llama-3-style byte-level BPE with a split regex,
SentencePiece-style Unigram with ``▁`` (T5) and a Llama-2-style BPE whose only word marker is
``▁`` (no pre-tokenizer, so the tokenizer's own word ids span the whole text).
"""

from __future__ import annotations

from typing import Any, Callable

CORPUS = [
    "The animal didn't cross the street because it was too tired.",
    "The trophy doesn't fit in the suitcase because it is too big.",
    "A short one.",
    "Hello world, hello probe!",
    "The cat sat on the mat and it purred.",
] * 4


def _fast(tok: Any, **special: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, **special)


def wordpiece() -> Any:
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS,
                            trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return _fast(tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                 sep_token="[SEP]", mask_token="[MASK]")


def byte_level(pad: bool = False) -> Any:
    """GPT-2 style: byte-level BPE, words carry their leading space, no pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    extra = {"pad_token": "<|endoftext|>"} if pad else {}
    return _fast(tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                 unk_token="<|endoftext|>", **extra)


def llama3() -> Any:
    """Llama 3 style: a split regex, then byte-level without its own regex; BOS added."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
            r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        ), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
    return _fast(tok, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")


def sentencepiece_unigram() -> Any:
    """T5 style: Metaspace (``▁``) pre-tokenizer, Unigram model, EOS appended, pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"))
    eos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", eos)])
    return _fast(tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def llama2() -> Any:
    """Llama 2 style: ``▁`` put in by the normalizer, no pre-tokenizer, BOS added, no pad."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

    from tokenizers import pre_tokenizers

    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()  # for training only: merges stay in words
    tok.decoder = decoders.Sequence([
        decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
        decoders.Strip(" ", 1, 0)])
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"]))
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                       special_tokens=[("<s>", bos)])
    return _fast(tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


TOKENIZERS: dict[str, Callable[[], Any]] = {
    "wordpiece": wordpiece,
    "byte_level": byte_level,
    "llama3": llama3,
    "sentencepiece": sentencepiece_unigram,
    "llama2": llama2,
}
