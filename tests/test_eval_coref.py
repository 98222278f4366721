"""``probe eval coref``: scoring by hand on constructed attention, statistics against scipy
and by hand, the shipped minimal pairs, user files and the command line on MiniLM."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from probe._errors import ProbeError
from probe.cli import main
from probe.evaluation.tasks import coref_markdown, eval_coref, load_coref_pairs, parse_coref_lines
from probe.evaluation.tasks._coref import score_trace
from tests._factories import make_trace

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- by hand
def _hand_trace(sentence: str, correct: str) -> object:
    """Words "Alpha Beta it": head 0 attends from "it" to the correct antecedent, head 1 to
    the nearer noun (Beta, a positional head), head 2 to the first noun (Alpha)."""
    words = sentence.split()
    correct_i = [w.lower() for w in words].index(correct.lower())
    att = torch.eye(3, dtype=torch.float64).repeat(3, 1, 1)
    for head, target in ((0, correct_i), (1, 1), (2, 0)):
        att[head, 2] = torch.tensor([0.3, 0.3, 0.1], dtype=torch.float64)
        att[head, 2, target] = 0.6
    return make_trace(att[None, None], tokens=words, words=words, word_ids=[0, 1, 2])


def _hand_pairs(n: int) -> list[dict]:
    return [
        {"id": f"p{i}", "items": [
            {"sentence": f"Alpha{i} Beta{i} it", "pronoun": "it", "correct": f"alpha{i}",
             "distractor": f"Beta{i}"},
            {"sentence": f"Alpha{i} Beta{i} it", "pronoun": "IT", "correct": f"beta{i}",
             "distractor": f"alpha{i}"},
        ]}
        for i in range(n)
    ]


@pytest.fixture
def hand_capture(monkeypatch):
    """``probe.trace`` replaced by hand-built traces keyed by (sentence, correct)."""
    import probe.capture._capture as capture_module

    pending: list[str] = []

    def fake_trace(model, sentence, tokenizer=None):
        return _hand_trace(sentence, pending.pop(0))

    monkeypatch.setattr(capture_module, "trace", fake_trace)
    return pending


def test_score_trace_by_hand():
    item = {"sentence": "Alpha Beta it", "pronoun": "it", "correct": "alpha",
            "distractor": "beta"}
    scored = score_trace(_hand_trace("Alpha Beta it", "alpha"), item)
    assert scored["heads"] == [True, False, True]
    assert scored["margin"] == pytest.approx([0.3, -0.3, 0.3])
    # rollout of one layer: the mean head sends 0.5 to Alpha and 0.4 to Beta
    assert scored["rollout"] is True and scored["nearest"] is False
    with pytest.raises(ProbeError, match="'gamma' is not a word"):
        score_trace(_hand_trace("Alpha Beta it", "alpha"), {**item, "correct": "gamma"})


def test_positional_heads_score_exactly_half_and_no_pair(hand_capture):
    pairs = _hand_pairs(10)
    hand_capture.extend(i["correct"] for p in pairs for i in p["items"])
    result = eval_coref(object(), object(), pairs=pairs, model_name="hand")
    coref_head, nearest_head, first_head = result["heads"]
    assert (coref_head["accuracy"], coref_head["pair_accuracy"]) == (1.0, 1.0)
    for positional in (nearest_head, first_head, result["nearest"]):
        assert (positional["accuracy"], positional["pair_accuracy"]) == (0.5, 0.0)
        assert positional["p_value"] == pytest.approx(1.0)
    # exact two-sided binomial by hand: 20 of 20 right
    assert coref_head["p_value"] == pytest.approx(2 * 0.5**20, rel=1e-9)
    assert result["best_head"]["head"] == 0
    assert result["best_head"]["bonferroni_p"] == pytest.approx(3 * 2 * 0.5**20, rel=1e-9)
    # two of three heads are right on every item, and so is the mean-fused rollout
    assert result["majority"]["accuracy"] == 1.0 and result["rollout"]["accuracy"] == 1.0
    assert len(result["held_out"]) == 2
    for fold in result["held_out"]:
        assert fold["head"] == 0 and fold["selection_pairs"] == 5
        assert fold["test"]["n"] == 10 and fold["test"]["accuracy"] == 1.0
    text = coref_markdown(result)
    assert "Bonferroni" in text and "Held out: L0 H0" in text and "nearer candidate" in text


def test_binomial_p_value_matches_the_exact_sum():
    from probe.evaluation.tasks._coref import _summary

    right = [[True, True]] * 20 + [[True, False]] * 11 + [[False, False]] * 15
    s = _summary(right)
    k, n = 51, 92
    assert (s["correct"], s["n"], s["pairs_both_right"]) == (k, n, 20)
    tail = sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n
    assert s["p_value"] == pytest.approx(min(1.0, 2 * tail), rel=1e-9)


# --------------------------------------------------------------------------- data
def test_shipped_pairs_are_minimal_pairs():
    pairs = load_coref_pairs()
    assert len(pairs) >= 40 and len({p["id"] for p in pairs}) == len(pairs)
    raw = json.loads((ROOT / "probe/models/data/coref_pairs.json").read_text(encoding="utf-8"))
    assert len(raw["pairs"]) == len(pairs)
    for p in pairs:
        a, b = p["items"]
        assert (a["correct"], a["distractor"]) == (b["distractor"], b["correct"]), p["id"]
        assert a["pronoun"] == b["pronoun"] and a["sentence"] != b["sentence"], p["id"]
        wa, wb = a["sentence"].split(), b["sentence"].split()
        # same length give or take one word: the sentences differ in one word or phrase
        assert abs(len(wa) - len(wb)) <= 1, p["id"]
        for item in (a, b):
            words = [w.strip(".,").lower() for w in item["sentence"].split()]
            pronoun = words.index(item["pronoun"].lower())
            for cand in (item["correct"], item["distractor"]):
                assert words.count(cand.lower()) == 1 and words.index(cand.lower()) < pronoun


def test_user_file_lines(tmp_path):
    text = ("# a comment\n\nThe cup did not fit in the box because it was big.|it|cup|box\n"
            "The cup did not fit in the box because it was small.|it|box|cup\n")
    pairs = parse_coref_lines(text)
    assert len(pairs) == 1 and pairs[0]["items"][1]["correct"] == "box"
    path = tmp_path / "pairs.txt"
    path.write_text(text, encoding="utf-8")
    assert load_coref_pairs(path) == pairs
    with pytest.raises(ProbeError, match="odd number"):
        parse_coref_lines(text.splitlines()[2])
    with pytest.raises(ProbeError, match="line 1: expected"):
        parse_coref_lines("The cup.|it|cup")
    with pytest.raises(ProbeError, match="cannot read"):
        load_coref_pairs(tmp_path / "missing.txt")


# --------------------------------------------------------------------------- MiniLM and CLI
def test_cli_coref_on_minilm(tmp_path, capsys):
    out = tmp_path / "coref.json"
    assert main(["eval", "coref", "--n", "2", "--quiet", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pair accuracy" in printed and "Held out" in printed
    # both folds on one line, told apart (with 1 pair a half they read alike: twice the line)
    assert printed.count("Held out") == 1
    held = next(line for line in printed.splitlines() if line.startswith("Held out: "))
    assert re.fullmatch(r"Held out: L\d+ H\d+ chosen on half A \(1 pair, accuracy [\d.]+\) "
                        r"scores [\d.]+ \(\d/2, .*\) on half B \(1 pair\); L\d+ H\d+ chosen on "
                        r"half B \(1 pair, .*\) on half A \(1 pair\)\.", held), held
    result = json.loads(out.read_text())
    assert result["task"] == "coref" and result["n_pairs"] == 2 and result["n"] == 4
    assert len(result["heads"]) == 72  # 6 layers x 12 heads
    assert result["pairs"] == [p["id"] for p in load_coref_pairs()[:2]]


def test_cli_coref_user_file_and_errors(tmp_path, capsys):
    data = tmp_path / "mine.txt"
    data.write_text("The cup did not fit in the box because it was big.|it|cup|box\n"
                    "The cup did not fit in the box because it was small.|it|box|cup\n")
    assert main(["eval", "coref", "--data", str(data), "--quiet"]) == 0
    assert "1 minimal pairs (2 sentences)" in capsys.readouterr().out
    bad = tmp_path / "bad.txt"
    bad.write_text("The cup.|it|cup|box\n")
    for argv, message in (
        (["eval", "coref", "--data", str(bad)], "odd number"),
        (["eval", "text", "--data", str(data)], "--data only applies to the coref eval"),
        (["eval", "coref", "--method", "rollout"], "drop --method/--option"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_every_shipped_item_resolves_on_minilm(minilm):
    """All shipped sentences tokenise into words that contain their pronoun and candidates
    (the full eval on MiniLM, about 15 s)."""
    model, tokenizer = minilm
    result = eval_coref(model, tokenizer, model_name="minilm")
    assert result["n"] == 2 * result["n_pairs"] >= 80
    assert result["nearest"]["accuracy"] == 0.5 and result["nearest"]["pair_accuracy"] == 0.0
