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
