"""Lazily stacked attention: a capture keeps each layer as the model computed it and builds
``[layer, batch, head, query, key]`` once, on the first read of ``attentions``."""

from __future__ import annotations

import copy
import gc
import pickle
import threading
import weakref

import pytest
import torch
from torch.testing import assert_close

import probe
from probe.capture._recorder import CaptureOptions, StackRecorder
from probe.capture._trace import LazyStack, stored_attentions
from tests._tiny import HF_TEXT, TIMM


def _unpadded_bert():
    model, inputs = HF_TEXT["bert"]()
    return model, {key: value[:1] for key, value in inputs.items()}  # item 0: no padding


def _eager_reference(model, inputs):
    ref = copy.deepcopy(model)
    ref.set_attn_implementation("eager")
    with torch.no_grad():
        return torch.stack(ref(**inputs, output_attentions=True).attentions)


class _CountStacks:
    """Counts ``torch.stack`` calls (the lazy stack's one copy) while active."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = torch.stack

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(torch, "stack", counting)


def test_lazy_stack_equals_eager_reference():
    model, inputs = _unpadded_bert()
    ref = _eager_reference(model, inputs)
    tr = probe.trace(model, inputs)
    stored = stored_attentions(tr)
    assert isinstance(stored, LazyStack) and not stored.stacked_yet
    assert tuple(stored.shape) == tuple(ref.shape) and tr.has_attentions
    for pos in range(tr.num_layers):
        assert_close(tr.layer_attentions(pos), ref[pos], atol=1e-5, rtol=0)
    assert "attentions=(3, 1, 4, 9, 9)" in repr(tr) and not stored.stacked_yet  # repr: no stack
    attn = tr.attentions
    assert attn.shape == ref.shape and attn.dtype == ref.dtype and attn.device == ref.device
    assert_close(attn, ref, atol=1e-5, rtol=0)
    assert stored.stacked_yet


@pytest.mark.parametrize("name", ["gpt2", "t5", "vit"])
def test_lazy_stacks_of_every_family_equal_the_reference(name):
    model, inputs = {**HF_TEXT, **TIMM}[name]()
    tr = probe.trace(model, inputs)
    assert isinstance(stored_attentions(tr), LazyStack)
    chunked = probe.trace(model, inputs, chunk_size=3) if name != "vit" else None
    if name == "vit":  # timm has no chunking: compare with the unfused model's own maps
        from tests.test_capture import _timm_reference

        assert_close(tr.attentions, _timm_reference(model, inputs), atol=1e-5, rtol=0)
        return
    assert not isinstance(stored_attentions(chunked), LazyStack)  # chunks fill one buffer
    assert_close(tr.attentions, chunked.attentions, atol=1e-6, rtol=0)
    if name == "t5":
        for lazy, buffered in ((tr.decoder, chunked.decoder), (tr.cross, chunked.cross)):
            assert isinstance(stored_attentions(lazy), LazyStack)
            assert_close(lazy.layer_attentions(0), buffered.attentions[0], atol=1e-6, rtol=0)
            assert_close(lazy.attentions, buffered.attentions, atol=1e-6, rtol=0)


def test_stacked_once_and_cached(monkeypatch):
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs)
    count = _CountStacks(monkeypatch)
    first = tr.attentions
    assert tr.attentions is first and tr.require_attentions() is first
    assert tr.encoder.attentions is first  # the encoder view shares the same stack
    assert count.calls == 1


def test_concurrent_first_reads_stack_once(monkeypatch):
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs)
    count = _CountStacks(monkeypatch)
    seen, start = [], threading.Barrier(8)

    def read():
        start.wait()
        seen.append(tr.attentions)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count.calls == 1 and len(seen) == 8 and all(s is seen[0] for s in seen)


def test_per_layer_reads_do_not_stack(monkeypatch):
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs)
    full = _eager_reference(model, inputs)
    count = _CountStacks(monkeypatch)
    for pos in range(tr.num_layers):
        assert tr.layer_attentions(pos).shape == full.shape[1:]
    roll = probe.rollout(tr)  # reads layer by layer
    attn = probe.attribute(model, inputs, "attention")
    assert count.calls == 0 and not stored_attentions(tr).stacked_yet
    monkeypatch.undo()
    ref = probe.rollout(tr.replace(attentions=full))
    assert_close(roll, ref, atol=1e-5, rtol=0)
    assert attn.scores.shape[0] == 1
    assert_close(tr.layer_attentions(-1), full[-1], atol=1e-5, rtol=0)  # negative positions


def test_layer_attentions_errors():
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs, layers=[0, 2])
    with pytest.raises(probe.ProbeError, match="position 2 is out of range.*layer_position"):
        tr.layer_attentions(2)
    with pytest.raises(probe.ProbeError, match="out of range"):
        tr.layer_attentions(True)
    assert_close(tr.layer_attentions(tr.layer_position(2)), tr.attentions[1])
    streamed = probe.trace(model, inputs, stream=True)
    assert not streamed.has_attentions
    with pytest.raises(probe.ProbeError, match="streaming mode"):
        streamed.layer_attentions(0)


def test_stacking_releases_the_per_layer_tensors():
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs)
    layer = weakref.ref(tr.layer_attentions(0))
    stacked = tr.attentions
    gc.collect()
    assert layer() is None  # the stack replaced them: memory back to one copy
    assert tr.layer_attentions(0).data_ptr() == stacked[0].data_ptr()  # now a view of it


def test_gradient_capture_still_fills_grad():
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs, requires_grad=True)
    attn = tr.attentions
    graph_storages = {t.untyped_storage().data_ptr() for t in tr.layer_tensors}
    assert attn.untyped_storage().data_ptr() not in graph_storages and not attn.requires_grad
    tr.output.last_hidden_state[:, 0, :5].sum().backward()  # a sum over all of it is constant
    grads = tr.gradients()
    assert grads.shape == attn.shape and all(t.grad is not None for t in tr.layer_tensors)
    assert grads.abs().sum() > 0
    assert_close(attn, _eager_reference(model, inputs), atol=1e-5, rtol=0)


def test_attentions_share_no_memory_with_returned_maps():
    """``output_attentions=True`` hands the recorded tensors to the caller: probe stacks them
    during the capture, so changing the returned maps in place cannot change the trace."""
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs, output_attentions=True)
    assert stored_attentions(tr).stacked_yet
    before = tr.attentions.clone()
    for returned in tr.output.attentions:
        returned.mul_(0)
    assert torch.equal(tr.attentions, before) and before.abs().sum() > 0
    # without output_attentions the stack waits, and no output tensor holds the layers
    plain = probe.trace(model, inputs)
    assert not stored_attentions(plain).stacked_yet


def test_caller_changes_to_attentions_stay_in_the_trace():
    """``attentions`` is the trace's own tensor (one object, as a plain field is): a caller
    that changes it in place changes that trace only (whose next read refuses the edit),
    never a later capture."""
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs)
    tr.attentions.zero_()
    with pytest.raises(probe.ModifiedTraceError, match="modified in place"):
        tr.attentions
    again = probe.trace(model, inputs)
    assert_close(again.attentions, _eager_reference(model, inputs), atol=1e-5, rtol=0)


def test_dtype_heads_and_padding_with_the_lazy_stack():
    model, inputs = HF_TEXT["bert"]()  # item 1 is padded: its padded query rows are zeroed
    full = probe.trace(model, inputs, chunk_size=4)  # the buffered path, for reference
    assert not isinstance(stored_attentions(full), LazyStack)
    half = probe.trace(model, inputs, dtype=torch.float16, heads=[3, 1])
    assert isinstance(stored_attentions(half), LazyStack)
    assert half.layer_attentions(0).dtype == torch.float16
    assert half.attentions.dtype == torch.float16
    assert_close(half.attentions.float(), full.attentions[:, :, [3, 1]], atol=1e-3, rtol=0)
    avg = probe.trace(model, inputs, average_heads=True, layers=[-1])
    assert_close(avg.attentions[:, :, 0], full.attentions[[-1]].mean(2), atol=1e-6, rtol=0)
    assert_close(probe.trace(model, inputs).attentions, full.attentions, atol=1e-6, rtol=0)


def test_replace_pickle_and_copy_keep_values():
    model, inputs = _unpadded_bert()
    tr = probe.trace(model, inputs)
    renamed = tr.replace(model_name="renamed")
    assert not stored_attentions(tr).stacked_yet  # replace passes the lazy stack on
    ref = _eager_reference(model, inputs)
    for clone in (pickle.loads(pickle.dumps(tr.replace(output=None))), copy.deepcopy(tr)):
        assert_close(clone.attentions, ref, atol=1e-5, rtol=0)
    assert_close(renamed.attentions, ref, atol=1e-5, rtol=0)
    assert renamed.attentions is tr.attentions  # one stack, shared
    stacked = pickle.loads(pickle.dumps(tr.replace(output=None)))  # after stacking too
    assert_close(stacked.layer_attentions(1), ref[1], atol=1e-5, rtol=0)


def test_recorder_mixing_whole_and_chunked_layers():
    torch.manual_seed(0)
    layers = [torch.softmax(torch.randn(2, 3, 5, 5), -1) for _ in range(2)]
    rec = StackRecorder("self", ["a", "b"], CaptureOptions(), key_mask=None, query_mask=None)
    rec.record(0, 0, layers[0], 5)
    rec.record(1, 0, layers[1][:, :, :2], 5)
    rec.record(1, 2, layers[1][:, :, 2:], 5)
    stack = rec.finish()
    assert not isinstance(stored_attentions(stack), LazyStack)
    assert torch.equal(stack.attentions, torch.stack(layers))
    whole = StackRecorder("self", ["a", "b"], CaptureOptions(), key_mask=None, query_mask=None)
    for i, t in enumerate(layers):
        whole.record(i, 0, t, 5)
    lazy = whole.finish()
    assert lazy.layer_attentions(1).data_ptr() == layers[1].data_ptr()  # kept, not copied
    assert torch.equal(lazy.attentions, torch.stack(layers))
    with pytest.raises(ValueError, match="at least one layer"):
        LazyStack([])


def test_generate_encoder_stack_shares_no_memory_with_returned_maps():
    model, inputs = HF_TEXT["t5"]()
    ids = inputs["input_ids"][:1]
    kwargs = {"max_new_tokens": 2, "eos_token_id": None, "min_new_tokens": 2}
    plain = probe.generate(model, ids, **kwargs)
    assert not stored_attentions(plain.encoder).stacked_yet  # stacked on first read only
    gen = probe.generate(model, ids, output_attentions=True, **kwargs)
    returned = gen.output.encoder_attentions
    assert stored_attentions(gen.encoder).stacked_yet  # the maps went to the caller: copied
    before = gen.encoder.attentions.clone()
    for maps in returned:
        maps.mul_(0)
    assert torch.equal(gen.encoder.attentions, before) and before.abs().sum() > 0
    assert_close(plain.encoder.attentions, before, atol=1e-6, rtol=0)


def test_stack_reprs_are_summaries_that_neither_stack_nor_raise():
    # the dataclass repr of AttentionStack read ``attentions``: it stacked the layers, printed
    # every value and raised ModifiedTraceError on a trace edited in place
    from probe.capture._trace import ModifiedTraceError

    model, inputs = HF_TEXT["t5"]()
    tr = probe.trace(model, inputs)
    cross = stored_attentions(tr.cross)
    assert isinstance(cross, LazyStack)
    want = f"attentions={tuple(cross.shape)} float32, layer_indices="
    assert repr(tr.cross).startswith(f"AttentionStack(kind='cross', {want}")
    assert not cross.stacked_yet and len(repr(tr.cross)) < 200
    tr.cross.layer_attentions(0).mul_(2)  # an edit in place: reads refuse it, a repr does not
    with pytest.raises(ModifiedTraceError):
        tr.cross.attentions
    assert want in repr(tr.cross)
    gen = probe.generate(model, inputs["input_ids"][:1], max_new_tokens=2, eos_token_id=None,
                         min_new_tokens=2)
    assert f"generated=2, attentions={tuple(stored_attentions(gen).shape)} float32" in repr(gen)
    for stack in (stored_attentions(gen), stored_attentions(gen.cross)):
        assert not isinstance(stack, LazyStack) or not stack.stacked_yet


def test_select_cross_stacks_only_what_the_page_reads():
    # dataclasses.replace(trace, cross=...) read trace.attentions: the encoder stack was
    # stacked (and an edited one raised) for a page that draws only the cross-attention
    from probe.commands._pages import select_cross

    model, inputs = HF_TEXT["t5"]()
    tr = probe.trace(model, inputs)
    ref = probe.trace(model, inputs).cross.attentions
    kept = select_cross(tr, [-1], [1])
    assert not stored_attentions(tr).stacked_yet and not stored_attentions(tr.cross).stacked_yet
    assert kept.cross.layer_indices == tr.cross.layer_indices[-1:]
    assert kept.cross.head_indices == (1,)
    assert torch.equal(kept.cross.attentions, ref[-1:, :, 1:2])
    assert stored_attentions(kept) is stored_attentions(tr)  # the encoder stack, passed on
