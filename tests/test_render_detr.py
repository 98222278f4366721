"""``probe render detr`` on a random-init DETR saved to a folder; HF ResNet backbones; scenes."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import DetrImageProcessor

import probe
from probe.analysis._detr import box_iou, match_detections
from probe.cli import main
from probe.models._images import DETR_EDGES, preprocess_image
from probe.models._scenes import make_scenes
from tests._tiny import resnet_detr as _resnet_detr


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("detr")
    _resnet_detr().save_pretrained(path)
    DetrImageProcessor(size={"shortest_edge": 48, "longest_edge": 80}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "wide.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 60, 3)) * 255).astype("uint8")).save(path)
    return path


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_render_detr_writes_the_figure(folder, image, tmp_path, capsys):
    rc, out, err = _run(["render", "detr", "--model", str(folder), "--image", str(image),
                         "--out", str(tmp_path), "--quiet", "--dpi", "60"], capsys)
    assert rc == 0, err
    [path] = [Path(p) for p in out.split()]
    assert path.parent == tmp_path and path.name.startswith("detr_") and "_L1_top_" in path.name
    with Image.open(path) as img:
        assert img.size[0] > 100
    rc, out, err = _run(["render", "detr", "--model", str(folder), "--image", str(image),
                         "--query", "3", "--query", "1", "--layer", "0", "--format", "svg",
                         "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    [path] = [Path(p) for p in out.split()]
    assert "_L0_q3-1_" in path.name and path.suffix == ".svg"
    svg = path.read_text()
    assert "q3 " in svg and "q1 " in svg  # panel titles: query index and class name


def test_render_detr_defaults_to_detr_shapes_on_a_generated_scene(tmp_path, capsys):
    rc, out, err = _run(["render", "detr", "--seed", "4", "--out", str(tmp_path), "--quiet",
                         "--dpi", "60"], capsys)
    assert rc == 0, err
    [path] = [Path(p) for p in out.split()]
    assert path.name.startswith("detr_detr-shapes_L1_top_scenes-seed4-")


def test_detr_processor_keeps_the_aspect_ratio(folder):
    model, processor = probe.load_model(str(folder))
    assert isinstance(processor, DetrImageProcessor)
    img = preprocess_image(np.zeros((40, 60, 3)), model, processor)
    assert tuple(img.pixel_values.shape) == (1, 3, 48, 72)  # shortest edge 48
    tall = preprocess_image(np.zeros((300, 60, 3)), model, processor)
    assert tuple(tall.pixel_values.shape) == (1, 3, 80, 16)  # longest edge capped at 80
    # without a preprocessor_config.json: DETR's default 800/1333 and ImageNet statistics
    plain = preprocess_image(np.full((40, 60, 3), 0.5), model, None)
    assert tuple(plain.pixel_values.shape) == (1, 3, DETR_EDGES[0], 1200)
    torch.testing.assert_close(
        plain.pixel_values[0, :, 0, 0],
        (127 / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]),
        atol=3e-3, rtol=0,
    )


@pytest.fixture(scope="module")
def deformable(tmp_path_factory) -> Path:
    from transformers import DeformableDetrConfig, DeformableDetrForObjectDetection

    cfg = DeformableDetrConfig(
        use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False, num_queries=4,
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_labels=2,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("deformable")
    DeformableDetrForObjectDetection(cfg).save_pretrained(path)
    return path


def test_render_detr_errors_are_one_line(folder, image, deformable, tmp_path, capsys):
    out_dir = tmp_path / "out"
    cases = [
        (["--model", "vit-shapes"], "needs a DETR object detector"),
        (["--model", str(deformable)], "not supported yet"),
        (["--model", str(folder), "--image", str(tmp_path / "missing.png")], "does not exist"),
        (["--model", str(folder), "--query", "4"], "--query 4 is out of range"),
        (["--model", str(folder), "--layer", "2"],
         "--layer: layer 2 is out of range: the model has 2 decoder layers (use -2..1; "),
        (["--model", str(folder), "--head", "0"],
         "--head does not apply to the detr view (it averages the heads"),
        (["--model", str(folder), "--method", "gradcam"], "--method does not apply"),
        (["--model", str(folder), "--format", "html", "--format", "png", "--query", "4"],
         "--query 4 is out of range"),
        (["--model", str(folder), "--format", "html", "--layer", "2"],
         "--layer: layer 2 is out of range: the model has 2 decoder layers (use -2..1; "),
        (["--model", str(folder), "--query", "1", "--query", "1"], "--query 1 is given twice"),
        (["--model", "minilm"], "needs a DETR detector (e.g. --model detr-shapes"),
    ]
    for argv, needle in cases:
        rc, out, err = _run(["render", "detr", *argv, "--out", str(out_dir), "--quiet"], capsys)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and needle in lines[0], (argv, err)
        assert not out_dir.exists() and not out
    rc, _, err = _run(["render", "heads", "--query", "1", "--text", "a b"], capsys)
    assert rc == 2 and "--query does not apply to the heads view: it is used by the detr and " \
        "window views only; drop it" in err
    # the gates view: a text model is named as such, and options it would ignore are errors
    for argv, needle in [
        (["--model", "minilm"],
         "needs a CNN with attention gates (e.g. --model cnn-shapes); minilm is a text model"),
        (["--layer", "9"], "--layer picks a stage in the gates view: stage 9 has no gates"),
        (["--head", "0"], "--head does not apply to the gates view"),
    ]:
        rc, out, err = _run(["render", "gates", *argv, "--out", str(out_dir), "--quiet"], capsys)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and needle in lines[0], (argv, err)
        assert not out_dir.exists() and not out


def test_render_detr_error_as_subprocess(deformable, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "probe.cli", "render", "detr", "--model", str(deformable),
         "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert "not supported yet" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("stage, grid", [(2, (8, 8)), (3, (4, 4))])
def test_hf_resnet_backbone_grid_and_exactness(stage, grid):
    model = _resnet_detr(stage)
    x = torch.randn(2, 3, 64, 61, generator=torch.Generator().manual_seed(1))
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        ref = eager(pixel_values=x, output_attentions=True)
    tr = probe.trace(model, x)
    assert tr.grid == grid and model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(tr.attentions, torch.stack(ref.encoder_attentions), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(tr.cross.attentions, torch.stack(ref.cross_attentions), rtol=1e-5,
                               atol=1e-6)


def test_make_scenes_is_deterministic_and_its_boxes_fit_the_masks():
    a, b = make_scenes(64, seed=5), make_scenes(64, seed=5)
    for name in ("images", "labels", "boxes", "masks"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.images, make_scenes(64, seed=6).images)
    counts = a.counts
    assert counts.min() >= 1 and counts.max() <= 3 and len(set(counts.tolist())) == 3
    for i in range(64):
        present = (a.labels[i] >= 0).nonzero().flatten().tolist()
        for j in present:
            ys, xs = a.masks[i, j].nonzero(as_tuple=True)
            cx, cy, w, h = (a.boxes[i, j] * 64).tolist()
            assert xs.min() >= cx - w / 2 and xs.max() < cx + w / 2  # mask inside its box
            assert ys.min() >= cy - h / 2 and ys.max() < cy + h / 2
        boxes = a.boxes[i, present]
        iou = box_iou(boxes, boxes) - torch.eye(len(present))
        assert iou.max() <= 0  # objects never overlap
        t = a.targets()[i]
        assert t["class_labels"].tolist() == a.labels[i, present].tolist()
    with pytest.raises(probe.ProbeError, match="objects"):
        make_scenes(2, objects=(0, 3))


def test_box_iou_and_match_detections_by_hand():
    gold = torch.tensor([[0.25, 0.25, 0.2, 0.2], [0.75, 0.75, 0.2, 0.2]])
    half = torch.tensor([[0.35, 0.25, 0.2, 0.2]])  # shifted by half a width: IoU 1/3
    torch.testing.assert_close(box_iou(half, gold[:1]), torch.tensor([[1 / 3]]))
    boxes = torch.cat([gold[1:], gold[:1], gold[:1], half])
    classes = torch.tensor([1, 0, 0, 0])
    scores = torch.tensor([0.9, 0.8, 0.95, 0.3])
    # query 2 (score 0.95) takes object 0 first; query 1 is a duplicate; query 3 is below 0.5
    assert match_detections(classes, scores, boxes, torch.tensor([0, 1]), gold) == [2, 0]
    assert match_detections(classes, scores, boxes, torch.tensor([1, 1]), gold) == [-1, 0]
    matched = match_detections(classes, scores, boxes, torch.tensor([0, 1]), gold, threshold=0.99)
    assert matched == [-1, -1]
