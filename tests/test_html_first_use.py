"""The image view's subtitle writes sizes as width x height, as the README writes them
("a 640x360 photo"): a 60-wide, 40-high image was called "40 x 60 image"."""

from __future__ import annotations

import numpy as np

from probe.viewers.html import image_view_html


def test_image_view_subtitle_is_width_by_height() -> None:
    image = np.zeros((40, 60, 3), dtype=np.float32)
    page = image_view_html(image, {"rollout": np.arange(8 * 12, dtype=np.float32).reshape(8, 12)})
    assert "60 x 40 image, 12 x 8 patches" in page.html
    assert "40 x 60 image" not in page.html
