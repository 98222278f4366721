"""``probe eval``: metric math on constructed maps, JSON schemas on tiny models, shipped data."""

from __future__ import annotations

import configparser
import json
import math
from pathlib import Path

import pytest
import torch

from probe._errors import ProbeError
from probe.evaluation.tasks import (
    CHEFER_ORDER,
    PUBLISHED_REFERENCE,
    QUICK_N,
    chefer_ordering,
    load_sentence_pairs,
    mass_on_object,
    object_patch_mask,
    pointing_game,
    to_patch_grid,
)
from probe.cli import main
from probe.commands._eval import EvalArgs, run_eval

ROOT = Path(__file__).resolve().parents[1]
PAIRS_FILE = ROOT / "probe" / "models" / "data" / "sentence_pairs.json"


@pytest.fixture(autouse=True, scope="module")
def _one_intra_op_thread():
    """The evals run many small forward passes; on a shared CPU, OpenMP threads spin-waiting
    for each other make them about 10x slower, so this module runs with one thread (restored)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_vit() -> torch.nn.Module:
    """A random-init timm ViT shaped like vit-shapes: 32x32 input, 4x4 patches, 4 classes."""
    import timm

    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, embed_dim=32,
        depth=2, num_heads=2, mlp_ratio=2.0, num_classes=4,
    ).eval()


# --------------------------------------------------------------------------- to_patch_grid
def test_average_pooling_of_a_pixel_map_by_hand():
    pixels = torch.arange(16, dtype=torch.float64).reshape(1, 4, 4)
    # patches of 2x2 pixels: top-left {0,1,4,5}, top-right {2,3,6,7}, ...
    expected = torch.tensor([[[2.5, 4.5], [10.5, 12.5]]], dtype=torch.float64)
    assert torch.equal(to_patch_grid(pixels, (2, 2)), expected)
    # non-square patches: 4x4 pixels on a 2x1 grid average 2x4 blocks
    column = torch.tensor([[[3.5], [11.5]]], dtype=torch.float64)
    assert torch.equal(to_patch_grid(pixels, (2, 1)), column)
    # channels are summed before pooling
    rgb = torch.stack([pixels[0], pixels[0], torch.zeros(4, 4, dtype=torch.float64)])[None]
    assert torch.equal(to_patch_grid(rgb, (2, 2)), 2 * expected)


def test_patch_scores_are_reshaped_row_major_and_inputs_untouched():
    scores = torch.arange(6.0).reshape(1, 6)
    before = scores.clone()
    grid = to_patch_grid(scores, (2, 3))
    assert torch.equal(grid, torch.tensor([[[0.0, 1, 2], [3, 4, 5]]], dtype=torch.float64))
    grid[0, 0, 0] = 99
    assert torch.equal(scores, before)
    on_grid = torch.rand(2, 2, 3)
    assert torch.allclose(to_patch_grid(on_grid, (2, 3)), on_grid.double())


def test_to_patch_grid_rejects_maps_that_do_not_fit():
    with pytest.raises(ProbeError, match="multiple of the grid"):
        to_patch_grid(torch.rand(1, 5, 4), (2, 2))
    with pytest.raises(ProbeError, match="rows \\* cols"):
        to_patch_grid(torch.rand(1, 5), (2, 2))
    with pytest.raises(ProbeError, match="grid"):
        to_patch_grid(torch.rand(1, 4), (2, 0))


# --------------------------------------------------------------------------- object patches
def test_object_patch_mask_by_hand():
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 1, 1] = True  # one pixel in the top-left patch
    mask[0, 3, 2:] = True  # bottom row of the bottom-right patch
    expected = torch.tensor([[[True, False], [False, True]]])
    assert torch.equal(object_patch_mask(mask, (2, 2)), expected)


def test_map_equal_to_the_mask_scores_one():
    from probe.models._shapes import make_shapes

    data = make_shapes(64, seed=3)
    maps = to_patch_grid(data.masks.float(), (8, 8))  # pixel map -> average pooled
    patches = object_patch_mask(data.masks, (8, 8))
    assert pointing_game(maps, data.masks).all()
    assert torch.allclose(mass_on_object(maps, patches), torch.ones(64, dtype=torch.float64))


# --------------------------------------------------------------------------- chance levels
def test_random_maps_score_the_object_patch_fraction_on_average():
    from probe.models._shapes import make_shapes

    data = make_shapes(200, seed=5)
    patches = object_patch_mask(data.masks, (8, 8))
    p = patches.flatten(1).double().mean(1)  # per-image chance of a hit, [200]
    repeats = 40
    gen = torch.Generator().manual_seed(0)
    hits, mass = [], []
    for r in range(repeats):
        maps = torch.rand(200, 8, 8, generator=gen)
        hits.append(pointing_game(maps, data.masks, seed=r).double())
        mass.append(mass_on_object(maps, patches))
    hit_rate = torch.stack(hits).mean()
    # pointing: mean of Bernoulli(p_i) draws; 4 standard errors
    se = math.sqrt(float((p * (1 - p)).sum()) * repeats) / (200 * repeats)
    assert abs(float(hit_rate) - float(p.mean())) < 4 * se
    # mass of an iid map: E[sum_obj r / sum r] = k / N exactly; its spread is small
    assert abs(float(torch.stack(mass).mean()) - float(p.mean())) < 0.01


def test_ties_are_broken_at_random_not_by_position():
    mask = torch.zeros(400, 8, 8, dtype=torch.bool)
    mask[:, :4, :4] = True  # the object covers the top-left quarter (where argmax would land)
    hits = pointing_game(torch.zeros(400, 2, 2), mask)
    assert 0.15 < float(hits.double().mean()) < 0.35  # 1 of 4 patches
    assert torch.equal(hits, pointing_game(torch.zeros(400, 2, 2), mask))  # seeded


def test_mass_ignores_negative_scores_and_is_nan_without_positive_mass():
    maps = torch.tensor([[[1.0, -5.0], [3.0, 0.0]], [[-1.0, -2.0], [0.0, -3.0]]])
    patches = torch.tensor([[[True, True], [False, False]]] * 2)
    mass = mass_on_object(maps, patches)
    assert mass[0] == pytest.approx(0.25)
    assert math.isnan(float(mass[1]))


def test_signed_maps_point_with_their_most_positive_patch():
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True
    maps = torch.tensor([[[0.5, -9.0], [0.1, 0.0]]])
    assert pointing_game(maps, mask).tolist() == [True]


# --------------------------------------------------------------------------- chefer
def test_chefer_ordering_reproduced_partly_and_undefined():
    order = list(CHEFER_ORDER)
    deletion = {m: 0.1 * (i + 1) for i, m in enumerate(order)}
    insertion = {m: 1.0 - 0.1 * i for i, m in enumerate(order)}
    ok = chefer_ordering(deletion, insertion)
    assert ok["reproduced"] is True and ok["concordant_pairs"] == {"deletion": 6, "insertion": 6}
    swapped = {**insertion, "relevance": insertion["rollout"] - 0.05}
    part = chefer_ordering(deletion, swapped)
    assert part["reproduced"] is False and part["deletion_reproduced"] is True
    assert part["insertion_order"][:2] == ["rollout", "relevance"]
    assert part["concordant_pairs"]["insertion"] == 5
    none = chefer_ordering({"rollout": 0.1}, {"rollout": 0.2})
    assert none["reproduced"] is None and "relevance" in none["explanation"]
    ref = PUBLISHED_REFERENCE
    assert ref["positive_perturbation_auc_lower_is_better"]["gradcam"] == 34.06
    assert ref["negative_perturbation_auc_higher_is_better"]["relevance"] == 54.16


# --------------------------------------------------------------------------- faithfulness
def test_faithfulness_json_schema_covers_every_registered_method(tmp_path, capsys):
    from probe.attribution._registry import list_methods, register_method

    @register_method("test-center", modalities=("vision",))  # unregistered by conftest.py
    def _center(ctx):  # a new method: must show up in the eval without any change to it
        return -torch.cdist(  # [batch, 64]: closeness to the grid centre
            torch.cartesian_prod(torch.arange(8.0), torch.arange(8.0)), torch.tensor([[3.5, 3.5]])
        )[:, 0].expand(ctx.inputs.shape[0], 64)

    model = tiny_vit()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = tmp_path / "sub" / "faith.json"
    rc = run_eval(EvalArgs(task="faithfulness", n=2, quick=True, quiet=True, json=str(out)),
                  model=model, options={"ig": {"n_steps": 4}})
    methods = list_methods("vision")
    assert rc == 0
    result = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "| method | pointing game" in printed and "Chefer et al. 2021" in printed
    assert result["task"] == "faithfulness" and result["n"] == 2 and result["quick"] is True
    assert result["seed"] == 0 and result["image_seed"] >= 20_000
    assert set(result["versions"]) >= {"torch", "transformers", "timm", "captum", "probe"}
    assert 0.0 <= result["model_accuracy"] <= 1.0
    assert result["grid"] == [8, 8]
    assert set(result["methods"]) | set(result["skipped"]) == set(methods)
    assert "test-center" in result["methods"] and "flow" in result["methods"]  # CLS row only
    for name, entry in result["methods"].items():
        for key in ("pointing_game", "mass_on_object", "deletion_auc", "insertion_auc",
                    "seconds_per_image"):
            assert entry[key] is None or isinstance(entry[key], float), (name, key)
        assert 0.0 <= entry["pointing_game"] <= 1.0
        assert entry["seconds_per_image"] > 0
    center = result["methods"]["test-center"]
    assert center["mass_on_object_n"] == 0 and center["mass_on_object"] is None  # all <= 0
    assert result["published_reference"]["source"].startswith("Chefer")
    assert isinstance(result["chefer_ordering"]["reproduced"], bool)
    assert set(result["protocol"]) >= {"pointing_game", "mass_on_object", "deletion_insertion"}
    assert result["protocol"]["method_options"] == {"ig": {"n_steps": 4}}
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not model.training


def test_quick_and_default_sizes(monkeypatch):
    import probe.evaluation.tasks as ev

    seen = {}
    monkeypatch.setattr(ev, "eval_faithfulness", lambda model, **kw: seen.update(kw) or {})
    monkeypatch.setattr(ev, "faithfulness_markdown", lambda result: "")
    run_eval(EvalArgs(task="faithfulness", quick=True), model=torch.nn.Identity())
    assert seen["n"] == QUICK_N["faithfulness"] == 48
    run_eval(EvalArgs(task="faithfulness"), model=torch.nn.Identity())
    assert seen["n"] >= 500
    run_eval(EvalArgs(task="faithfulness", quick=True, n=7), model=torch.nn.Identity())
    assert seen["n"] == 7


def test_bad_input_is_a_one_line_probe_error(capsys):
    model = tiny_vit()
    with pytest.raises(ProbeError, match="--n"):
        run_eval(EvalArgs(task="faithfulness", n=0), model=model)
    with pytest.raises(ProbeError, match="--seed"):
        run_eval(EvalArgs(task="faithfulness", seed=-1), model=model)
    with pytest.raises(ProbeError, match="training seed"):
        run_eval(EvalArgs(task="faithfulness", n=1, seed=10_000), model=model)
    with pytest.raises(ProbeError, match="unknown method"):
        run_eval(EvalArgs(task="faithfulness", n=1, methods=("nope",)), model=model)
    with pytest.raises(ProbeError, match="tokenizer"):
        run_eval(EvalArgs(task="text", n=1), model=model)
    assert main(["eval", "faithfulness", "--model", "no-such-model", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("probe: error:")


# --------------------------------------------------------------------------- sanity
def test_sanity_json_schema(tmp_path, capsys):
    out = tmp_path / "sanity.json"
    methods = ("attention", "gradcam", "random", "flow")
    rc = run_eval(EvalArgs(task="sanity", n=2, quiet=True, json=str(out), methods=methods),
                  model=tiny_vit(), options={"flow": {"max_tokens": 8}})
    assert rc == 0
    result = json.loads(out.read_text())
    assert "| method | original | head |" in capsys.readouterr().out
    assert result["task"] == "sanity" and result["n"] == 2
    assert set(result["methods"]) == {"attention", "gradcam", "random"}
    assert set(result["skipped"]) == {"flow"}  # 65 tokens > max_tokens: reported, not dropped
    assert set(result["versions"]) >= {"torch", "transformers", "timm", "captum", "probe"}
    for entry in result["methods"].values():
        assert entry["steps"][:2] == ["original", "head"] and entry["steps"][-1] == "embeddings"
        assert len(entry["spearman"]) == len(entry["steps"]) == len(entry["spearman_se"])
        assert entry["spearman"][0] == pytest.approx(1.0)  # deterministic methods
    # a model-independent map cannot react to randomisation: the negative control
    assert result["methods"]["random"]["fully_random"] == pytest.approx(1.0)
    # attention ignores the classifier head entirely: randomising it changes nothing
    assert result["methods"]["attention"]["after_first_step"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- text
def test_sentence_pairs_ship_as_package_data():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "data/*.json" in cfg["options.package_data"]["probe.models"]
    raw = json.loads(PAIRS_FILE.read_text(encoding="utf-8"))
    pairs = load_sentence_pairs()
    assert pairs == raw["pairs"] and 20 <= len(pairs) <= 30
    assert len({p["id"] for p in pairs}) == len(pairs)
    kinds = {p["kind"] for p in pairs}
    assert kinds == {"paraphrase", "related", "coreference"}
    for p in pairs:
        assert p["first"].strip() and p["second"].strip() and p["first"] != p["second"]
        if p["kind"] == "coreference":
            words = p["first"].rstrip(".").replace(",", "").split()
            assert p["pronoun"] in words and p["antecedent"] in words, p["id"]
    with pytest.raises(ProbeError, match="cannot read"):
        load_sentence_pairs(PAIRS_FILE.parent / "missing.json")


def test_sentence_pairs_fit_exact_attention_flow(minilm):
    from probe.analysis._flow import DEFAULT_MAX_TOKENS

    _, tokenizer = minilm
    for p in load_sentence_pairs():
        assert len(tokenizer(p["first"])["input_ids"]) <= DEFAULT_MAX_TOKENS, p["id"]


def test_text_json_schema(minilm, tmp_path, capsys):
    model, tokenizer = minilm
    out = tmp_path / "text.json"
    rc = run_eval(EvalArgs(task="text", n=1, quiet=True, json=str(out), methods=("attention",)),
                  model=model, tokenizer=tokenizer, options={"ig": {"n_steps": 8}})
    assert rc == 0
    result = json.loads(out.read_text())
    assert "Spearman vs abs(IG)" in capsys.readouterr().out
    assert result["task"] == "text" and result["n"] == 1 and result["pairs"] == ["para-01"]
    assert set(result["methods"]) == {"attention", "ig"}  # IG always runs: it is the reference
    att = result["methods"]["attention"]
    for key in ("spearman_vs_ig", "kendall_vs_ig", "comprehensiveness", "sufficiency"):
        assert isinstance(att[key], float)
    assert -1.0 <= att["spearman_vs_ig"] <= 1.0
    assert result["methods"]["ig"]["spearman_vs_ig"] == 1.0
    assert set(result["random_orders"]) == {"comprehensiveness", "sufficiency"}
    assert set(result["versions"]) >= {"torch", "transformers", "timm", "captum", "probe"}


def test_text_method_failing_on_one_pair_is_reported_per_pair(minilm):
    from probe.attribution._registry import register_method
    from probe.evaluation.tasks import eval_text

    @register_method("test-short-only", modalities=("text",))  # unregistered by conftest.py
    def _short_only(ctx):  # refuses long inputs, like exact attention flow
        tr = ctx.trace()
        if tr.seq_len > 8:
            raise ProbeError("too long for test-short-only")
        return torch.ones(tr.batch_size, tr.seq_len)

    pairs = [
        {"id": "short", "first": "Dogs bark.", "second": "A dog barks."},
        {"id": "long", "first": "The old bridge over the river was closed for repairs.",
         "second": "Drivers took a detour."},
    ]
    model, tokenizer = minilm
    result = eval_text(model, tokenizer, pairs=pairs, methods=("test-short-only",),
                       options={"ig": {"n_steps": 2}})
    entry = result["methods"]["test-short-only"]
    assert entry["n"] == 1 and result["methods"]["ig"]["n"] == 2
    assert result["failed_pairs"] == {"test-short-only": {"long": "too long for test-short-only"}}
    assert entry["spearman_vs_ig"] is None or math.isnan(entry["spearman_vs_ig"])  # constant map
    assert result["skipped"] == {}
