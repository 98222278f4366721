"""Faithfulness, ERASER and curve numbers pinned to the values main computed before the
argument plumbing of ``_curves``/``_eraser``/``_faithfulness`` was shared (every setting passed
with a non-default value, so a setting routed to the wrong place changes a number)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from probe.attribution._registry import Attribution
from probe.evaluation._curves import deletion_curve, insertion_curve
from probe.evaluation._eraser import comprehensiveness, eraser, sufficiency
from probe.evaluation._faithfulness import faithfulness

F64 = dict(dtype=torch.float64)


class _PatchModel(nn.Module):
    """Three classes from fixed per-patch weights over a 4x4 grid of 2x2-pixel patches."""

    def __init__(self) -> None:
        super().__init__()
        w = torch.linspace(-1.0, 1.0, 3 * 16, **F64).reshape(3, 16)
        self.w = nn.Parameter(w.roll(5, 1) * torch.tensor([[1.0], [-0.5], [0.25]], **F64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = F.avg_pool2d(x.double().mean(1, keepdim=True), 2)[:, 0].flatten(1)  # [B, 16]
        return e @ self.w.T  # [B, 3]


def _setup() -> tuple[nn.Module, torch.Tensor, torch.Tensor, Attribution]:
    model = _PatchModel().eval()
    x = (torch.arange(3 * 3 * 8 * 8, **F64).reshape(3, 3, 8, 8) % 7 / 7).float()
    scores = torch.cos(torch.arange(3 * 16, **F64)).reshape(3, 16)
    attr = Attribution(scores=-scores, method="toy", modality="vision", grid=(4, 4))
    return model, x, scores, attr


# computed on main at b23b91b (before the plumbing was shared)
DELETION_AUC = [0.600826382437219, 0.58158404358699, 0.6553793218290659]
DELETION_MID = [0.6354483432988538, 0.5667426676377125, 0.703267493985382]
INSERTION_AUC = [0.7626116612728395, 0.7645420003530417, 0.7666624065841025]
COMP = [0.16232903226417422, 0.32522797234792344, 0.1847137833040552]
SUFF = [0.9560537219364592, 0.7900202833512362, 0.7880572655191976]
TABLE_COMP = [0.32832025521793723, 0.38151174493631607]
TABLE_SUFF = [0.8356235427903034, 0.7824320530719245]
RANDOM_COMP = 0.37913184797547617
RANDOM_SUFF = 0.7848119500327644
FAITH_DEL = [0.5559759655660217]
FAITH_INS = [0.607967832442219]
RANDOM_DEL = 0.5656456526370447
RANDOM_INS = 0.598298145371196

SETTINGS = dict(target=2, baseline="zero", batch_size=5, output="logit")


def test_curves_pinned() -> None:
    model, x, scores, attr = _setup()
    dele = deletion_curve(model, x, scores, steps=4, grid=(4, 4), **SETTINGS)
    ins = insertion_curve(model, x, attr, steps=3, baseline="mean", output="probability")
    assert dele.method == "" and ins.method == attr.label
    assert_close(dele.auc, torch.tensor(DELETION_AUC, **F64))
    assert_close(dele.values[:, 2], torch.tensor(DELETION_MID, **F64))
    assert_close(ins.auc, torch.tensor(INSERTION_AUC, **F64))


def test_eraser_pinned() -> None:
    model, x, scores, attr = _setup()
    comp = comprehensiveness(model, x, scores, bins=(0.1, 0.3), grid=(4, 4), **SETTINGS)
    suff = sufficiency(model, x, attr, bins=(0.2,), **SETTINGS)
    assert_close(comp, torch.tensor(COMP, **F64))
    assert_close(suff, torch.tensor(SUFF, **F64))
    table = eraser(
        model, x, {"a": scores, "b": attr}, bins=(0.1, 0.5), n_random=2, seed=7, **SETTINGS
    )
    assert_close(table.comprehensiveness, torch.tensor(TABLE_COMP, **F64))
    assert_close(table.sufficiency, torch.tensor(TABLE_SUFF, **F64))
    assert table.random_comprehensiveness == pytest.approx(RANDOM_COMP, abs=1e-12)
    assert table.random_sufficiency == pytest.approx(RANDOM_SUFF, abs=1e-12)
    assert (table.bins, table.n_random, table.seed, table.baseline) == ((0.1, 0.5), 2, 7, "zero")


def test_faithfulness_pinned() -> None:
    model, x, scores, attr = _setup()
    table = faithfulness(
        model, x, [attr], steps=6, n_random=3, seed=11, grid=(4, 4), **SETTINGS
    )
    assert table.methods == (attr.label,)
    assert_close(table.deletion_auc, torch.tensor(FAITH_DEL, **F64))
    assert_close(table.insertion_auc, torch.tensor(FAITH_INS, **F64))
    assert table.random_deletion_auc == pytest.approx(RANDOM_DEL, abs=1e-12)
    assert table.random_insertion_auc == pytest.approx(RANDOM_INS, abs=1e-12)
    assert (table.steps, table.n_random, table.seed, table.baseline) == (6, 3, 11, "zero")
