"""Image views over ViT/timm models keep the image's aspect ratio, and maps cover exactly the
region the model saw.

probe's preprocessing resizes the whole image to the model's square input, so the CLI draws
the image at the file's proportions with the patch map stretched over all of it (as ``probe
render detr`` does). From Python, ``region=`` puts the map over a center crop only. Square
images give the same bytes as without ``image_size``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import probe
import probe.viewers
from probe.cli import main
from probe.viewers import cls_head_grid, comparison_panel, saliency_overlay, upsample_bilinear
from probe.viewers._saliency import REGION_NOTE

SIZES = {"wide": (90, 160), "tall": (150, 60), "square": (48, 48)}  # (height, width)


def _file(tmp_path: Path, case: str) -> Path:
    h, w = SIZES[case]
    pixels = np.full((h, w, 3), (40, 90, 40), np.uint8)
    pixels[h // 4 : h // 2, w // 2 : 3 * w // 4] = (230, 40, 40)
    path = tmp_path / f"{case}.png"
    Image.fromarray(pixels).save(path)
    return path


def _record(monkeypatch, name: str) -> list:
    calls = []
    view = getattr(probe.viewers, name)

    def recorded(*args, **kwargs):
        calls.append((args, kwargs, view(*args, **kwargs)))
        return calls[-1][2]

    monkeypatch.setattr(probe.viewers, name, recorded)
    return calls


def _overlays(fig) -> list:
    """The axes holding a grey image and a map (the colour input panel has one image)."""
    return [ax for ax in fig.axes if len(ax.get_images()) == 2]


def _check_extent(fig, size: tuple[int, int], region=None) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    h, w = size
    FigureCanvasAgg(fig).draw()
    axes = _overlays(fig)
    assert axes
    inputs = [ax for ax in fig.axes if len(ax.get_images()) == 1  # the colour input panel
              and np.asarray(ax.get_images()[0].get_array()).ndim == 3]
    assert len(inputs) == 1
    for ax in [*axes, *inputs]:
        shown = ax.get_window_extent()
        assert shown.width / shown.height == pytest.approx(w / h, rel=0.03)  # the image's ratio
        assert tuple(ax.get_images()[0].get_extent()) == (0, w, h, 0)
    for ax in axes:
        heat = ax.get_images()[1]
        x0, y0, x1, y1 = region or (0, 0, w, h)
        assert tuple(heat.get_extent()) == (x0, x1, y1, y0)  # the map covers what the model saw


@pytest.mark.parametrize("case", ["wide", "tall"])
def test_cli_image_views_keep_the_aspect_ratio(case, tmp_path, monkeypatch):
    path = _file(tmp_path, case)
    out = ["--out", str(tmp_path / "out"), "--quiet", "--dpi", "40"]
    model = ["--model", "vit-shapes", "--image", str(path)]
    overlay, grid, panel = (_record(monkeypatch, n) for n in
                            ("saliency_overlay", "cls_head_grid", "comparison_panel"))
    assert main(["render", "saliency", *model, "--layer", "1", *out]) == 0
    assert main(["render", "rollout", *model, *out]) == 0
    assert main(["render", "compare", *model, "--method", "rollout", "--method", "attention",
                 *out]) == 0
    assert main(["render", "saliency", "--model", "cnn-shapes", "--image", str(path), *out]) == 0
    assert len(overlay) == 3 and len(grid) == 1 and len(panel) == 1
    for _, kwargs, fig in [*overlay, *grid, *panel]:
        assert kwargs["image_size"] == SIZES[case]
        _check_extent(fig, SIZES[case])


def test_cli_square_image_draws_as_before(tmp_path, monkeypatch):
    """A square file: the same figure, byte for byte, as without image_size (the former
    behaviour, which drew the model's square input)."""
    overlay = _record(monkeypatch, "saliency_overlay")
    assert main(["render", "saliency", "--model", "vit-shapes", "--image",
                 str(_file(tmp_path, "square")), "--out", str(tmp_path), "--quiet"]) == 0
    [(args, kwargs, fig)] = overlay
    assert kwargs["image_size"] == (48, 48) and args[0].shape == (32, 32, 3)
    del kwargs["image_size"]
    assert _png(fig) == _png(probe.viewers._saliency.saliency_overlay(*args, **kwargs))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    return buf.getvalue()


def _image(h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3))
    img[...] = (0.2, 0.4, 0.2)
    img[h // 4 : h // 2, w // 2 : 3 * w // 4] = (0.9, 0.2, 0.2)
    return img


#: a 120 x 200 photo, resized so its shorter side is 40 and center-cropped to 32 x 32 (a timm
#: style eval transform): the model saw the central 96 x 96 pixels of the original
CROP = (52.0, 12.0, 148.0, 108.0)


def _views(image, maps, **kw) -> dict:
    return {
        "overlay": saliency_overlay(image, maps[0], method="rollout", **kw),
        "cls": cls_head_grid(image, maps, **kw),
        "compare": comparison_panel(image, {"a": maps[0], "b": maps[1]}, **kw),
    }


def test_api_center_crop_region():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 8, 8))
    side = 32 * 120 / 40
    assert CROP == ((200 - side) / 2, (120 - side) / 2, (200 + side) / 2, (120 + side) / 2)
    for name, fig in _views(_image(120, 200), maps, region=CROP).items():
        _check_extent(fig, (120, 200), CROP)
        texts = [ax.get_title() for ax in fig.axes] + [fig.get_suptitle()]
        assert any(REGION_NOTE in t for t in texts), name
        frames = [p for ax in fig.axes for p in ax.patches if p.get_linestyle() == "--"]
        assert {(p.get_x(), p.get_y(), p.get_x() + p.get_width(),
                 p.get_y() + p.get_height()) for p in frames} == {CROP}
    heat = _overlays(_views(_image(120, 200), maps, region=CROP)["overlay"])[0].get_images()[1]
    np.testing.assert_allclose(np.asarray(heat.get_array()), upsample_bilinear(maps[0], (96, 96)))


def test_api_resized_input_with_image_size():
    """The model's square input, drawn back at the original's proportions (a plain resize)."""
    maps = np.random.default_rng(1).random((3, 4, 4))
    for fig in _views(_image(32, 32), maps, image_size=(90, 160)).values():
        _check_extent(fig, (90, 160))
    # a crop of the model's input given in the drawn (original) pixels
    for fig in _views(_image(32, 32), maps, image_size=(90, 160),
                      region=(35, 0, 125, 90)).values():
        _check_extent(fig, (90, 160), (35, 0, 125, 90))


def test_square_and_whole_region_are_unchanged():
    maps = np.random.default_rng(2).random((3, 4, 4))
    img = _image(32, 32)
    before = {k: _png(f) for k, f in _views(img, maps).items()}
    for kw in ({"image_size": (48, 48)}, {"region": (0, 0, 32, 32)},
               {"image_size": (64, 64), "region": (0, 0, 64, 64)}):
        assert {k: _png(f) for k, f in _views(img, maps, **kw).items()} == before, kw


@pytest.mark.parametrize("kw, match", [
    ({"image_size": (0, 10)}, "image_size must be"),
    ({"image_size": (10.5, 20)}, "image_size must be"),
    ({"image_size": (True, 3)}, "image_size must be"),
    ({"region": (0, 0, 40, 10)}, "region must be .* inside the 32x32 image"),
    ({"region": (10, 10, 5, 20)}, "region must be"),
    ({"region": (0, 0, 10)}, "region must be"),
    ({"region": (0, 0, float("nan"), 4)}, "region must be"),
])
def test_placement_errors(kw, match):
    with pytest.raises(probe.ProbeError, match=match):
        saliency_overlay(_image(32, 32), np.ones((4, 4)), **kw)
    with pytest.raises(probe.ProbeError, match=match):
        cls_head_grid(_image(32, 32), np.ones((2, 4, 4)), **kw)


def test_tokens_take_no_placement():
    with pytest.raises(probe.ProbeError, match="image_size and region place an image"):
        comparison_panel(["a", "b"], {"m": np.ones(2)}, image_size=(2, 3))


@pytest.mark.parametrize("model", ["cnn-shapes", "cnn-shapes-nl"])
def test_cli_gates_view_keeps_the_aspect_ratio(model, tmp_path, monkeypatch):
    maps = _record(monkeypatch, "gate_maps")
    import probe.viewers._gate_kinds as kinds

    monkeypatch.setattr(kinds, "gate_maps", probe.viewers.gate_maps)
    assert main(["render", "gates", "--model", model, "--image", str(_file(tmp_path, "wide")),
                 "--out", str(tmp_path), "--quiet", "--dpi", "40"]) == 0
    [(_, kwargs, fig)] = maps
    assert kwargs["image_size"] == (90, 160)
    _check_extent(fig, (90, 160))
    for _, (x, y) in kwargs["marks"].items():  # a non-local query, in the drawn pixels
        col, row = x / 160 * 8 - 0.5, y / 90 * 8 - 0.5  # cnn-shapes-nl: an 8 x 8 map
        assert col == pytest.approx(round(col)) and row == pytest.approx(round(row))
    assert bool(kwargs["marks"]) == (model == "cnn-shapes-nl")


def test_gate_figures_square_size_is_unchanged():
    model, _ = probe.load_model("cnn-shapes")
    batch = probe.make_shapes(1, seed=4)
    gt = probe.trace_gates(model, batch.images)
    img = batch.to_display(0)
    before = {k: _png(f) for k, f in probe.viewers.gate_figures(gt, img).items()}
    after = probe.viewers.gate_figures(gt, img, image_size=(96, 96))
    assert {k: _png(f) for k, f in after.items()} == before


def test_html_image_view_keeps_the_aspect_ratio(tmp_path, monkeypatch):
    from tests.test_html_views import _data_block

    import probe.viewers.html as html

    pages = []
    view = html.patches_html

    def recorded(*args, **kwargs):
        pages.append((kwargs, view(*args, **kwargs)))
        return pages[-1][1]

    monkeypatch.setattr(html, "patches_html", recorded)
    assert main(["render", "saliency", "--model", "vit-shapes", "--image",
                 str(_file(tmp_path, "wide")), "--format", "html", "--out", str(tmp_path),
                 "--quiet"]) == 0
    [(kwargs, page)] = pages
    assert kwargs["image_size"] == (90, 160)
    data = _data_block(page.html)
    assert data["size"] == [90, 160] and data["grid"] == [8, 8]
    assert data["subtitle"].startswith("160 x 90 image")
    square = html.image_view_html(_image(32, 32), {"m": np.ones((4, 4))})
    assert _data_block(square.html) == _data_block(
        html.image_view_html(_image(32, 32), {"m": np.ones((4, 4))}, image_size=(32, 32)).html)


def test_very_thin_image_keeps_its_ratio_in_a_readable_panel():
    """A 1000x10 strip: drawn at 100:1, but its panel box (and so the colorbar beside it) is at
    most 4:1 (the colorbar was 1/100 of the panel width: its ticks printed over each other)."""
    import matplotlib

    matplotlib.use("Agg")
    image = np.random.default_rng(0).random((16, 16, 3))
    fig = saliency_overlay(image, np.random.default_rng(1).random((4, 4)), image_size=(10, 1000),
                           title="t", size=4)
    fig.canvas.draw()
    cbar, strip = fig.axes[-1], fig.axes[-2]
    assert strip.get_xlim() == (0.0, 1000.0) and strip.get_ylim() == (10.0, 0.0)
    w, h = fig.get_size_inches()
    box = strip.get_position()  # with the equal aspect applied
    assert (box.width * w) / (box.height * h) == pytest.approx(100, rel=0.05)  # its own ratio
    assert cbar.get_position().height * h == pytest.approx(1.0)  # the panel box: 4 in x 1 in
    ticks = [t.get_window_extent() for t in cbar.get_yticklabels() if t.get_text()]
    assert len(ticks) >= 2 and all(a.y1 <= b.y0 or b.y1 <= a.y0
                                   for a, b in zip(ticks, ticks[1:]))
