"""The analysis functions pick a batch item with the views' one shared check (probe/_index.py).

They each had their own check ("batch_index 2 is out of range for a batch of 2; use 0..1"),
refused a numpy integer, and named the range differently from ``probe.show`` / ``probe.plot``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from probe._errors import ProbeError
from probe._index import batch_position
from probe.analysis._coref import coref, word_attention
from probe.analysis._flow import attention_flow
from probe.analysis._headstats import head_stats
from probe.analysis._patches import patch_maps
from tests._factories import make_trace
from tests.test_coref import TOKENS, WORD_IDS, WORDS, hand_attention

SPAN = r"0\.\.1 \(or -2\.\.-1 from the end\)"


def _two_item_trace(**kw):
    att = torch.cat([hand_attention(), hand_attention().flip(2)], dim=1)  # item 1: heads swapped
    return make_trace(att, tokens=[TOKENS] * 2, words=[WORDS] * 2, word_ids=[WORD_IDS] * 2, **kw)


def _vision_trace():
    torch.manual_seed(0)
    att = torch.rand(1, 2, 2, 5, 5, dtype=torch.float64).softmax(-1)
    return make_trace(att, grid=(2, 2), num_prefix_tokens=1)


def test_coref_takes_negatives_and_numpy_and_names_the_shared_range() -> None:
    trace = _two_item_trace()
    assert coref(trace, "it", batch_index=-1) == coref(trace, "it", batch_index=1)
    assert coref(trace, "it", batch_index=np.int64(1)) == coref(trace, "it", batch_index=1)
    assert_close(word_attention(trace, "it", -2), word_attention(trace, "it", 0))
    for bad in (2, -3):
        with pytest.raises(ProbeError, match=rf"^batch_index must be in {SPAN}, got {bad}$"):
            coref(trace, "it", batch_index=bad)
    for bad in (True, 1.0, None):
        with pytest.raises(ProbeError, match=rf"^batch_index must be an integer in {SPAN}, got"):
            coref(trace, "it", batch_index=bad)


@pytest.mark.parametrize("fn", [patch_maps, attention_flow, head_stats])
def test_functions_that_take_none_name_it_in_the_shared_message(fn) -> None:
    trace = _vision_trace()
    everything = fn(trace)
    last = fn(trace, batch_index=-1)
    assert_close(_item(last, 0), _item(fn(trace, batch_index=1), 0))
    first = fn(trace, batch_index=-2)
    assert_close(_item(fn(trace, batch_index=np.int32(0)), 0), _item(first, 0))
    if fn is not head_stats:  # head_stats averages the batch; the others keep it
        assert_close(_item(last, 0), _item(everything, 1))
    for bad in (2, -3):
        with pytest.raises(ProbeError, match=rf"^batch_index must be in {SPAN}, or None for "
                                             rf"every item, got {bad}$"):
            fn(trace, batch_index=bad)
    with pytest.raises(ProbeError, match=rf"^batch_index must be an integer in {SPAN}, or None "
                                         r"for every item, got '0'$"):
        fn(trace, batch_index="0")


def _item(result, b):
    """Item ``b`` of a result: patch_maps is [layer, batch, head, rows, cols], attention_flow
    [batch, ...]; head_stats averages over the items it is given."""
    if hasattr(result, "mean_distance"):
        return result.mean_distance
    return result[:, b] if result.dim() == 5 else result[b]


def test_the_message_is_the_views_own() -> None:
    trace = _two_item_trace()
    with pytest.raises(ProbeError) as analysis:
        coref(trace, "it", batch_index=5)
    with pytest.raises(ProbeError) as shared:
        batch_position(5, 2)
    assert str(analysis.value) == str(shared.value)
