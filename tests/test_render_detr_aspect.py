"""``probe render detr`` draws a non-square image at its own aspect ratio, with the predicted
boxes and the attention maps on it where they belong.

The model's boxes are replaced by one known box, the red rectangle painted into the image; the
figure must show the image at its width:height, the box at the rectangle (relative
coordinates times the drawn size), the red pixels inside it, and the attention map over the
same extent as the image. detr-shapes squashes its input to a square (its fixed input size);
a DETR folder with a DetrImageProcessor keeps the ratio up to rounding of a tiny edge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import probe
import probe.viewers
from probe.capture.adapters._detr import HFDetr
from probe.cli import main

#: (height, width) of each test image and its red box (top, left, bottom, right) in pixels
CASES = {
    "wide": ((60, 540), (20, 100, 40, 160)),
    "tall": ((480, 40), (300, 10, 360, 30)),
}


def _image(tmp_path: Path, case: str) -> tuple[Path, tuple[float, float, float, float]]:
    (h, w), (top, left, bottom, right) = CASES[case]
    pixels = np.full((h, w, 3), 255, np.uint8)
    pixels[top:bottom, left:right] = (255, 0, 0)
    path = tmp_path / f"{case}.png"
    Image.fromarray(pixels).save(path)
    box = ((left + right) / 2 / w, (top + bottom) / 2 / h, (right - left) / w, (bottom - top) / h)
    return path, box


def _render(monkeypatch, tmp_path: Path, argv: list[str], box) -> list:
    """Run ``probe render detr`` with the model's boxes replaced by ``box``; the figures."""
    original = HFDetr.detection_outputs

    def known_box(self, output):
        logits, boxes = original(self, output)
        return logits, torch.tensor(box, dtype=boxes.dtype).expand_as(boxes).clone()

    figures = []
    view = probe.viewers.detr_queries_view

    def recorded(*args, **kwargs):
        figures.append(view(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(HFDetr, "detection_outputs", known_box)
    monkeypatch.setattr(probe.viewers, "detr_queries_view", recorded)
    assert main(["render", "detr", *argv, "--out", str(tmp_path / "out"), "--quiet",
                 "--dpi", "40"]) == 0
    assert figures
    return figures


def _check(fig, case: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patches import Rectangle

    (h, w), (top, left, bottom, right) = CASES[case]
    FigureCanvasAgg(fig).draw()
    panels = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]  # not the colourbar
    assert len(panels) == len(fig.axes) - 1
    for ax in panels:
        background, heat = ax.get_images()
        x0, x1, y1, y0 = background.get_extent()
        width, height = x1 - x0, y1 - y0
        assert heat.get_extent() == background.get_extent()  # the map covers the image
        assert width / height == pytest.approx(w / h, rel=0.03)  # the image's own ratio
        shown = ax.get_window_extent()
        assert shown.width / shown.height == pytest.approx(w / h, rel=0.03)
        [rect] = [p for p in ax.patches if isinstance(p, Rectangle)]
        drawn = (rect.get_y() / height, rect.get_x() / width,
                 (rect.get_y() + rect.get_height()) / height,
                 (rect.get_x() + rect.get_width()) / width)
        assert drawn == pytest.approx((top / h, left / w, bottom / h, right / w), abs=1e-6)
        grey = np.asarray(background.get_array(), dtype=float)  # the red is darker than white
        rows, cols = grey.shape[:2]
        inside = grey[int((top + bottom) / 2 / h * rows), int((left + right) / 2 / w * cols)]
        outside = grey[int(top / 2 / h * rows), int(left / 2 / w * cols)]
        assert np.mean(inside) < np.mean(outside) - 0.1


@pytest.mark.parametrize("case", list(CASES))
def test_detr_shapes_figure_keeps_the_aspect_ratio(case, tmp_path, monkeypatch):
    path, box = _image(tmp_path, case)
    [fig] = _render(monkeypatch, tmp_path, ["--model", "detr-shapes", "--image", str(path)], box)
    _check(fig, case)


def test_processor_folder_figure_keeps_the_aspect_ratio(tmp_path, monkeypatch):
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor

    cfg = DetrConfig(
        use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False, d_model=16,
        encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=16, decoder_ffn_dim=16, num_queries=3, num_labels=2,
    )
    torch.manual_seed(0)
    folder = tmp_path / "detr"
    DetrForObjectDetection(cfg).eval().save_pretrained(folder)
    DetrImageProcessor(size={"shortest_edge": 48, "longest_edge": 96}).save_pretrained(folder)
    path, box = _image(tmp_path, "wide")  # 60 x 540: the model sees 96 x 11 (ratio 8.7, not 9)
    [fig] = _render(monkeypatch, tmp_path, ["--model", str(folder), "--image", str(path)], box)
    _check(fig, "wide")


@pytest.mark.parametrize("size", [(0, 10), (10,), (10.5, 20), (True, 3)])
def test_image_size_must_be_two_positive_ints(size):
    with pytest.raises(probe.ProbeError, match="image_size must be"):
        probe.viewers.detr_queries_view(np.zeros((8, 8, 3)), np.zeros((1, 2, 2)),
                                        np.full((1, 4), 0.5), ["q0"], image_size=size)
