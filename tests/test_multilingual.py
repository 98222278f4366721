"""Text in languages other than English on the packaged MiniLM (its BERT tokenizer splits
Chinese into one word per character, decomposes Korean syllables into jamo): words longer
than a character (``probe.group_words``, ``--word 马路``, ``--candidate 小猫``), token labels
that draw as the letters they hold, and sentences joined back for titles."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import probe  # noqa: E402
from probe.cli import main  # noqa: E402

ZH = "小猫没有过马路，因为它太累了。"
SEGMENTED = ["小猫", "没有", "过", "马路", "，", "因为", "它", "太", "累", "了", "。"]


@pytest.fixture(scope="module")
def zh(minilm):
    model, tokenizer = minilm
    return probe.trace(model, ZH, tokenizer=tokenizer)


# ------------------------------------------------------------------ probe.group_words
def test_chinese_words_are_characters_and_group_words_joins_them(zh) -> None:
    assert zh.words[0] == tuple(ZH)  # the BERT pre-tokenizer: one word per CJK character
    grouped = probe.group_words(zh, ["小猫", "马路"])
    assert grouped.words[0] == ("小猫", "没", "有", "过", "马路", *"，因为它太累了。")
    assert zh.words[0] == tuple(ZH)  # the input is unchanged
    ids = grouped.word_ids[0]
    assert ids[0] is None and ids[-1] is None  # [CLS], [SEP]
    assert ids[1:3] == (0, 0) and ids[6:8] == (4, 4)
    assert grouped.attentions is zh.attentions  # shared, not copied
    # a whole segmentation (e.g. from a word segmenter) is reproduced
    assert probe.group_words(zh, SEGMENTED).words[0] == tuple(SEGMENTED)


def test_grouped_word_attention_is_the_merge_rule(zh) -> None:
    """Row of a grouped query word: mean over its tokens; column of a grouped key word: sum
    over its tokens (Clark et al. 2019), computed by hand from the token attention."""
    grouped = probe.group_words(zh, SEGMENTED)
    weights = probe.word_attention(grouped, "马路")  # [layer, head, word]
    attn = zh.attentions[:, 0].double()  # [layer, head, q, k]
    road, cat, because = [6, 7], [1, 2], [9, 10]  # token positions
    expected_cat = attn[:, :, road][:, :, :, cat].sum(-1).mean(-1)
    expected_because = attn[:, :, road][:, :, :, because].sum(-1).mean(-1)
    torch.testing.assert_close(weights[..., 0].double(), expected_cat, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights[..., 5].double(), expected_because, rtol=1e-5,
                               atol=1e-6)
    assert float(weights.sum(-1).max()) <= 1 + 1e-5


def test_group_words_spaces_case_and_errors(minilm) -> None:
    model, tokenizer = minilm
    en = probe.trace(model, "I moved to New York because it was big.", tokenizer=tokenizer)
    assert "New York" in probe.group_words(en, "new york").words[0]
    with pytest.raises(probe.ProbeError, match=r"'小狗' spells no run .* whole words"):
        probe.group_words(probe.trace(model, ZH, tokenizer=tokenizer), ["小狗"])
    with pytest.raises(probe.ProbeError, match="non-blank strings"):
        probe.group_words(en, [" "])


def test_a_word_over_several_characters_names_the_fix(zh) -> None:
    with pytest.raises(probe.ProbeError, match=r"probe\.group_words\(trace, \['马路'\]\)"):
        probe.word_attention(zh, "马路")
    with pytest.raises(probe.ProbeError,
                       match=r"probe\.group_words\(trace, \['小猫', '马路'\]\)"):
        probe.coref(zh, "它", candidates=["小猫", "马路"])
    links = probe.coref(probe.group_words(zh, ["小猫", "马路"]), "它", candidates=["小猫", "马路"])
    assert {link.antecedent for link in links} == {"小猫", "马路"}
    assert {link.antecedent_index for link in links} == {0, 4}


def test_plot_groups_the_words_it_is_given(zh) -> None:
    from matplotlib.text import Text

    fig = probe.plot(zh, "coref", word="它", candidates=["小猫", "马路"])
    texts = {t.get_text() for t in fig.findobj(Text)}
    assert "小猫" in texts and "马路" in texts  # drawn as words, in the table too
    fig = probe.plot(zh, "links", word="马路", layer=2)
    assert fig is not None


@pytest.mark.parametrize("fmt", ["png", "html"])
def test_cli_word_and_candidates_in_chinese(tmp_path, capsys, fmt) -> None:
    rc = main(["render", "coref", "--text", ZH, "--word", "它", "--candidate", "小猫",
               "--candidate", "马路", "--out", str(tmp_path), "--format", fmt, "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    path = Path(out.strip())
    assert path.exists() and path.name.startswith("coref_minilm_它-c-小猫-马路_")
    if fmt == "html":
        page = path.read_text(encoding="utf-8")
        assert "\\u5c0f\\u732b" in page  # "小猫", one word of the data (JSON-escaped)
    rc = main(["render", "coref", "--text", ZH, "--word", "马路", "--out", str(tmp_path),
               "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err


# ------------------------------------------------------------------ token labels
KO = "고양이는 너무 피곤해서 길을 건너지 않았다."
HI = "बिल्ली ने सड़क पार नहीं की क्योंकि वह बहुत थकी थी।"


@pytest.mark.parametrize(
    "token, label",
    [
        ("\u1102", "\u3134"),  # choseong nieun -> ㄴ
        ("##\u1165", "##\u3153"),  # jungseong eo -> ##ㅓ
        ("##\u11ab", "##\u3134"),  # jongseong nieun -> ##ㄴ (same letter, final position)
        ("\u1112\u1161\u11ab", "\ud55c"),  # jamo forming a syllable: the syllable 한
        ("\u1160", "<U+1160>"),  # the Hangul filler draws as nothing: a code point, as before
        ("##\u093f", "##<U+093F>"),  # a Devanagari vowel sign after WordPiece's ##
        ("##\u0e31", "##<U+0E31>"),  # a Thai vowel mark after ##
        ("##\u093e\u0930", "##<U+093E>\u0930"),
        ("\u0915\u093f", "\u0915\u093f"),  # on its consonant: unchanged
        ("##ab", "##ab"),
        ("cafe\u0301", "cafe\u0301"),  # not composed: only jamo runs are
    ],
)
def test_labels_draw_the_letters_their_tokens_hold(token, label) -> None:
    from probe._text import visible_text

    assert visible_text(token) == label


def _tick_labels(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.get_yticklabels() if t.get_text()]


def test_korean_and_hindi_labels_on_minilm(minilm) -> None:
    from probe._text import _is_jamo

    model, tokenizer = minilm
    ko = probe.trace(model, KO, tokenizer=tokenizer)
    assert any(_is_jamo(c) for t in ko.tokens[0] for c in t)  # the tokenizer's decomposition
    labels = _tick_labels(probe.plot(ko, "head", layer=0))
    assert "\u3134" in labels and "##\u3153" in labels
    assert not any(_is_jamo(c) for label in labels for c in label)
    page = probe.show(ko, "heads").html
    assert "\\u3134" in page and "\\u1102" not in page  # the HTML view's labels too

    hi = probe.trace(model, HI, tokenizer=tokenizer)
    labels = _tick_labels(probe.plot(hi, "head", layer=0))
    assert "##<U+093F>" in labels
    assert not any(label.startswith("##") and len(label) > 2
                   and label[2] in "\u093e\u093f\u0940\u094b" for label in labels)


# ------------------------------------------------------------------ sentences in titles
@pytest.mark.parametrize(
    "text",
    [
        HI,  # the danda closes the sentence, no space before it
        "แมว ไม่ได้ ข้ามถนน เพราะ มัน เหนื่อย",  # Thai words are split only at spaces
        "今天天气很好，我们去公园吧",
        "「小猫」说：“你好”他说。",  # Chinese quotes set without spaces
        "He said \u201chello\u201d and left.",  # English quotes keep their spaces
        "Кошка не перешла улицу, потому что она очень устала.",
        KO,
    ],
)
def test_titles_join_the_words_as_written(minilm, text) -> None:
    from probe.viewers._plot import sentence_of

    model, tokenizer = minilm
    trace = probe.trace(model, text, tokenizer=tokenizer)
    assert sentence_of(trace.words[0]) == text


# ------------------------------------------------------------------ repeated words
def _table_cells(fig) -> list[str]:
    from matplotlib.table import Table

    return [c.get_text().get_text() for t in fig.findobj(Table) for c in t.get_celld().values()]


def test_coref_table_says_which_occurrence_of_a_repeated_antecedent(minilm, tmp_path,
                                                                    capsys) -> None:
    model, tokenizer = minilm
    text = "的的的的 the the the 的"
    trace = probe.trace(model, text, tokenizer=tokenizer)
    links = probe.coref(trace, "的", occurrence=4)
    cells = _table_cells(probe.plot(trace, "coref", word="的", occurrence=4))
    assert f"的 ({links[0].antecedent_index})" in cells  # not a bare, ambiguous "的"
    assert "的" not in cells
    english = probe.trace(model, "The animal didn't cross the street because it was too tired.",
                          tokenizer=tokenizer)
    assert "animal" in _table_cells(probe.plot(english, "coref", word="it"))  # unique: as is

    from probe.commands.render._figures import _coref
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._session import _session

    s = _session(RenderArgs(view="coref", text=text, word="的", occurrence=4))
    (_, fig), = _coref(s)
    assert f"的 ({links[0].antecedent_index})" in _table_cells(fig)


# ------------------------------------------------------------------ words of other tokenizers
@pytest.mark.parametrize("family", ["byte_level", "llama3"])
def test_punctuation_before_chinese_is_a_word_of_its_own(family) -> None:
    """Llama 3's (and Qwen's) pre-tokenizer attaches one punctuation mark to the letters after
    it ("，因为" is one pre-token); the words are those GPT-2's gives (runs of letters)."""
    from transformers import LlamaConfig, LlamaModel

    from tests import _tokenizers

    tok = getattr(_tokenizers, family)()
    torch.manual_seed(0)
    model = LlamaModel(LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=1,
                                   intermediate_size=32)).eval()
    text = "小猫没有过马路，因为它太累了。 He said (hello) it's"
    trace = probe.trace(model, text, tokenizer=tok)
    assert trace.words[0] == ("小猫没有过马路", "，", "因为它太累了", "。", "He", "said", "(",
                              "hello", ")", "it", "'s")
    assert len(probe.word_attention(trace, "，").shape) == 3


# ------------------------------------------------------------------ long sentences
def test_a_long_chinese_sentence_wraps_between_characters() -> None:
    """Chinese words are glued (no spaces), yet a line may break between them, as Chinese
    text does, never before "，" or "。"; before, the whole sentence was one unbreakable run
    drawn past the right edge of the coref view."""
    from probe.viewers._tokens import attached_words, layout_tokens

    words = list("小猫没有过马路，因为它太累了。" * 6)
    width = 300.0
    layout = layout_tokens(words, 10.0, width, joined=attached_words(words))
    assert layout.n_lines > 1
    assert float(max(layout.x + layout.width)) <= width
    firsts = [words[i] for i in range(1, len(words)) if layout.line[i] != layout.line[i - 1]]
    assert firsts and not set(firsts) & {"，", "。"}
    english = ["The", "animal", "didn", "'", "t", "cross"] * 8
    layout = layout_tokens(english, 10.0, width, joined=attached_words(english))
    for i in range(len(english)):  # "didn't" is never broken across lines
        if english[i] in ("'", "t"):
            assert layout.line[i] == layout.line[i - 1]


def test_coref_view_of_a_long_chinese_text_stays_on_the_canvas(minilm) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    model, tokenizer = minilm
    trace = probe.trace(model, ZH * 8, tokenizer=tokenizer)
    for context, least in (("all", 50), ("excerpt", 10)):  # the whole text, and an excerpt
        fig = probe.plot(trace, "coref", word="它", occurrence=7, candidates=["小猫", "马路"],
                         context=context)
        renderer = FigureCanvasAgg(fig).get_renderer()
        right = fig.bbox.x1
        drawn = [t for t in fig.axes[0].texts if t.get_text().strip()]
        assert len(drawn) > least
        assert max(t.get_window_extent(renderer).x1 for t in drawn) <= right + 0.5


# ------------------------------------------------------------------ the HTML coref view
def test_show_coref_opens_on_a_chinese_pronoun_and_groups_words(zh, monkeypatch) -> None:
    from probe.viewers.html import _coref as html_coref

    seen: list[dict] = []
    build = html_coref.build_page
    monkeypatch.setattr(html_coref, "build_page",
                        lambda **kw: seen.append(kw["data"]) or build(**kw))
    probe.show(zh, "coref")
    data = seen[-1]
    assert data["words"][data["choices"][0]["index"]] == "它"  # opens on the pronoun
    probe.show(zh, "coref", word="马路")
    data = seen[-1]
    assert data["words"][data["choices"][0]["index"]] == "马路"
    assert len(data["words"]) == len(ZH) - 1  # 马 路 grouped into one word


def test_part_of_a_tokenizer_word_names_group_words_which_splits_it(minilm) -> None:
    model, tokenizer = minilm
    ja = probe.trace(model, "猫は疲れていたので、道を渡らなかった。それはとても眠かった。",
                     tokenizer=tokenizer)
    assert "それはとても" in ja.words[0]  # a run of kana is one word of the BERT tokenizer
    with pytest.raises(probe.ProbeError, match=r"'それ' is part of the word 'それはとても'.*"
                       r"probe\.group_words\(trace, \['それ'\]\), which splits words"):
        probe.coref(ja, "それ", candidates=["猫"])
    split = probe.group_words(ja, "それ")  # そ ##れ ##は ##と ##て ##も: cut after ##れ
    assert split.words[0][10:12] == ("それ", "はとても")
    assert probe.coref(split, "それ", candidates=["猫"])[0].antecedent == "猫"


# ------------------------------------------------------------------ text files
@pytest.mark.parametrize(
    "text, encoding, named",
    [
        (ZH, "gbk", "Chinese in GB18030/GBK or Big5"),
        ("小貓沒有過馬路，因為牠太累了。", "big5", "Chinese in GB18030/GBK or Big5"),
        ("猫は疲れていたので道を渡らなかった。", "shift_jis", "Japanese in Shift_JIS"),
        (KO, "euc_kr", "Korean in EUC-KR"),
        ("café crème", "latin-1", None),
        ("a\xe9b", "latin-1", None),  # one high byte: not two-byte text
    ],
)
def test_a_text_file_in_a_legacy_encoding_is_named(tmp_path, capsys, text, encoding,
                                                    named) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes((text + "\n").encode(encoding))
    rc = main(["render", "heads", "--text-file", str(path), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 2 and not out and not (tmp_path / "out").exists()
    assert err.startswith("probe: error: --text-file") and err.count("\n") == 1
    assert "is not UTF-8 (byte" in err and err.rstrip().endswith("save it as UTF-8")
    if named:
        assert f"it reads as {named})" in err
    else:
        assert "reads as" not in err


def test_a_text_file_with_bom_and_crlf(tmp_path, capsys) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(("\ufeff" + ZH + "\r\n\r\n" + KO + "\r\n").encode("utf-8"))
    rc = main(["render", "heads", "--layer", "0", "--text-file", str(path), "--out",
               str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    names = [Path(line).name for line in out.split()]
    assert len(names) == 2 and "小猫没有过马路" in names[0] and "\ufeff" not in names[0]
    direct = main(["render", "heads", "--layer", "0", "--text", ZH, "--out", str(tmp_path),
                   "--quiet"])
    out2, _ = capsys.readouterr()
    assert direct == 0 and Path(out2.strip()).name == names[0]  # the same input, same file


def test_group_words_groups_every_batch_item(minilm) -> None:
    model, tokenizer = minilm
    trace = probe.trace(model, [ZH, "马路很长，马路很宽。"], tokenizer=tokenizer)
    grouped = probe.group_words(trace, "马路")
    assert grouped.words[0].count("马路") == 1
    assert grouped.words[1] == ("马路", "很", "长", "，", "马路", "很", "宽", "。")
    for b in range(2):  # padding and special tokens still belong to no word
        real = trace.attention_mask[b].bool() & ~trace.special_tokens_mask[b].bool()
        assert [w is not None for w in grouped.word_ids[b]] == real.tolist()
    torch.testing.assert_close(  # the second occurrence: the same merge rule
        probe.word_attention(grouped, "马路", 1, occurrence=1),
        probe.word_attention(probe.group_words(probe.trace(model, "马路很长，马路很宽。",
                                                           tokenizer=tokenizer), "马路"),
                             "马路", occurrence=1), rtol=1e-4, atol=1e-5)


def test_group_words_never_joins_the_two_texts_of_a_pair(minilm) -> None:
    """The last word of a pair's first text and the first word of its second are not one
    word: [SEP] lies between them (a word spelled only across it is refused, not grouped)."""
    model, tokenizer = minilm
    enc = tokenizer(["I flew to New", "New York is big"], ["York is big", "I flew"],
                    return_tensors="pt", padding=True)
    trace = probe.trace(model, enc, tokenizer=tokenizer)
    assert trace.words[0] == ("i", "flew", "to", "new", "york", "is", "big")
    grouped = probe.group_words(trace, "New York")
    assert grouped.words[0] == trace.words[0]  # across [SEP]: not grouped
    assert grouped.word_ids[0] == trace.word_ids[0]
    assert grouped.words[1] == ("new york", "is", "big", "i", "flew")  # within a text: grouped
    with pytest.raises(probe.ProbeError, match="runs across the two texts of a pair"):
        probe.group_words(probe.trace(model, tokenizer("to New", "York", return_tensors="pt"),
                                      tokenizer=tokenizer), "New York")
