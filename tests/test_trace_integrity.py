"""A trace's attention written in place after capture is refused on the next read, so an
analysis never takes edited values for what the model computed; copies, pickles and
``trace.replace`` with an edited copy are fine; what the guard cannot see is stated."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import probe
from probe.capture._trace import AttentionStack, LazyStack, ModifiedTraceError, Trace
from tests._tiny import bert, t5

EDITED = r"modified in place after capture .* trace\.replace\(attentions=edited\)"


def _trace() -> probe.Trace:
    model, inputs = bert()
    return probe.trace(model, inputs)


@pytest.mark.parametrize("edit", [
    lambda tr: tr.attentions[0].__setitem__(Ellipsis, 0.0),          # the example
    lambda tr: tr.attentions.mul_(1.0),                               # a no-op write counts
    lambda tr: tr.attentions[1, 0, 2].clamp_(max=0.5),                # through a view
    lambda tr: tr.layer_attentions(0).zero_(),                        # a layer, before stacking
    lambda tr: tr.layer_attentions(-1).detach().add_(1.0),            # detach shares the count
])
def test_an_in_place_edit_is_refused_by_the_next_analysis(edit):
    tr = _trace()
    edit(tr)
    for read in (lambda: probe.rollout(tr), lambda: tr.attentions,
                 lambda: tr.layer_attentions(0), lambda: probe.head_stats(tr)):
        with pytest.raises(ModifiedTraceError, match=EDITED) as err:
            read()
        assert isinstance(err.value, probe.ProbeError) and "\n" not in str(err.value)


def test_reads_copies_and_replacements_are_not_edits():
    tr = _trace()
    first = probe.rollout(tr)
    assert torch.equal(probe.rollout(tr), first)  # reading twice, stacking, layer reads
    tr.layer_attentions(0).sum()
    tr.attentions.clone().zero_()  # a copy
    edited = tr.attentions.clone()
    edited[0] = 0.0
    changed = tr.replace(attentions=edited)
    assert float(changed.attentions[0].sum()) == 0.0
    assert torch.equal(probe.rollout(tr), first)  # the original is untouched and readable
    for again in (pickle.loads(pickle.dumps(tr)), copy.deepcopy(tr)):
        assert torch.equal(probe.rollout(again), first)
    unstacked = _trace()  # pickled before its layers were stacked
    copied = pickle.loads(pickle.dumps(unstacked))
    assert torch.equal(probe.rollout(copied), probe.rollout(unstacked))


def test_decoder_and_cross_stacks_are_guarded():
    model, inputs = t5()
    tr = probe.trace(model, inputs)
    tr.cross.attentions[0].zero_()
    with pytest.raises(ModifiedTraceError, match=EDITED):
        tr.cross.attentions
    tr.decoder.layer_attentions(0).zero_()
    with pytest.raises(ModifiedTraceError, match=EDITED):
        tr.decoder.attentions


def test_a_plain_tensor_trace_is_guarded_too():
    attn = torch.softmax(torch.randn(2, 1, 2, 3, 3), -1)
    stack = AttentionStack("self", attn, ("a", "b"), (0, 1), (0, 1))
    attn[0, 0, 0, 0, 0] = 1.0  # the caller's own tensor, written after the stack took it
    with pytest.raises(ModifiedTraceError):
        stack.attentions
    lazy = LazyStack([attn[0].clone(), attn[1].clone()])
    tr = Trace(attentions=lazy, layer_names=("a", "b"), layer_indices=(0, 1),
               head_indices=(0, 1), model_name="m", family="encoder",
               attention_mask=torch.ones(1, 3, dtype=torch.bool),
               special_tokens_mask=torch.zeros(1, 3, dtype=torch.bool))
    lazy.layer(1).add_(0.0)
    with pytest.raises(ModifiedTraceError):
        tr.attentions


def test_what_the_guard_does_not_see():
    """Writes that bypass torch's write count are not detected (stated in the README)."""
    tr = _trace()
    tr.attentions.numpy()[0] = 0.0
    assert float(tr.attentions[0].sum()) == 0.0  # read without an error: documented limit


@pytest.mark.parametrize("stacked", [True, False])
@pytest.mark.parametrize("copier", [lambda tr: pickle.loads(pickle.dumps(tr)), copy.deepcopy])
def test_a_copy_of_an_edited_trace_is_refused_not_laundered(stacked, copier):
    """Pickling or deep-copying an edited trace raises: the copy would hold new tensors with
    fresh write counts, so its reads would pass the edited values off as the model's."""
    tr = _trace()
    if stacked:
        tr.attentions[0].zero_()
    else:
        tr.layer_attentions(0).zero_()
    with pytest.raises(ModifiedTraceError, match=EDITED):
        copier(tr)


@pytest.mark.parametrize("copier", [lambda x: pickle.loads(pickle.dumps(x)), copy.deepcopy])
def test_a_copy_of_an_edited_plain_tensor_stack_is_refused(copier):
    attn = torch.softmax(torch.randn(2, 1, 2, 3, 3), -1)
    stack = AttentionStack("self", attn, ("a", "b"), (0, 1), (0, 1))
    assert torch.equal(copier(stack).attentions, attn)  # unedited: copied as before
    stack.attentions[0].zero_()
    fix = r"modified in place .* dataclasses\.replace\(stack, attentions=edited\)$"
    with pytest.raises(ModifiedTraceError, match=fix):
        copier(stack)
    tr = _trace()
    plain = tr.replace(attentions=tr.attentions.clone())
    plain.attentions[1].add_(1.0)
    with pytest.raises(ModifiedTraceError, match=EDITED):
        copier(plain)


def test_replace_of_an_edited_plain_tensor_trace_is_refused():
    """A chunked capture keeps one tensor (no LazyStack): trace.replace (and so group_words,
    which replaces the words) must not hand the edited tensor to a trace that trusts it."""
    model, inputs = bert()
    tr = probe.trace(model, inputs, chunk_size=4)
    assert not isinstance(tr.__dict__["_attentions_stored"], LazyStack)
    assert torch.equal(tr.replace(model_name="x").attentions, tr.attentions)  # unedited: fine
    tr.attentions[0].zero_()
    with pytest.raises(ModifiedTraceError, match=EDITED):
        tr.replace(model_name="x")
    with pytest.raises(ModifiedTraceError, match=EDITED):
        tr.attentions


def test_a_generation_trace_is_guarded_too():
    """gen.attentions edited in place is refused by the next read (alignment, to_trace), as a
    trace's is: to_trace would otherwise build a trace that notes the edit as captured."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2,
                                       n_head=2)).eval()
    gen = probe.generate(model, torch.tensor([[1, 2, 3]]), max_new_tokens=3)
    before = gen.to_trace().attentions.clone()
    assert torch.equal(pickle.loads(pickle.dumps(gen)).to_trace().attentions, before)
    gen.attentions[0].zero_()
    # the fix named is one a generation has (it has no .replace)
    fix = (r"modified in place after capture .* edited = gen\.attentions\.clone\(\); \.\.\.; "
           r"dataclasses\.replace\(gen, attentions=edited\)$")
    for read in (lambda: gen.attentions, gen.to_trace, lambda: copy.deepcopy(gen)):
        with pytest.raises(ModifiedTraceError, match=fix):
            read()


@pytest.mark.parametrize("model, field", [
    ("gpt2", "prompt_attentions"), ("t5", "prompt_attentions"), ("t5", "cross_prompt"),
])
def test_a_generation_guards_its_prompt_rows_too(model, field):
    """The prompt's rows (``prompt_attentions``, ``cross_prompt``) go into to_trace's square
    matrices as much as ``attentions`` does: edited in place, every read of them refuses."""
    import dataclasses

    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    if model == "gpt2":
        net = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2,
                                         n_head=2)).eval()
        gen = probe.generate(net, torch.tensor([[1, 2, 3]]), max_new_tokens=2)
    else:
        net, inputs = t5()
        gen = probe.generate(net, inputs["input_ids"][:1], max_new_tokens=2, eos_token_id=None,
                             min_new_tokens=2,
                             decoder_input_ids=inputs["decoder_input_ids"][:1])
    rows = getattr(gen, field)
    assert rows is not None and rows is getattr(gen, field)  # the kept tensor, not a copy
    for copied in (pickle.loads(pickle.dumps(gen)), copy.deepcopy(gen)):
        assert torch.equal(getattr(copied, field), rows)
        assert torch.equal(copied.to_trace().attentions, gen.to_trace().attentions)
    rows[0, :, :, 0].clamp_(max=0.0)  # through a view
    pattern = (f"the trace's {field} was modified in place after capture .* edited = "
               rf"gen\.{field}\.clone\(\); \.\.\.; dataclasses\.replace\(gen, {field}=edited\)$")
    for read in (lambda: getattr(gen, field), gen.to_trace, lambda: pickle.dumps(gen),
                 lambda: copy.deepcopy(gen), lambda: dataclasses.replace(gen, model_name="x")):
        with pytest.raises(ModifiedTraceError, match=pattern) as err:
            read()
        assert "\n" not in str(err.value)
    gen.attentions  # the other fields stay readable
