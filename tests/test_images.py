"""Image files into a model's input: real value ranges, unsafe and non-regular files refused."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PIL import Image

import probe
from probe._errors import ProbeError
from probe.models._images import check_image_file, load_image, to_rgb8


@pytest.fixture(scope="module")
def vit_shapes():
    return probe.load_model("vit-shapes")


def _ramp(h: int = 32, w: int = 32) -> np.ndarray:
    """A horizontal ramp 0..1, so the displayed image can be checked pixel by pixel."""
    return np.tile(np.linspace(0.0, 1.0, w), (h, 1))


def test_sixteen_bit_png_keeps_its_range(tmp_path, vit_shapes):
    path = tmp_path / "ramp16.png"
    Image.fromarray((_ramp() * 65535).astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    img = load_image(str(path), *vit_shapes)
    np.testing.assert_allclose(img.display[..., 0], _ramp(), atol=1 / 255 + 1e-6)
    assert 0.45 < float(img.display.mean()) < 0.55  # not clipped to white


@pytest.mark.parametrize("scale, name", [(1.0, "unit"), (255.0, "byte")])
def test_float_tiff_in_a_known_range(tmp_path, vit_shapes, scale, name):
    path = tmp_path / f"ramp-{name}.tiff"
    Image.fromarray((_ramp() * scale).astype(np.float32), mode="F").save(path)
    img = load_image(str(path), *vit_shapes)
    np.testing.assert_allclose(img.display[..., 1], _ramp(), atol=1 / 255 + 1e-6)


def test_float_tiff_out_of_any_range_is_refused(tmp_path, vit_shapes):
    path = tmp_path / "hdr.tiff"
    Image.fromarray((_ramp() * 5000 - 10).astype(np.float32), mode="F").save(path)
    with pytest.raises(ProbeError, match=r"value range .* save it as an 8-bit or 16-bit PNG"):
        load_image(str(path), *vit_shapes)


def test_eight_bit_images_are_unchanged(tmp_path):
    rgb = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    out = to_rgb8(Image.fromarray(rgb))
    np.testing.assert_array_equal(np.asarray(out), rgb)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2 x limit: an error
    with pytest.raises(ProbeError, match="too large to decode safely"):
        check_image_file(str(path))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # between 1x and 2x: PIL only warns
    with pytest.raises(ProbeError, match="too large to decode safely"):
        check_image_file(str(path))


def test_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    result: list[BaseException | None] = []

    def check() -> None:
        try:
            check_image_file(str(path))
            result.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            result.append(exc)

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the thread can end, then fail
        with open(path, "wb"):
            pass
        pytest.fail("check_image_file blocked on a FIFO")
    assert isinstance(result[0], ProbeError) and "not a regular file" in str(result[0])


def test_cli_sixteen_bit_image_renders(tmp_path):
    from probe.cli import main

    path = tmp_path / "ramp16.png"
    Image.fromarray((_ramp() * 65535).astype(np.uint16)).save(path)
    out = tmp_path / "out"
    rc = main(["render", "rollout", "--image", str(path), "--out", str(out), "--quiet"])
    assert rc == 0
    assert len(list(out.iterdir())) == 1


def test_exif_orientation_is_applied(tmp_path, vit_shapes):
    """A phone photo stored sideways (EXIF orientation 6: rotate 90 degrees clockwise to view)
    reaches the model and the figures upright, at the viewed proportions."""
    stored = (np.tile(_ramp(32, 64)[..., None], (1, 1, 3)) * 255).astype(np.uint8)  # dark left
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif, quality=95)
    img = load_image(str(path), *vit_shapes)
    assert img.original_size == (64, 32)  # (height, width) as viewed: portrait
    half = img.display.shape[0] // 2
    assert img.display[:half].mean() + 0.3 < img.display[half:].mean()  # dark side on top
    plain = tmp_path / "plain.jpg"
    image.save(plain, quality=95)
    assert load_image(str(plain), *vit_shapes).original_size == (32, 64)


def _transparent(mode: str) -> Image.Image:
    """Left half opaque red (grey for LA), right half transparent over stored black, a
    column of half-transparent pixels between."""
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[:, :4] = (200, 30, 30, 255)
    rgba[:, 4] = (200, 30, 30, 128)
    image = Image.fromarray(rgba, "RGBA")
    if mode == "P":  # a palette image with one transparent index (tRNS)
        image = Image.fromarray(rgba[..., :3]).quantize(colors=4)
        image.info["transparency"] = image.getpixel((7, 0))
    elif mode != "RGBA":
        image = image.convert(mode)
    return image


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "P"])
def test_transparency_is_composited_onto_white_as_transformers_does(mode, tmp_path,
                                                                    vit_shapes):
    """``convert("RGB")`` kept the black stored under transparent pixels: the model saw a
    black background where every viewer (and transformers' image processors) shows white."""
    from transformers.image_transforms import convert_to_rgb

    image = _transparent(mode)
    reference = convert_to_rgb(image, return_numpy=True)
    np.testing.assert_array_equal(np.asarray(to_rgb8(image)), reference)
    assert reference[0, -1].tolist() == [255, 255, 255]  # the transparent corner is white
    if mode == "PA":
        return  # PNG cannot hold PA
    path = tmp_path / f"{mode}.png"
    image.save(path)
    with Image.open(path) as reread:
        np.testing.assert_array_equal(np.asarray(to_rgb8(reread)), reference)
    assert float(load_image(str(path), *vit_shapes).display[:, -4:].min()) > 0.99
