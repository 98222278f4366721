"""Keys that are no token of the trace (a ``past_key_values`` cache passed in, prefix tuning,
prompt or memory vectors) are refused by the recorder, not recorded as a wider matrix whose
columns no token owns (``probe/capture/_recorder.py`` ``check_keys``)."""

from __future__ import annotations

import pytest
import torch

import probe
from tests import _tiny

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("options", [{}, {"query_rows": [0, -1]}, {"chunk_size": 2},
                                     {"stream": True}])
def test_a_cache_passed_in_is_refused_and_the_model_left_as_it_was(options: dict) -> None:
    model, inputs = _tiny.gpt2()
    ids = inputs["input_ids"][:1]
    with torch.no_grad():
        past = model(ids[:, :4], use_cache=True).past_key_values
    before = _tiny.snapshot(model)
    with pytest.raises(probe.UnsupportedModelError,
                       match=r"'transformer\.h\.0\.attn' attends to 9 keys, not one per token of "
                             r"its 5 queries: keys that are no token of the trace \(a "
                             r"past_key_values cache passed in, .*trace the model without them"):
        probe.trace(model, {"input_ids": ids[:, 4:]}, past_key_values=past, **options)
    _tiny.assert_unchanged(model, before)
    # without the cache: the same model traces as always
    trace = probe.trace(model, {"input_ids": ids})
    assert trace.attentions.shape[-2:] == (9, 9)
