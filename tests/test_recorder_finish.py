"""What the whole-layer and the row recorders share at the end of a capture: the error for a
kept layer that never ran (same words for both) and the head indices of the stack."""

from __future__ import annotations

import pytest
import torch

from probe._errors import ProbeError
from probe.capture._recorder import CaptureOptions, StackRecorder, StreamOptions
from probe.capture._row_recorder import RowRecorder

MISSING = (
    r"^attention layers \['l1', 'l2'\] did not run in the forward pass; probe cannot capture "
    r"layers the model skips \(check the inputs or select other layers\)$"
)
NAMES = ["l0", "l1", "l2"]


def _weights() -> torch.Tensor:
    w = torch.rand(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    return w / w.sum(-1, keepdim=True)  # [batch, head, query, key]


def _recorders(options: CaptureOptions) -> list[StackRecorder]:
    return [
        StackRecorder("self", NAMES, options, None, None),
        RowRecorder("self", NAMES, options, None, None, query_rows=[1, -1]),
    ]


def test_a_kept_layer_that_did_not_run_is_named_by_both_recorders() -> None:
    for recorder in _recorders(CaptureOptions()):
        recorder.record(0, 0, _weights(), 5)
        with pytest.raises(ProbeError, match=MISSING):
            recorder.finish()


def test_a_streaming_capture_folds_the_layers_that_ran() -> None:
    options = CaptureOptions(stream=StreamOptions())
    recorder = StackRecorder("self", NAMES, options, None, None, stream=True)
    recorder.record(0, 0, _weights(), 5)
    stack = recorder.finish()  # no error: the rollout folds what ran
    assert recorder.rollout_state is not None and stack.layer_indices == (0, 1, 2)


@pytest.mark.parametrize(
    ("options", "heads"),
    [
        (CaptureOptions(), (0, 1, 2, 3)),
        (CaptureOptions(heads=(-1, 1)), (3, 1)),
        (CaptureOptions(average_heads=True), None),
    ],
)
def test_head_indices_of_both_recorders(options: CaptureOptions, heads) -> None:
    w = _weights()
    for recorder in _recorders(options):
        for layer in range(3):
            recorder.record(layer, 0, w, 5)
        stack = recorder.finish()
        assert stack.head_indices == heads
        kept = w.mean(1, keepdim=True) if heads is None else w[:, list(heads)]
        rows = [1, 4] if isinstance(recorder, RowRecorder) else list(range(5))
        torch.testing.assert_close(stack.attentions[2], kept[:, :, rows])
