"""Figure and page labels a first-time user read wrong.

The image view's subtitle writes sizes as width x height, as the README writes them
("a 640x360 photo"): a 60-wide, 40-high image was called "40 x 60 image"."""

from __future__ import annotations

import numpy as np

from probe.viewers.html import image_view_html


def test_image_view_subtitle_is_width_by_height() -> None:
    image = np.zeros((40, 60, 3), dtype=np.float32)
    page = image_view_html(image, {"rollout": np.arange(8 * 12, dtype=np.float32).reshape(8, 12)})
    assert "60 x 40 image, 12 x 8 patches" in page.html
    assert "40 x 60 image" not in page.html


def test_title_of_averaged_heads_reads_heads_averaged() -> None:
    """``probe render alignment`` without --head titled its figure "toy-mt · layer 1 · head
    mean · attention"; the recipe's own figure says "heads averaged"."""
    from probe.viewers._style import title

    assert title("toy-mt", 1, "mean", "attention") == (
        "toy-mt · layer 1 · heads averaged · attention")
    assert title("m", 0, 3) == "m · layer 0 · head 3"
    assert title("m", 0, "CLS") == "m · layer 0 · head CLS"
