"""Sanity checks (cascading randomisation) on CNNs: the cascade walks residual blocks."""

from __future__ import annotations

import json

import pytest
import torch

from probe._errors import ProbeError
from probe.evaluation._sanity import ORIGINAL, cascade_order, sanity_check


@pytest.fixture(scope="module")
def cnn_shapes():
    from probe.models._cnn_shapes import load_cnn_shapes
    from probe.models._shapes import make_shapes

    return load_cnn_shapes().eval(), make_shapes(3, seed=20_000, image_size=32).images


def _covers_every_parameter_once(model: torch.nn.Module) -> None:
    order = cascade_order(model)
    listed = [p for _, params in order for p in params]
    assert sorted(listed) == sorted(n for n, _ in model.named_parameters())


def test_order_of_cnn_shapes_is_head_blocks_stem(cnn_shapes) -> None:
    model, _ = cnn_shapes
    order = cascade_order(model)
    assert [s for s, _ in order] == ["fc", "layer4.0", "layer3.0", "layer2.0", "layer1.0", "stem"]
    block = dict(order)["layer4.0"]
    assert set(block) == {n for n, _ in model.named_parameters() if n.startswith("layer4.0.")}
    assert all(p.startswith(("conv1.", "bn1.")) for p in dict(order)["stem"])
    _covers_every_parameter_once(model)


@pytest.mark.parametrize(
    ("name", "head", "top_blocks", "bottom"),
    [
        ("resnet18", ["fc"], ["layer4.1", "layer4.0", "layer3.1"], ["layer1.1", "layer1.0"]),
        ("efficientnet_b0", ["classifier", "bn2", "conv_head"], ["blocks.6.0", "blocks.5.3"],
         ["blocks.1.0", "blocks.0.0"]),
        ("convnext_atto", ["head.fc", "head.norm"], ["stages.3.blocks.1", "stages.3.blocks.0",
                                                     "stages.3.downsample.1"],
         ["stages.0.blocks.1", "stages.0.blocks.0"]),
        ("regnetx_002", ["head.fc"], ["s4.b7", "s4.b6"], ["s2.b1", "s1.b1"]),
    ],
)
def test_order_of_timm_cnns(name, head, top_blocks, bottom) -> None:
    import timm

    model = timm.create_model(name, pretrained=False, num_classes=3)
    steps = [s for s, _ in cascade_order(model)]
    assert steps[: len(head) + len(top_blocks)] == head + top_blocks
    assert steps[-len(bottom) - 1 :] == [*bottom, "stem"]
    _covers_every_parameter_once(model)


def test_cnn_without_stages_is_refused_clearly() -> None:
    import timm

    model = timm.create_model("vgg11", pretrained=False, num_classes=3)
    with pytest.raises(ProbeError, match=r"cannot find the stages of vgg11 .*one residual block"):
        cascade_order(model)


def test_cascade_on_trained_cnn_shapes(cnn_shapes) -> None:
    model, images = cnn_shapes
    before = {k: v.clone() for k, v in model.state_dict().items()}
    methods = ["gradcam", "random", ("cbam-spatial", {"stage": 0}),
               ("cbam-spatial", {"stage": 3})]
    result = sanity_check(model, images, methods, seed=0)
    assert result.steps == (ORIGINAL, "fc", "layer4.0", "layer3.0", "layer2.0", "layer1.0",
                            "stem")
    corr = {k: v.tolist() for k, v in result.correlations.items()}
    # a stage's gate is computed before every later block and the head: randomising those
    # cannot move it, exactly
    assert corr["cbam-spatial[stage=3]"][:2] == [1.0, 1.0]
    assert corr["cbam-spatial[stage=0]"][:5] == [1.0] * 5
    assert corr["cbam-spatial[stage=3]"][2] < 0.5  # its own block randomised
    assert corr["random"] == [1.0] * 7  # the model-independent control
    assert corr["gradcam"][0] == 1.0 and max(corr["gradcam"][1:]) < 0.9  # reacts to the head
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_eval_sanity_on_cnn_defaults_and_choices(cnn_shapes) -> None:
    from probe.evaluation.tasks._sanity import _runs, eval_sanity

    model, _ = cnn_shapes
    labels = list(_runs(model, (), None))
    assert labels == [
        "cbam-spatial[stage=0]", "cbam-spatial[stage=1]", "cbam-spatial[stage=2]",
        "cbam-spatial[stage=3]", "cbam-spatial[stage=None]", "gradcam", "ig[n_steps=16]",
        "random", "saliency", "inputxgrad",
    ]
    assert _runs(model, (), {"ig": {"n_steps": 4}})["ig[n_steps=4]"] == ("ig", {"n_steps": 4})
    with pytest.raises(ProbeError, match="unknown method 'gradkam': did you mean 'gradcam'"):
        _runs(model, ("gradkam",), None)
    result = eval_sanity(model, n=2, seed=0, methods=["gradcam", "random", "rollout"],
                         batch_size=2)
    assert set(result["methods"]) == {"gradcam", "random"}
    assert "convolutional network" in result["skipped"]["rollout"]
    assert result["methods"]["gradcam"]["steps"][-1] == "stem"
    assert result["methods"]["random"]["spearman"] == [1.0] * 7


def test_cli_sanity_on_cnn_shapes(tmp_path, capsys) -> None:
    from probe.cli import main

    out = tmp_path / "s.json"
    code = main(["eval", "sanity", "--model", "cnn-shapes", "--n", "2", "--batch-size", "2",
                 "--method", "cbam-spatial", "--method", "random", "--json", str(out),
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["model"] == "cnn-shapes" and set(result["methods"]) == {"cbam-spatial",
                                                                          "random"}
    assert main(["eval", "sanity", "--model", "cnn-shapes", "--n", "1", "--method", "rollout",
                 "--method", "random", "--quiet"]) == 0
    assert "Skipped rollout: " in capsys.readouterr().out


def test_cli_sanity_where_no_method_runs_is_an_error(tmp_path, capsys) -> None:
    """Only methods the CNN refuses: exit 2 with one line (not an empty table, exit 0), no JSON."""
    from probe.cli import main

    out = tmp_path / "s.json"
    code = main(["eval", "sanity", "--model", "cnn-shapes", "--n", "1", "--method", "rollout",
                 "--json", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("probe: error: no method could run the sanity check (rollout: ")
    assert "probe models --methods" in err and err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cnn_without_input_size_is_refused_clearly() -> None:
    import timm

    from probe.evaluation.tasks._sanity import eval_sanity

    model = timm.create_model("resnet18", pretrained=False, num_classes=4)
    model.pretrained_cfg = {}
    with pytest.raises(ProbeError, match=r"cannot tell the input size .*pretrained_cfg"):
        eval_sanity(model, n=1, methods=["random"])
