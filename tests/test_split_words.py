"""``probe.group_words`` splits a tokenizer's word at its token boundaries: a run of kana with
MiniLM's BERT tokenizer, a whole Chinese sentence with a SentencePiece (Llama 2 style)
tokenizer, a run of Chinese letters with byte-level BPE. A given word whose edge falls
inside a token is refused, naming the token. Expected words are worked out by hand from the
tokens each test asserts first."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import probe  # noqa: E402
from tests._tokenizers import CORPUS, sentencepiece_unigram  # noqa: E402

JA = "猫がマットの上に座った。"
NOT = "is not a word of this sentence and cannot be made one: it "  # a word inside a token
ZH = "小猫没有过马路，因为它太累了。"


@pytest.fixture(scope="module")
def ja(minilm):
    model, tokenizer = minilm
    return probe.trace(model, JA, tokenizer=tokenizer)


def _gpt2(vocab: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel(cfg).eval()


def _sentencepiece():
    """Llama 2 style (``▁`` from the normaliser, no pre-tokenizer: the tokenizer's word is the
    whole text up to a space), with a hand-made vocabulary: every character of ZH, and the
    one merge 小 + 猫."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(ZH))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3}
    for ch in chars + ["小猫"]:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("小", "猫")], unk_token="<unk>",
                               fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                       special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def _byte_level():
    """GPT-2 style byte-level BPE trained on English and 马路 (so 马路 is one token; the
    other Chinese letters stay split into their UTF-8 bytes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS + ["马路"] * 20, trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", unk_token="<|endoftext|>")


# ------------------------------------------------------------------ MiniLM (WordPiece)
def test_minilm_splits_a_run_of_kana_at_its_tokens(ja) -> None:
    assert ja.words[0] == ("猫", "がマットの", "上", "に", "座", "った", "。")
    # BERT uncased strips the dakuten (が -> か): matching reads the text, not the tokens
    assert ja.tokens[0][2:7] == ("か", "##マ", "##ッ", "##ト", "##の")
    split = probe.group_words(ja, "マット")
    assert split.words[0] == ("猫", "が", "マット", "の", "上", "に", "座", "った", "。")
    assert split.word_ids[0] == (None, 0, 1, 2, 2, 2, 3, 4, 5, 6, 7, 7, 8, None)
    assert split.token_spans[0][2:7] == ((0, 1), (0, 1), (1, 2), (2, 3), (0, 1))
    assert split.attentions is ja.attentions  # shared, not copied
    assert ja.words[0][1] == "がマットの"  # the input is unchanged
    # "が" alone and "トの上" (across two words) are token runs too
    assert probe.group_words(ja, ["が", "トの上"]).words[0] == (
        "猫", "が", "マッ", "トの上", "に", "座", "った", "。")


def test_a_mark_no_token_covers_stays_with_the_token_before_it(minilm) -> None:
    import unicodedata

    model, tokenizer = minilm
    nfd = unicodedata.normalize("NFD", JA)  # が is か + U+3099, which BERT uncased drops
    trace = probe.trace(model, nfd, tokenizer=tokenizer)
    assert trace.tokens[0][2:4] == ("か", "##マ") and trace.token_spans[0][2:4] == ((0, 1),
                                                                                  (2, 3))
    split = probe.group_words(trace, "マット")
    assert split.words[0][1:4] == ("か\u3099", "マット", "の")  # the mark stays with か
    with pytest.raises(probe.ProbeError, match=r"^'か' " + NOT + r"ends past the token 'か' \(of the "
                       r"word 'か\u3099マットの'\), before the next token boundary"):
        probe.group_words(trace, "か")


def test_minilm_reproduces_a_segmentation_where_tokens_allow(minilm, ja) -> None:
    # MeCab: 猫 / が / マット / の / 上 / に / 座っ / た / 。 (った is っ ##た: every cut allowed)
    mecab = ["猫", "が", "マット", "の", "上", "に", "座っ", "た", "。"]
    assert probe.group_words(ja, mecab).words[0] == tuple(mecab)
    model, tokenizer = minilm
    # ヴァイオリンゞを is one [UNK]: the segmentation's cut after ヴァイオリン falls inside
    # it and is not drawn; its other cuts are
    trace = probe.trace(model, "ヴァイオリンゞを弾く", tokenizer=tokenizer)
    assert trace.tokens[0][1:4] == ("[UNK]", "[UNK]", "く")
    grouped = probe.group_words(trace, ["ヴァイオリン", "ゞを", "弾", "く"])
    assert grouped.words[0] == ("ヴァイオリンゞを", "弾", "く")
    with pytest.raises(probe.ProbeError, match=r"^'ヴァイオリン' " + NOT + r"ends inside the token "
                       r"'\[UNK\]' \(of the word 'ヴァイオリンゞを'\), where the tokenizer does "
                       r"not split.*token boundaries"):
        probe.group_words(trace, ["ヴァイオリン"])


def test_minilm_weights_of_a_split_word_follow_the_merge_rule(ja) -> None:
    split = probe.group_words(ja, ["マット"])
    weights = probe.word_attention(split, "上")  # [layer, head, word]
    attn = ja.attentions[:, 0].double()
    mat = [3, 4, 5]  # ##マ ##ッ ##ト
    torch.testing.assert_close(weights[..., 2].double(), attn[:, :, 7][:, :, mat].sum(-1),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights[..., 1].double(), attn[:, :, 7, 2], rtol=1e-5,
                               atol=1e-6)  # が: the token か alone


def test_plot_show_and_cli_split_the_words_they_are_given(ja, tmp_path, capsys,
                                                          monkeypatch) -> None:
    from matplotlib.text import Text

    from probe.cli import main
    from probe.viewers.html import _coref as html_coref

    seen: list[dict] = []
    build = html_coref.build_page
    monkeypatch.setattr(html_coref, "build_page",
                        lambda **kw: seen.append(kw["data"]) or build(**kw))
    probe.show(ja, "coref", word="上", candidates=["マット"])
    assert seen[-1]["words"][:4] == ["猫", "が", "マット", "の"]

    with pytest.raises(probe.ProbeError, match=r"probe\.group_words\(trace, \['マット'\]\)"):
        probe.coref(ja, "上", candidates=["マット"])
    fig = probe.plot(ja, "coref", word="上", candidates=["マット", "猫"])
    texts = {t.get_text() for t in fig.findobj(Text)}
    assert "マット" in texts and "がマットの" not in texts
    assert probe.plot(ja, "links", word="マット", layer=0) is not None
    rc = main(["render", "coref", "--text", JA, "--word", "上", "--candidate", "マット",
               "--out", str(tmp_path), "--format", "html", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    page = Path(out.strip()).read_text(encoding="utf-8")
    assert "\\u30de\\u30c3\\u30c8" in page  # "マット", one word of the data (JSON-escaped)
    rc = main(["render", "coref", "--text", "ヴァイオリンゞを弾く", "--word", "く",
               "--candidate", "ヴァイオリン", "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    cli_not = NOT.replace("this sentence", "--text")
    assert rc == 2 and "--candidate 'ヴァイオリン' " + cli_not + "ends inside the token '[UNK]'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ------------------------------------------------------------------ SentencePiece
def test_sentencepiece_sentence_is_split_into_the_given_words() -> None:
    tok = _sentencepiece()
    trace = probe.trace(_gpt2(len(tok)), ZH, tokenizer=tok)
    assert trace.tokens[0][:4] == ("<s>", "▁", "小猫", "没")
    assert trace.words[0] == (ZH,)  # no pre-tokenizer: the whole sentence is one word
    grouped = probe.group_words(trace, ["小猫", "马路", "它"])
    assert grouped.words[0] == ("小猫", "没有过", "马路", "，因为", "它", "太累了。")
    #                  <s>   ▁  小猫 没 有 过 马 路 ， 因 为 它 太 累 了 。
    assert grouped.word_ids[0] == (None, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 5, 5, 5, 5)
    assert grouped.attentions is trace.attentions
    links = probe.coref(grouped, "它", candidates=["小猫", "马路"])
    assert {lk.antecedent for lk in links} == {"小猫", "马路"}
    fig = probe.plot(trace, "coref", word="它", candidates=["小猫", "马路"])  # splits itself
    assert fig is not None
    # 小 alone ends inside the token 小猫
    with pytest.raises(probe.ProbeError, match=r"^'小' " + NOT + r"ends inside the token '小猫'"):
        probe.group_words(trace, ["小"])
    # a T5-style Unigram trained on English: the whole sentence is one <unk>
    unigram = sentencepiece_unigram()
    trace = probe.trace(_gpt2(len(unigram)), ZH, tokenizer=unigram)
    assert trace.tokens[0] == ("▁", "<unk>", "</s>")
    with pytest.raises(probe.ProbeError, match=r"^'小猫' " + NOT + r"ends inside the token '<unk>' "
                       r"\(of the word '小猫没有过马路，因为它太累了。'\), where the tokenizer"):
        probe.group_words(trace, ["小猫", "马路"])


# ------------------------------------------------------------------ byte-level BPE
def test_byte_level_run_of_letters_is_split_at_characters_and_tokens() -> None:
    tok = _byte_level()
    text = "小猫过马路了。"
    trace = probe.trace(_gpt2(len(tok)), text, tokenizer=tok)
    # 小 猫 过 of three byte tokens each, 马路 one token, 了 and 。 of three bytes each
    labels = trace.labels[0]
    assert labels[9] == "马路" and len(labels) == 16
    assert trace.words[0] == ("小猫过马路了", "。")
    grouped = probe.group_words(trace, ["过", "马路"])
    assert grouped.words[0] == ("小猫", "过", "马路", "了", "。")
    assert grouped.word_ids[0] == (0,) * 6 + (1,) * 3 + (2,) + (3,) * 3 + (4,) * 3
    assert grouped.attentions is trace.attentions
    with pytest.raises(probe.ProbeError, match=r"^'马' " + NOT + r"ends inside the token '马路' \(of "
                       r"the word '小猫过马路了'\), where the tokenizer does not split"):
        probe.group_words(trace, "马")
    with pytest.raises(probe.ProbeError, match=r"^'路了' " + NOT + r"starts inside the token '马路'"):
        probe.group_words(trace, "路了")


def test_a_trace_without_offsets_can_only_join(minilm, ja) -> None:
    model, tokenizer = minilm
    enc = tokenizer(JA, return_tensors="pt")
    trace = probe.trace(model, enc, tokenizer=tokenizer)  # words decoded, no text offsets
    assert trace.token_spans is None
    assert trace.words[0][1] == "かマットの"  # decoded from the tokens: no dakuten
    assert probe.group_words(trace, ["った。"]).words[0][-1] == "った。"
    with pytest.raises(probe.ProbeError, match="keeps no token offsets"):
        probe.group_words(trace, "マット")


# ------------------------------------------------------------------ generation
def test_a_generation_trace_splits_its_prompt_and_generated_words() -> None:
    tok = _sentencepiece()
    model = _gpt2(len(tok))
    forced = tok.convert_tokens_to_ids(["▁", "马", "路"])
    gen = probe.generate(model, "小猫没有过", tokenizer=tok, max_new_tokens=3,
                         prefix_allowed_tokens_fn=lambda b, ids: [forced[len(ids) - 6]])
    assert gen.generated_tokens[0] == ("▁", "马", "路") and gen.words[0] == ("马路",)
    trace = gen.to_trace()  # <s> ▁ 小猫 没 有 过 | ▁ 马 (the last token is not read)
    assert trace.words[0] == ("小猫没有过", "马路")
    grouped = probe.group_words(trace, ["有", "过马路"])  # split, and across the two texts
    assert grouped.words[0] == ("小猫没", "有", "过马路")
    assert grouped.word_ids[0] == (None, 0, 0, 0, 1, 2, 2, 2)
    assert grouped.token_spans[0][4:] == ((0, 1), (0, 1), (1, 2), (1, 2))  # ▁ on 马
    assert grouped.attentions is trace.attentions
    # 路's token was generated last and never read: no token boundary before 路 here
    with pytest.raises(probe.ProbeError,
                       match=r"^'过马' " + NOT + r"ends past the token '马' \(of the word '马路'\), "
                             r"before the next token boundary, where the tokenizer does not"):
        probe.group_words(trace, ["过马"])


def test_a_given_word_that_is_a_word_of_the_item_is_not_cut_out_of_longer_ones(minilm) -> None:
    # "catwalk" is the tokens cat ##walk. In the first item "cat" is a word of its own, so
    # only that word is taken; in the second it is not, so "catwalk" is split.
    model, tokenizer = minilm
    trace = probe.trace(model, ["The cat left the catwalk.", "A catwalk show."],
                        tokenizer=tokenizer)
    grouped = probe.group_words(trace, ["cat"])
    assert grouped.words[0] == ("The", "cat", "left", "the", "catwalk", ".")
    assert grouped.words[1] == ("A", "cat", "walk", "show", ".")
    assert grouped.word_ids[0] == trace.word_ids[0]
    assert grouped.word_ids[1] == (None, 0, 1, 2, 3, 4, None, None, None)  # padded
    # a run of whole words counts as a word of the item too
    pair = probe.trace(model, "New York and Newark.", tokenizer=tokenizer)
    assert probe.group_words(pair, ["New York"]).words[0] == ("New York", "and", "Newark", ".")


def test_a_shorter_whole_word_is_found_where_a_longer_target_was_only_part_of_a_word(
        minilm) -> None:
    # greedy matching first tried "New York Yankees" across "Yankeesfan" (whole words only,
    # as the item has "New York Yankees" as words), which must leave "New York" to match there
    model, tokenizer = minilm
    trace = probe.trace(model, "New York Yankeesfan met New York Yankees.", tokenizer=tokenizer)
    grouped = probe.group_words(trace, ["New York", "New York Yankees"])
    assert grouped.words[0][0] == "New York"
    assert grouped.words[0][-2:] == ("New York Yankees", ".")


def test_composed_forms_match_text_typed_decomposed(minilm) -> None:
    # Korean typed as jamo (NFD, as macOS file names): every jamo a token boundary
    import unicodedata

    model, tokenizer = minilm
    text = unicodedata.normalize("NFD", "한국어를 배워요")
    trace = probe.trace(model, text, tokenizer=tokenizer)
    grouped = probe.group_words(trace, "한국")
    assert [unicodedata.normalize("NFC", w) for w in grouped.words[0]][:2] == ["한국", "어를"]


def test_a_segmentation_splits_a_grouped_word_at_its_space(minilm) -> None:
    model, tokenizer = minilm
    trace = probe.trace(model, "I love New York and Newark.", tokenizer=tokenizer)
    grouped = probe.group_words(trace, "New York")
    again = probe.group_words(grouped, ["I", "love", "New", "York", "and", "Newark", "."])
    assert again.words[0] == ("I", "love", "New", "York", "and", "Newark", ".")
    assert again.word_ids[0] == trace.word_ids[0]
