"""The trained toy-mt model: it loads offline, translates held-out sentences, its alignment is
scored by probe eval alignment, and the recipe trains deterministically (slow)."""

from __future__ import annotations

import json

import pytest
import torch

import probe
from probe.models._translation import toy_split

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def toy_mt():
    return probe.load_model("toy-mt")


def test_loads_offline_and_translates_held_out(toy_mt) -> None:
    model, tok = toy_mt
    assert model.probe_name == "toy-mt" and not model.training
    assert "toy-mt" in probe.list_models()
    test = toy_split()[1][:40]
    gen = probe.generate(model, [p.source_text for p in test], tokenizer=tok, max_new_tokens=24)
    hits = sum(t == p.target_text for t, p in zip(gen.text, test))
    assert hits >= 38, hits  # near-perfect held-out translation


def test_generation_words_match_the_gold_pair(toy_mt) -> None:
    model, tok = toy_mt
    pair = toy_split()[1][0]
    gen = probe.generate(model, pair.source_text, tokenizer=tok, max_new_tokens=24)
    al = probe.alignment(gen)
    assert al.source_words == pair.source and al.target_words == pair.target
    assert al.scores.shape == (2, 4, len(pair.target), len(pair.source))


def test_eval_alignment_quick(toy_mt, tmp_path, capsys) -> None:
    from probe.commands._eval import EvalArgs, run_eval

    model, tok = toy_mt
    out = tmp_path / "align.json"
    assert run_eval(EvalArgs(task="alignment", json=str(out), n=12, quiet=True),
                    model=model, tokenizer=tok) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 12 and result["n_exact"] >= 11
    assert len(result["heads"]) == 8 and set(result["layers"]) == {"L0", "L1"}
    for key in ("fused", "saliency", "grad_x_input", "random", "best_head"):
        r = result[key]
        assert 0.0 <= r["ci_low"] <= r["aer"] <= r["ci_high"] <= 1.0
    best = result["best_head"]["aer"]
    assert best == min(v["aer"] for v in result["heads"].values())
    assert "| random |" in capsys.readouterr().out


def test_eval_alignment_cli_errors(capsys) -> None:
    from probe.cli import main

    assert main(["eval", "alignment", "--method", "saliency", "--n", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--method" in err[0]


@pytest.mark.slow
def test_recipe_is_deterministic_and_reaches_the_shipped_accuracy(tmp_path) -> None:
    from probe.recipes.train_toy_mt import save, train

    a = train(steps=150, log=lambda *_: None)
    b = train(steps=150, log=lambda *_: None)
    for (n1, p1), (n2, p2) in zip(a[0].state_dict().items(), b[0].state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    save(*a, tmp_path / "w.safetensors", tmp_path / "tok.json")
    assert (tmp_path / "w.safetensors").stat().st_size < 3_000_000
