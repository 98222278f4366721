"""Readable token labels for byte-level BPE tokenizers (GPT-2, RoBERTa, Llama 3).

``trace.tokens`` stays the tokenizer's own symbols (``Ġthe``, ``ä¸`` ``Ń``); ``trace.labels``
decodes them for figures: the leading space as ``▁`` (the marker SentencePiece labels show),
a character split over tokens whole on the token with its first byte and ``<0xNN>`` escapes
on the rest. WordPiece and SentencePiece labels are the tokens themselves.
"""

from __future__ import annotations

import re

import pytest
import torch

import probe
from probe._text import WORD_START, byte_level_labels
from probe.capture.adapters._text_inputs import is_byte_level
from tests._tokenizers import TOKENIZERS

ENGLISH = "The animal didn't cross the street."
MIXED = "我爱中文 hello 😀 café!\nZürich"


def _tokens(tok, text: str) -> list[str]:
    return tok.convert_ids_to_tokens(tok(text)["input_ids"])


def _text_of(labels) -> str:
    """The text a row of labels reads, escapes dropped (they repeat split characters)."""
    return re.sub(r"<0x[0-9A-F]{2}>", "", "".join(labels)).replace(WORD_START, " ")


def test_space_marker_and_plain_pieces():
    assert byte_level_labels(["The", "Ġanimal", "Ġ", "ĠĠx", "Ċ", "dn", "'t"]) == (
        "The", "▁animal", "▁", "▁▁x", "\n", "dn", "'t")


def test_split_character_whole_on_its_first_token_escapes_after():
    # 中 = E4 B8 AD split as "ä¸" + "Ń"; 😀 = F0 9F 98 80 over four tokens
    assert byte_level_labels(["ä¸", "Ń", "æĸĩ"]) == ("中", "<0xAD>", "文")
    assert byte_level_labels(["ð", "Ł", "ĺ", "Ģ"]) == ("😀", "<0x9F>", "<0x98>", "<0x80>")
    # a character cut short by the end of the sequence, or broken by a space: escapes only
    assert byte_level_labels(["a", "ä¸"]) == ("a", "<0xE4><0xB8>")
    assert byte_level_labels(["ä", "Ġx"]) == ("<0xE4>", "▁x")
    # a symbol outside the byte alphabet (an added token): left as it is
    assert byte_level_labels(["<|endoftext|>", "▁x", "Ġy"]) == ("<|endoftext|>", "▁x", "▁y")


@pytest.mark.parametrize("family", ["byte_level", "llama3"])
@pytest.mark.parametrize("text", [ENGLISH, MIXED])
def test_labels_read_the_text(family, text):
    tok = TOKENIZERS[family]()
    tokens = _tokens(tok, text)
    labels = byte_level_labels(tokens)
    assert len(labels) == len(tokens)
    content = [lab for t, lab in zip(tokens, labels) if t not in tok.all_special_tokens]
    assert _text_of(content) == text
    assert not any(c in "".join(labels) for c in "ĠĊ")  # no raw byte symbols left
    if text == MIXED:  # every CJK character and the emoji appear as themselves
        assert all(ch in labels for ch in "我爱中文😀")


def _gpt2(vocab: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    return GPT2LMHeadModel(cfg).eval()


def _bert(vocab: int):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=64)).eval()


@pytest.mark.parametrize("text", [ENGLISH, MIXED])
def test_trace_keeps_raw_tokens_and_decodes_labels(text):
    tok = TOKENIZERS["byte_level"]()
    tr = probe.trace(_gpt2(len(tok)), text, tokenizer=tok)
    raw = tuple(_tokens(tok, text))
    assert tr.byte_level and tr.tokens == (raw,)  # the tokenizer's own strings
    assert tr.labels == (byte_level_labels(raw),)
    assert _text_of(tr.labels[0]) == text
    attr = probe.attribute(_gpt2(len(tok)), text, "attention", tokenizer=tok)
    assert attr.tokens == (raw,) and attr.token_labels == tr.labels


@pytest.mark.parametrize("family", ["wordpiece", "sentencepiece", "llama2"])
def test_other_families_labels_are_their_tokens(family):
    tok = TOKENIZERS[family]()
    assert not is_byte_level(tok)
    model = _bert(len(tok)) if family == "wordpiece" else _gpt2(len(tok))
    tr = probe.trace(model, ENGLISH, tokenizer=tok)
    assert not tr.byte_level
    assert tr.labels == tr.tokens == (tuple(_tokens(tok, ENGLISH)),)


def test_figures_show_the_labels():
    from probe.viewers._style import format_token

    tok = TOKENIZERS["byte_level"]()
    tr = probe.trace(_gpt2(len(tok)), MIXED, tokenizer=tok)
    fig = probe.plot(tr, "head", layer=0, head=0)
    shown = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    expected = [format_token(lab) for lab in tr.labels[0]]
    assert shown[: len(expected)] == expected
    assert "中" in shown and not any("Ġ" in s or "ä¸" in s for s in shown)


def test_characters_no_font_draws_are_code_points_without_warnings():
    """Decoded labels now hold emoji, which no probe font has: they were empty boxes with a
    "Glyph missing" warning per glyph on stderr; now ``<U+1F44D>``, other scripts unchanged."""
    import warnings

    from probe.viewers._style import format_token

    assert format_token("\U0001F44D") == "<U+1F44D>"
    assert format_token("\u2581\u732b\u00e9x\u0303") == "\u2581\u732b\u00e9x\u0303"
    tok = TOKENIZERS["byte_level"]()
    tr = probe.trace(_gpt2(len(tok)), "Hi \U0001F44D\U0001F3FD \u732b", tokenizer=tok)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = probe.plot(tr, "head", layer=0, head=0)
        fig.canvas.draw()
    shown = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    assert "<U+1F44D>" in shown and "<U+1F3FD>" in shown and "\u732b" in shown


def test_cli_labels(tmp_path, monkeypatch):
    import probe.viewers
    from probe.cli import main

    tok = TOKENIZERS["byte_level"]()
    folder = tmp_path / "gpt2"
    _gpt2(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    seen = []
    view = probe.viewers.head_heatmap

    def recorded(attn, tokens, **kwargs):
        seen.append(list(tokens))
        return view(attn, tokens, **kwargs)

    monkeypatch.setattr(probe.viewers, "head_heatmap", recorded)
    assert main(["render", "head", "--model", str(folder), "--text", MIXED, "--layer", "0",
                 "--head", "0", "--out", str(tmp_path / "out"), "--quiet", "--dpi", "30"]) == 0
    assert seen == [list(byte_level_labels(_tokens(tok, MIXED)))]


def test_generation_trace_labels():
    tok = TOKENIZERS["byte_level"]()
    gen = probe.generate(_gpt2(len(tok)), MIXED, tokenizer=tok, max_new_tokens=2)
    assert gen.byte_level
    tr = gen.to_trace()
    assert tr.byte_level and tr.labels == tuple(byte_level_labels(row) for row in tr.tokens)
    assert tr.tokens[0][: len(_tokens(tok, MIXED))] == tuple(_tokens(tok, MIXED))  # raw
