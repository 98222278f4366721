"""Paper-ready figures and help: the DETR figure's colour scale, glyphs drawn alike in labels
and titles, ``--help`` readable in an 80-column terminal, messages that say what an option
is."""

from __future__ import annotations

import pytest

import probe


def test_window_option_of_the_window_view_says_what_it_is():
    """``window=`` is the heads / model views' token window, not the Swin windows the window
    view draws: the message names it and what to use instead (checked before the source is
    looked at, so no model is needed)."""
    with pytest.raises(probe.ProbeError) as info:
        probe.show(object(), "window", window=(0, 3))
    message = str(info.value)
    assert "window=(start, stop)" in message and "token window" in message
    assert "layers=" in message and "layer=" in message and "drop it" in message
    assert "does not apply to the window view" not in message
    assert "\n" not in message


# ----------------------------------------------------------------------------- DETR colour scale
def _colorbars(fig) -> list:
    return [ax._colorbar for ax in fig.axes if hasattr(ax, "_colorbar")]


def _detr_figure(q: int = 3, shape=(24, 24), **kwargs):
    import numpy as np

    from probe.viewers import detr_queries_view

    rng = np.random.default_rng(0)
    maps = rng.random((q, 4, 4)) * np.arange(1, q + 1)[:, None, None]  # peaks 1, 2, 3...
    return maps, detr_queries_view(rng.random((*shape, 3)), maps,
                                   np.array([[.5, .5, .4, .4]] * q), [f"q{i}" for i in range(q)],
                                   scores=[.9] * q, title="detr", **kwargs)


def test_detr_view_has_one_labelled_colour_scale_shared_by_its_queries():
    """A reader can tell what the heat means: one colourbar, labelled, whose scale is the
    one every panel is drawn on (from 0 to the largest weight of the shown queries)."""
    from _layout import layout_problems

    maps, fig = _detr_figure()
    (bar,) = _colorbars(fig)
    assert bar.ax.get_ylabel() == "cross-attention weight"
    assert (bar.norm.vmin, bar.norm.vmax) == (0.0, pytest.approx(maps.max()))
    overlays = [im for ax in fig.axes for im in ax.images if im.get_array().ndim == 2]
    assert len(overlays) == 3 and all(im.norm.vmax == bar.norm.vmax for im in overlays)
    assert layout_problems(fig) == []
    _, fig = _detr_figure(colorbar_label="cross-attention weight\n(layer 5, heads averaged)")
    assert _colorbars(fig)[0].ax.get_ylabel() == "cross-attention weight\n(layer 5, heads averaged)"


def test_detr_view_scale_each_gives_every_query_its_own_labelled_bar():
    """``scale="each"`` (the DETR paper's figures: each map on its own scale) labels a bar
    per panel instead of hiding that the panels' colours do not compare."""
    from _layout import layout_problems

    maps, fig = _detr_figure(scale="each")
    bars = _colorbars(fig)
    assert [b.norm.vmax for b in bars] == pytest.approx(maps.reshape(3, -1).max(1))
    assert {b.ax.get_ylabel() for b in bars} == {"cross-attention weight"}
    assert layout_problems(fig) == []
    with pytest.raises(probe.ProbeError, match="scale"):
        _detr_figure(scale="per-query")
