"""Word alignment: merging, hard links, AER (hand-computed), generation and gradient alignment
on tiny random-init models, and the toy language pair's gold alignments."""

from __future__ import annotations

import pytest
import torch

import probe
from probe.analysis._alignment import word_alignment_scores
from probe.models._translation import make_pairs, split_pairs, toy_vocabulary
from tests._tiny import toy_marian


def test_aer_hand_computed() -> None:
    sure = {(0, 0), (1, 2)}
    possible = {(0, 0), (1, 2), (1, 1)}
    # A = {(0,0), (1,1), (2,2)}: |A∩S| = 1, |A∩P| = 2, |A| = 3, |S| = 2 -> 1 - 3/5
    aer = probe.alignment_error_rate({(0, 0), (1, 1), (2, 2)}, sure, possible)
    assert aer == pytest.approx(0.4)
    assert probe.alignment_error_rate(sure, sure) == 0.0
    assert probe.alignment_error_rate({(5, 5)}, sure) == 1.0
    # corpus AER sums counts before the ratio
    assert probe.corpus_aer([{(0, 0)}, {(0, 1)}], [{(0, 0)}, {(0, 0), (1, 1)}]) == pytest.approx(
        1 - 2 / 5
    )
    with pytest.raises(probe.ProbeError, match="undefined"):
        probe.alignment_error_rate(set(), set())


def test_merge_rule_and_hard_links() -> None:
    # 3 target tokens (words 0,0,1), 4 source tokens (words 0,1,1, special)
    scores = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.3, 0.3, 0.0, 0.4], [0.0, 0.9, 0.1, 0.0]])
    merged = word_alignment_scores(scores, [0, 0, 1], [0, 1, 1, None], 2, 2)
    expected = torch.tensor([[0.2, 0.4], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(merged, expected)
    assert probe.hard_alignment(merged) == {(0, 1), (1, 1)}
    # threshold on rows normalised over source words: row 0 = [1/3, 2/3]
    assert probe.hard_alignment(merged, rule="threshold", threshold=0.3) == {(0, 0), (0, 1), (1, 1)}
    with pytest.raises(probe.ProbeError, match="threshold"):
        probe.hard_alignment(merged, rule="threshold", threshold=1.5)


def test_hard_alignment_refuses_non_tensors_saying_what_to_pass() -> None:
    from tests._factories import make_trace, random_attention

    trace = make_trace(random_attention(1, 1, 1, 3))
    with pytest.raises(probe.ProbeError, match=r"got Trace: pass probe\.alignment\(generation\)"
                       r"\.matrix\(\), not the Trace"):
        probe.hard_alignment(trace)
    with pytest.raises(probe.ProbeError, match="got list"):
        probe.hard_alignment([[1.0, 0.0]])


def test_random_baseline_is_row_stochastic_and_seeded() -> None:
    like = probe.Alignment(torch.zeros(1, 1, 3, 5), ("a", "b", "c"), tuple("vwxyz"), (0,), (0,))
    r1 = probe.random_alignment(like, torch.Generator().manual_seed(0))
    r2 = probe.random_alignment(like, torch.Generator().manual_seed(0))
    torch.testing.assert_close(r1.scores, r2.scores)
    torch.testing.assert_close(r1.scores.sum(-1), torch.ones(1, 1, 3, dtype=torch.float64))
    assert r1.method == "random" and len(r1.links()) == 3


def test_repr_shows_the_shape_not_every_score() -> None:
    """A notebook cell ending in ``probe.alignment(gen)`` printed every score (the dataclass
    repr); like a trace's, the repr names the shape and dtype."""
    al = probe.Alignment(torch.rand(2, 4, 3, 5, dtype=torch.float64), ("a", "b", "c"),
                         tuple("vwxyz"), (0, 1), (0, 1, 2, 3))
    assert repr(al) == (
        "Alignment(method='attention', scores=(2, 4, 3, 5) float64, target_words=('a', 'b', "
        "'c'), source_words=('v', 'w', 'x', 'y', 'z'), layer_indices=(0, 1), "
        "head_indices=(0, 1, 2, 3))")


def test_toy_pairs_gold_alignment_is_consistent() -> None:
    pairs = make_pairs(300, seed=5)
    assert pairs == make_pairs(300, seed=5)  # deterministic
    vocab = set(toy_vocabulary())
    kinds = {"one_to_many": 0, "many_to_one": 0, "crossing": 0}
    for p in pairs:
        assert set(p.source) <= vocab and set(p.target) <= vocab
        assert {t for t, _ in p.sure} == set(range(len(p.target)))  # every target word aligned
        assert {s for _, s in p.sure} == set(range(len(p.source)))  # every source word aligned
        by_src: dict[int, int] = {}
        by_tgt: dict[int, int] = {}
        for t, s in p.sure:
            by_src[s] = by_src.get(s, 0) + 1
            by_tgt[t] = by_tgt.get(t, 0) + 1
        kinds["one_to_many"] += any(v > 1 for v in by_src.values())
        kinds["many_to_one"] += any(v > 1 for v in by_tgt.values())
        kinds["crossing"] += any(t1 < t2 and s1 > s2 for t1, s1 in p.sure for t2, s2 in p.sure)
    assert all(v > 20 for v in kinds.values()), kinds
    train, test = split_pairs(2000, 100, seed=0)
    assert not {p.source for p in train} & {p.source for p in test}


def _tiny_marian_with_words():
    return toy_marian()


def test_alignment_from_generation_on_random_marian() -> None:
    model, tok = _tiny_marian_with_words()
    gen = probe.generate(model, "the big dog sees a ice cream", tokenizer=tok, max_new_tokens=5,
                         eos_token_id=None, min_new_tokens=5)
    al = probe.alignment(gen)
    assert al.source_words == ("the", "big", "dog", "sees", "a", "ice", "cream")
    assert al.scores.shape == (2, 4, len(al.target_words), 7)
    # word tokens here are whole words: the merged scores are the cross-attention without </s>
    torch.testing.assert_close(al.scores, gen.cross.attentions[:, 0, :, :, :7].double())
    fused = al.matrix()
    torch.testing.assert_close(fused, al.scores.mean((0, 1)))
    assert len(al.links(layer=1, head=2)) == len(al.target_words)
    with pytest.raises(probe.ProbeError, match="layer 7"):
        al.matrix(layer=7)


def test_negative_layers_count_from_the_models_last_layer() -> None:
    # matrix(-1) / links(layer=-1) were "layer -1 is not in this alignment (have [0, 1])"
    model, tok = _tiny_marian_with_words()  # 2 decoder layers
    kw = dict(tokenizer=tok, max_new_tokens=3, eos_token_id=None, min_new_tokens=3)
    al = probe.alignment(probe.generate(model, "a cat likes the tea pot", **kw))
    torch.testing.assert_close(al.matrix(-1), al.matrix(1))
    torch.testing.assert_close(al.matrix(-2, head=-4 % 4), al.matrix(0, head=0))
    assert al.links(layer=-1) == al.links(layer=1)
    first = probe.alignment(probe.generate(model, "a cat likes the tea pot", layers=[0], **kw))
    torch.testing.assert_close(first.matrix(-2), al.matrix(0))  # the model's layer 0, kept
    with pytest.raises(probe.ProbeError, match=r"^layer -1 \(the model's layer 1\) is not in "
                                                r"this alignment \(kept layers: \[0\]\); "
                                                r"generate with layers=None or including it$"):
        first.matrix(-1)  # the model's last layer, not the last one kept
    with pytest.raises(probe.ProbeError, match=r"^layer -1 \(the model's layer 1\) was not "
                                                r"captured"):
        probe.show(first, "alignment", layers=[-1])  # the page reads -1 as matrix(-1) does
    with pytest.raises(probe.ProbeError, match=r"^layer -3 is out of range: the model has 2 "
                                                r"layers \(use -2\.\.1; negative counts"):
        al.links(layer=-3)
    with pytest.raises(probe.ProbeError, match=r"^layer must be an integer"):
        al.matrix(1.0)


def test_negative_heads_count_from_the_models_last_head() -> None:
    # head=-1 was "head -1 is not in this alignment (have [0, 1, 2, 3])": the generation did
    # not record the cross-attention's head count; gen.cross.num_heads now carries it
    model, tok = _tiny_marian_with_words()  # 4 cross-attention heads
    kw = dict(tokenizer=tok, max_new_tokens=3, eos_token_id=None, min_new_tokens=3)
    al = probe.alignment(probe.generate(model, "a cat likes the tea pot", **kw))
    assert al.num_heads == 4
    torch.testing.assert_close(al.matrix(1, head=-1), al.matrix(1, head=3))
    torch.testing.assert_close(al.matrix(-2, head=-4), al.matrix(0, head=0))
    assert al.links(layer=-1, head=-2) == al.links(layer=1, head=2)
    some = probe.alignment(probe.generate(model, "a cat likes the tea pot", heads=[0, 1], **kw))
    assert (some.head_indices, some.num_heads) == ((0, 1), 4)
    torch.testing.assert_close(some.matrix(1, head=-3), al.matrix(1, head=1))  # model's head 1
    with pytest.raises(probe.ProbeError, match=r"^head -1 \(the model's head 3\) is not in "
                                                r"this alignment \(kept heads: \[0, 1\]\); "
                                                r"generate with heads=None or including it$"):
        some.matrix(1, head=-1)  # the model's last head, not the last one kept
    with pytest.raises(probe.ProbeError, match=r"^head -1 \(the model's head 3\) was not "
                                                r"captured"):
        probe.show(some, "alignment", heads=[-1])  # the page reads -1 as matrix does
    with pytest.raises(probe.ProbeError, match=r"^head 4 is out of range: the model has 4 "
                                                r"heads per layer \(use -4\.\.3; negative counts"):
        al.links(layer=1, head=4)
    with pytest.raises(probe.ProbeError, match=r"^head must be an integer"):
        al.matrix(1, head=1.0)
    ones = probe.random_alignment(al, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ones.matrix(-1, head=-1), ones.matrix(0, head=0))  # the one held


@pytest.mark.parametrize("method", ["saliency", "grad_x_input"])
def test_gradient_alignment_matches_per_token_autograd(method: str) -> None:
    from tests._tiny import assert_unchanged, snapshot

    model, tok = _tiny_marian_with_words()
    gen = probe.generate(model, "a cat likes the tea pot", tokenizer=tok, max_new_tokens=3,
                         eos_token_id=None, min_new_tokens=3)
    before = snapshot(model)
    al = probe.gradient_alignment(model, gen, method=method)
    assert_unchanged(model, before)
    assert al.scores.shape == (1, 1, len(al.target_words), 6) and al.method == method
    # reference: one backward per generated token, through inputs_embeds
    emb = model.get_encoder().embed_tokens(gen.source_ids).detach()
    scale = model.get_encoder().embed_scale if hasattr(model.get_encoder(), "embed_scale") else 1.0
    for i in range(gen.num_generated):
        e = emb.clone().requires_grad_(True)
        out = model(inputs_embeds=e * scale, decoder_input_ids=gen.sequences[:, :-1])
        logp = torch.log_softmax(out.logits[0, i], -1)[gen.generated_ids[0, i]]
        (g,) = torch.autograd.grad(logp, e)
        ref = (g if method == "saliency" else g * e.detach()).norm(dim=-1)[0, :6]
        w = gen.word_ids[0][i]
        if w is not None:
            torch.testing.assert_close(al.scores[0, 0, w].float(), ref, atol=1e-5, rtol=1e-4)


def test_alignment_view_marks_gold_and_predicted() -> None:
    import matplotlib

    from probe.viewers import alignment_view

    matplotlib.use("Agg")
    m = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    fig = alignment_view(m, ["x", "y"], ["a", "b", "c"], gold={(0, 0), (1, 1)},
                         predicted={(0, 0), (1, 2)}, model_name="toy", layer=1, head=2)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "source word" and ax.get_ylabel() == "target word"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    gold_boxes = [p for p in ax.patches if p.get_label() == "gold"]
    centres = sorted((p.get_xy()[1] + 0.5, p.get_xy()[0] + 0.5) for p in gold_boxes)
    assert centres == [(0, 0), (1, 1)]
    offsets = ax.collections[0].get_offsets().tolist()
    assert sorted(offsets) == [[0.0, 0.0], [2.0, 1.0]]
    with pytest.raises(probe.ProbeError, match="outside"):
        alignment_view(m, ["x", "y"], ["a", "b", "c"], gold={(2, 0)})
    with pytest.raises(probe.ProbeError, match="do not label"):
        alignment_view(m, ["x"], ["a", "b", "c"])


def test_alignment_batch_index_out_of_range_is_refused_not_wrapped() -> None:
    model, tok = _tiny_marian_with_words()
    gen = probe.generate(model, ["the big dog sees a ice cream", "a cat likes the tea pot"],
                         tokenizer=tok, max_new_tokens=3, eos_token_id=None, min_new_tokens=3)
    assert probe.alignment(gen, -1).source_words == probe.alignment(gen, 1).source_words
    span = r"0\.\.1 \(or -2\.\.-1 from the end\)"  # the views' one shared check
    for bad in (2, 5, -3):
        with pytest.raises(probe.ProbeError, match=rf"^batch_index must be in {span}, got {bad}$"):
            probe.alignment(gen, bad)
        with pytest.raises(probe.ProbeError, match=rf"^batch_index must be in {span}, got {bad}$"):
            probe.gradient_alignment(model, gen, bad)
    with pytest.raises(probe.ProbeError, match=rf"^batch_index must be an integer in {span}, "):
        probe.alignment(gen, True)


def test_alignment_without_generated_words_says_why_when_the_tokenizer_was_given() -> None:
    """Generated tokens that are not how the tokenizer writes their text (here pieces without
    the word marker: 'e' 'e' 'e' decodes to 'eee', which encodes as '▁eee' pieces) have no
    trustworthy words: the error says so, not "pass text and tokenizer=" (they were passed)."""
    from transformers import T5Config, T5ForConditionalGeneration

    from tests._tokenizers import sentencepiece_unigram

    tok = sentencepiece_unigram()
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
        num_heads=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)).eval()
    e = tok.convert_tokens_to_ids("e")
    gen = probe.generate(model, "The cat sat on the mat.", tokenizer=tok, max_new_tokens=3,
                         prefix_allowed_tokens_fn=lambda _b, _ids: [e])
    assert gen.prompt_words is not None and gen.words_missing[0] is not None
    for call in (lambda: probe.alignment(gen), lambda: probe.gradient_alignment(model, gen)):
        with pytest.raises(probe.ProbeError, match=r"generated tokens .* not how the tokenizer "
                                                   r"writes .*gen\.cross\.attentions"):
            call()
