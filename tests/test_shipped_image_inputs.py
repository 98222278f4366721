"""A picture saved from the generated data and read back with ``probe render --image`` (i.e.
:func:`probe.models._images.load_image`) is the very input the shipped model was trained on.

cnn-shapes and cnn-shapes-nl once took timm's default ImageNet statistics, so a file was fed to
them normalised wrongly (their training data is ``(pixels - 0.5) / 0.5``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import probe
from probe.models._images import load_image
from probe.models._shapes import denormalize


@pytest.mark.parametrize("name", ["vit-shapes", "swin-shapes", "cnn-shapes", "cnn-shapes-nl"])
def test_a_saved_shapes_image_reads_back_as_its_training_input(name, tmp_path):
    loaded = probe.load_model(name)
    images = probe.make_shapes(4, seed=3).images
    for i, image in enumerate(images):
        pixels = np.round(denormalize(image) * 255).astype(np.uint8)
        path = tmp_path / f"{i}.png"
        Image.fromarray(pixels).save(path)
        got = load_image(str(path), loaded.model, loaded.processor).pixel_values[0]
        # equal up to the 8-bit rounding of the PNG: 0.5 / 255 in pixels, x2 after normalising
        torch.testing.assert_close(got, image, atol=1.01 / 255, rtol=0)
    with torch.no_grad():  # and the model's answer on the files is its answer on the data
        from_files = torch.stack([
            load_image(str(tmp_path / f"{i}.png"), loaded.model, loaded.processor).pixel_values[0]
            for i in range(len(images))])
        assert (loaded.model(from_files).argmax(-1) == loaded.model(images).argmax(-1)).all()
