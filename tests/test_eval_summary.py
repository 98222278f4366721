"""The printed eval summaries state one verdict: the faithfulness eval's comparison with
Chefer et al. 2021 never says "reproduced: False" next to "partly reproduced"."""

from __future__ import annotations

from probe.evaluation.tasks import CHEFER_ORDER, chefer_ordering
from probe.evaluation.tasks._faithfulness import _reference_footer


def _orders() -> tuple[dict[str, float], dict[str, float]]:
    order = list(CHEFER_ORDER)
    deletion = {m: 0.1 * (i + 1) for i, m in enumerate(order)}
    insertion = {m: 1.0 - 0.1 * i for i, m in enumerate(order)}
    return deletion, insertion


def test_partly_reproduced_is_said_once_and_consistently():
    deletion, insertion = _orders()
    swapped = {**insertion, "relevance": insertion["rollout"] - 0.05}
    ordering = chefer_ordering(deletion, swapped)
    assert ordering["verdict"] == "partly reproduced (deletion only)"
    text = " ".join(_reference_footer({"chefer_ordering": ordering}))
    assert "partly reproduced (deletion only)" in text
    assert "False" not in text and "True" not in text
    assert text.count("reproduced") == 1


def test_every_verdict_and_results_saved_before_the_verdict_field():
    deletion, insertion = _orders()
    both = chefer_ordering(deletion, insertion)
    reversed_ = chefer_ordering({m: -v for m, v in deletion.items()},
                                {m: -v for m, v in insertion.items()})
    none = chefer_ordering({"rollout": 0.1}, {"rollout": 0.2})
    assert both["verdict"] == "reproduced in both tests"
    assert reversed_["verdict"] == "not reproduced in either test"
    assert none["verdict"] == "undefined"
    for ordering in (both, reversed_, none):
        old = {k: v for k, v in ordering.items() if k != "verdict"}  # an older saved JSON
        new_text = " ".join(_reference_footer({"chefer_ordering": ordering}))
        assert new_text == " ".join(_reference_footer({"chefer_ordering": old}))
        assert "False" not in new_text and "None" not in new_text
