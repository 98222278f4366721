"""Any language: a Chinese sentence on a tiny BERT with a character vocabulary, end to end
(capture, words, coref, every text view), with real glyphs and no missing-glyph warning."""

from __future__ import annotations

import io
import logging
import warnings

import pytest

torch = pytest.importorskip("torch")

import probe  # noqa: E402
from probe.viewers._style import font_families  # noqa: E402

SENTENCE = "小猫没有过马路因为它太累了。"
WORD = "它"


@pytest.fixture(scope="module")
def chinese(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random-init BERT whose vocabulary is the sentence's characters."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("zh")
    chars = sorted(set(SENTENCE))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"))
    assert "[UNK]" not in tokenizer(SENTENCE).tokens()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    model = BertModel(config).eval()
    trace = probe.trace(model, SENTENCE, tokenizer=tokenizer, model_name="tiny-zh")
    return trace


def _covered(fig) -> None:
    """Every character of every drawn text is in one of the fonts the text resolves to."""
    from matplotlib import font_manager
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.ft2font import FT2Font
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    charmaps: dict[str, set[int]] = {}
    for text in fig.findobj(Text):
        s = text.get_text()
        if not text.get_visible() or not s.strip():
            continue
        paths = font_manager.fontManager._find_fonts_by_props(text.get_fontproperties())
        codes: set[int] = set()
        for path in paths:
            if str(path) not in charmaps:
                charmaps[str(path)] = set(FT2Font(str(path)).get_charmap())
            codes |= charmaps[str(path)]
        missing = [c for c in s if not c.isspace() and ord(c) not in codes]
        assert not missing, f"no glyph for {missing} in {text.get_text()!r} ({paths})"


def test_chinese_words_and_coref(chinese) -> None:
    assert list(chinese.words[0]) == list(SENTENCE)
    links = probe.coref(chinese, WORD)
    assert len(links) == 2 * 4
    before = SENTENCE.index(WORD)
    # default candidates: the words before the pronoun, no punctuation
    assert all(link.antecedent_index < before for link in links)
    assert all(link.antecedent != "。" for link in links)


@pytest.mark.parametrize(
    "view, options",
    [("coref", {"word": WORD}), ("model", {}), ("heads", {"layer": 1}), ("head", {}),
     ("links", {"layer": 1, "word": WORD}), ("rollout", {})],
)
def test_chinese_views_render_real_glyphs(chinese, view, options, caplog) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would raise
        with caplog.at_level(logging.WARNING, logger="matplotlib"):
            fig = probe.plot(chinese, view, **options)
            fig.savefig(io.BytesIO(), format="png")
            _covered(fig)
    assert not [r for r in caplog.records if "missing" in r.getMessage().lower()]
    assert "Noto Sans CJK SC" in font_families()


def test_mixed_scripts_have_glyphs() -> None:
    from probe.viewers import token_strip

    tokens = ["The", "动物", "東京", "한국어", "مرحبا", "ไทย", "नमस्ते", "שלום", "Привет"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = token_strip(tokens, [float(i) for i in range(len(tokens))])
        _covered(fig)


def test_combining_marks_stay_in_their_word_and_words_match_any_spelling() -> None:
    """An uncased WordPiece tokenizer drops accents written as combining marks (and the emoji
    variation selector): no token covers them, yet they are part of the word as written; a
    word is found whatever its case or Unicode composition."""
    from transformers import BertConfig, BertModel

    from tests._tokenizers import wordpiece

    tokenizer = wordpiece()
    text = "the cafe\u0301 was nice \u2764\ufe0f and the STRASSE too"
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32)).eval()
    trace = probe.trace(model, text, tokenizer=tokenizer)
    assert "cafe\u0301" in trace.words[0] and "\u2764\ufe0f" in trace.words[0]
    assert "".join(trace.words[0]) == "".join(text.split())
    weights = probe.word_attention(trace, "CAF\u00c9")  # precomposed, upper case
    decomposed = trace.words[0].index("cafe\u0301")
    torch.testing.assert_close(weights, probe.word_attention(trace, decomposed))
    torch.testing.assert_close(probe.word_attention(trace, "stra\u00dfe"),
                               probe.word_attention(trace, "strasse"))
    links = probe.coref(trace, "too", candidates=["Caf\u00e9"])
    assert {link.antecedent for link in links} == {"cafe\u0301"}
