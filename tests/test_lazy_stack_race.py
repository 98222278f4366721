"""A LazyStack read while another thread stacks it: every method works on one consistent
state, so the interleaving neither raises a false ModifiedTraceError nor lets an edit through;
and a real in-place edit is caught on every path.

The interleaving is forced, not hoped for: the reading thread is traced (``sys.settrace``) and,
when the method under test reaches its k-th line, another thread stacks (and edits) the stack
and finishes before the reader goes on, for every k."""

from __future__ import annotations

import copy
import pickle
import sys
import threading

import pytest
import torch

from probe.capture._trace import LazyStack, ModifiedTraceError

EDITED = r"modified in place after capture"


def _layers(first_version: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    layers = [torch.softmax(torch.randn(1, 2, 3, 3), -1) for _ in range(3)]
    for _ in range(first_version):  # a layer the model wrote in place before the trace took it
        layers[0].mul_(1.0)
    return layers


def _code(name: str):
    member = LazyStack.__dict__[name]
    if isinstance(member, property):
        member = member.fget
    return getattr(member, "__func__", member).__code__  # a staticmethod's function


def _interleaved(stack: LazyStack, method: str, read, k: int, rival) -> tuple[object, bool, bool]:
    """``read()`` on this thread; when ``LazyStack.<method>`` reaches its k-th line, ``rival``
    runs to the end on another thread (skipped while this thread holds the stack's lock).
    Returns what ``read`` returned or raised, whether the rival ran, and whether the reader
    checked the write counts after it ran."""
    code, check, lines, ran, checked_after = _code(method), _code("_check"), [0], [], []

    def local(frame, event, arg):
        if event == "line":
            lines[0] += 1
            if lines[0] == k and not stack._lock.locked():
                other = threading.Thread(target=rival)
                other.start()
                other.join()
                ran.append(True)
        return local

    def calls(frame, event, arg):
        if frame.f_code is check and ran:
            checked_after.append(True)
        return local if frame.f_code is code else None

    before = sys.gettrace()
    sys.settrace(calls)
    try:
        result: object = read()
    except ModifiedTraceError as err:
        result = err
    finally:
        sys.settrace(before)
    return result, bool(ran), bool(checked_after)


READS = {
    "layer": lambda s: s.layer(1),
    "stacked": lambda s: s.stacked(),
    "__len__": len,
    "shape": lambda s: s.shape,
    "__getstate__": pickle.dumps,
}


def _expected(method: str, ref: torch.Tensor) -> object:
    return {"layer": ref[1], "stacked": ref, "__len__": 3, "shape": ref.shape,
            "__getstate__": ref}[method]


def _equal(got: object, want: object) -> bool:
    if isinstance(got, bytes):  # a pickled stack: what its copy holds
        got = pickle.loads(got).stacked()
    return torch.equal(got, want) if isinstance(want, torch.Tensor) else got == want


@pytest.mark.parametrize("method", list(READS))
def test_stacking_on_another_thread_mid_read_is_not_an_edit(method):
    """Layer 0 keeps a write count of 2 (written in place by the model), the stack's is 0: a
    reader that paired the layers it read with the stack's counts raised a false error."""
    ref = torch.stack(_layers(2))
    k, fired = 1, 0
    while True:
        stack = LazyStack(_layers(2))
        errors: list[BaseException] = []

        def rival(stack=stack, errors=errors):
            try:
                stack.stacked()
            except BaseException as err:  # noqa: BLE001 - reported by the assert below
                errors.append(err)

        got, ran, _ = _interleaved(stack, method, lambda: READS[method](stack), k, rival)
        if not ran:
            break
        fired += 1
        assert not errors
        assert not isinstance(got, ModifiedTraceError), f"false edit when stacked at line {k}"
        assert _equal(got, _expected(method, ref)), f"wrong value when stacked at line {k}"
        assert stack.stacked_yet and torch.equal(stack.stacked(), ref)
        k += 1
    assert fired >= 2  # the rival ran before and after the method read the stack's state


@pytest.mark.parametrize("target", ["layer", "stack"])
@pytest.mark.parametrize("method", ["layer", "stacked", "__getstate__"])
def test_an_edit_made_while_another_thread_stacks_is_caught(method, target):
    """The rival stacks, then writes in place into layer 1 or into the stack. A reader that
    checks the write counts after that must refuse what it holds or return clean values:
    comparing the layers it held with the stack's one count (zip stops at one) let the edit
    to layer 1 through, and a stack built by another thread was returned unchecked. (An edit
    after the reader's last check is an edit after the read: no guard can see it.)"""
    ref = torch.stack(_layers(0))
    k, proved = 1, 0
    while True:
        layers = _layers(0)
        stack = LazyStack(layers)

        def rival(stack=stack, layers=layers):
            stacked = stack.stacked()
            (layers[1] if target == "layer" else stacked[1]).zero_()

        got, ran, checked = _interleaved(stack, method, lambda: READS[method](stack), k, rival)
        if not ran:
            break
        if isinstance(got, ModifiedTraceError):
            proved += 1
        elif checked:
            assert _equal(got, _expected(method, ref)), f"edited values read (line {k})"
            proved += 1
        k += 1
    assert proved >= 2  # the rival ran at two lines or more before the reader's last check


def _edit_layer(stack, layers):
    layers[2].add_(0.0)


def _edit_stack(stack, layers):
    stack.stacked()[0, 0].clamp_(max=0.5)


@pytest.mark.parametrize("edit", [_edit_layer, _edit_stack])
@pytest.mark.parametrize("read", [
    lambda s: s.layer(0), lambda s: s.layer(-1), lambda s: s.stacked(),
    lambda s: pickle.dumps(s), copy.deepcopy,
])
def test_an_in_place_edit_is_caught_on_every_path(edit, read):
    layers = _layers(1)
    stack = LazyStack(layers)
    assert torch.equal(copy.deepcopy(stack).stacked(), torch.stack(layers))  # unedited: fine
    edit(stack, layers)
    with pytest.raises(ModifiedTraceError, match=EDITED):
        read(stack)
    if edit is _edit_layer:  # still refused once stacked from the edited layers
        with pytest.raises(ModifiedTraceError, match=EDITED):
            stack.stacked()
