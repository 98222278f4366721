"""``layers=`` / ``heads=`` of the HTML views: each layer or head once, as ``probe.trace`` asks."""

from __future__ import annotations

import pytest
import probe
from tests._factories import make_trace, random_attention


@pytest.fixture(scope="module")
def trace() -> probe.Trace:
    return make_trace(random_attention(3, 1, 4, 5), tokens=[["a", "b", "c", "d", "e"]])


@pytest.mark.parametrize("view", ["heads", "model"])
@pytest.mark.parametrize(("option", "value", "named"), [
    ("layers", [0, 0], "layer 0"), ("layers", [2, -1], "layer -1"), ("heads", [1, -3], "head -3"),
])
def test_a_layer_or_head_listed_twice_is_refused(trace, view, option, value, named) -> None:
    with pytest.raises(probe.ProbeError, match=rf"^{option} lists {named} twice"):
        probe.show(trace, view, **{option: value})


def test_distinct_selections_still_work(trace) -> None:
    page = probe.show(trace, "heads", layers=[2, 0], heads=[-1, 0])
    assert page.size_bytes > 0
