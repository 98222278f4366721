"""Odd inputs hunt 10 left behind (``labels`` that do not fit the model's loss, decoder text
without a pad token, animated images, repeated coreference candidates, ...): each is one
``ProbeError`` line naming the problem and the fix, or an accepted input whose behaviour is
pinned here.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import probe


def _token_classifier() -> Any:
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    return BertForTokenClassification(BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, num_labels=5)).eval()


@pytest.mark.parametrize("labels, message", [
    (torch.tensor([0, 3]), r"^label 3 is outside the 3 classes \(config\.num_labels\) of "
                           r"BertForSequenceClassification \(0\.\.2; -100 ignores a label\)"),
    (torch.tensor([0, -1]), r"^label -1 is outside the 3 classes"),
    (torch.tensor([0, 1, 2]), r"^labels \(3,\) do not fit BertForSequenceClassification: it "
                              r"takes one class index per item, an integer tensor \(2,\)"),
    (torch.tensor(1), r"^labels \(\) do not fit"),
    (torch.tensor([0.0, 1.0]), r"^labels are torch\.float32 but BertForSequenceClassification "
                               r"is a single-label classifier: pass class indices as torch\.long"),
    (torch.tensor([0, 1], dtype=torch.int32), r"^labels are torch\.int32 but .*labels\.long\(\)"),
    ([0, 1], r"^labels must be a tensor, got list: pass torch\.tensor\(labels\)"),
    (torch.tensor([True, False]), r"^labels must be numbers, got torch\.bool"),
])
def test_classification_labels_that_do_not_fit_are_named(labels, message):
    """A class out of range, a wrong batch, float or int32 class indices: IndexError,
    ValueError or RuntimeError from inside the loss, before."""
    from tests._tiny import assert_unchanged, bert_classifier, snapshot

    model, inputs = bert_classifier()
    before = snapshot(model)
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, inputs, labels=labels)
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, {**inputs, "labels": labels})
    assert_unchanged(model, before)
    assert model.config.problem_type is None


def test_classification_labels_that_fit_still_give_the_loss():
    """Class indices [batch] (or [batch, 1], -100 ignoring an item) give ``output.loss``, as a
    keyword and as a mapping key; transformers writes the problem type it inferred into the
    config, probe puts it back (a later call with float labels failed on the stale type)."""
    from tests._tiny import bert_classifier

    model, inputs = bert_classifier()
    plain = model(**inputs, labels=torch.tensor([0, 2])).loss
    model.config.problem_type = None
    for labels in (torch.tensor([0, 2]), torch.tensor([[0], [2]])):
        torch.testing.assert_close(probe.trace(model, inputs, labels=labels).output.loss, plain)
        assert model.config.problem_type is None
    out = probe.trace(model, {**inputs, "labels": torch.tensor([0, -100])}).output
    assert torch.isfinite(out.loss)
    multi = probe.trace(model, inputs, labels=torch.tensor([[0.0, 1, 0], [1, 0, 1]]))
    assert torch.isfinite(multi.output.loss) and model.config.problem_type is None


@pytest.mark.parametrize("kind, good, bad, message", [
    # integer targets (ratings, counts) are what MSE takes too; a bool tensor is no target
    ("regression", torch.tensor([[0, 1, 2], [2, 1, 0]]),
     torch.tensor([[0, 1, 1], [1, 0, 1]]).bool(),
     r"^labels must be numbers, got torch\.bool"),
    ("regression", torch.rand(2, 3), torch.rand(2, 2),
     r"^labels \(2, 2\) do not fit BertForSequenceClassification \(regression, "
     r"config\.num_labels=3\)"),
    ("multi_label_classification", torch.tensor([[0.0, 1, 1], [1, 0, 0]]),
     torch.tensor([[0, 1, 1], [1, 0, 0]]),
     r"^labels are torch\.int64 .* multi_label_classification head .*floats \(2, 3\)"),
    ("multi_label_classification", torch.rand(2, 3), torch.rand(2),
     r"^labels \(2,\) do not fit .*a 0/1 float per item and class \(3 classes\)"),
])
def test_regression_and_multi_label_take_floats_of_their_shape(kind, good, bad, message):
    from tests._tiny import bert_classifier

    model, inputs = bert_classifier()
    model.config.problem_type = kind
    assert torch.isfinite(probe.trace(model, inputs, labels=good).output.loss)
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, inputs, labels=bad)
    assert model.config.problem_type == kind


def test_a_single_output_regressor_takes_one_float_per_item():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=64, num_labels=1)).eval()
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    for labels in (torch.tensor([0.5, 1.5]), torch.tensor([[0.5], [1.5]])):
        assert torch.isfinite(probe.trace(model, ids, labels=labels).output.loss)
    with pytest.raises(probe.ProbeError, match=r"one target value per item, floats \(2,\)"):
        probe.trace(model, ids, labels=torch.rand(2, 3))
    ints = torch.tensor([0, 1])  # integer targets: MSE takes them (they were refused)
    torch.testing.assert_close(probe.trace(model, ids, labels=ints).output.loss,
                               model(ids, labels=ints).loss)


@pytest.mark.parametrize("change, message", [
    (lambda ids: ids[:, :4], r"^labels \(2, 4\) do not fit GPT2LMHeadModel: it takes one token "
                             r"id per input token, an integer tensor \(2, 9\); pass labels "
                             r"shaped like input_ids"),
    (lambda ids: ids[:1], r"^labels \(1, 9\) do not fit"),
    (lambda ids: ids[0], r"^labels \(9,\) do not fit"),
    (lambda ids: ids + 100, r"^label 1\d\d is outside the 99 ids of the vocabulary of "
                            r"GPT2LMHeadModel \(0\.\.98; -100 ignores a label\)"),
    (lambda ids: ids - 50, r"^label -\d+ is outside the 99 ids of the vocabulary"),
    (lambda ids: ids.float(), r"^labels are torch\.float32 but GPT2LMHeadModel's loss takes one "
                              r"token id per input token as torch\.long"),
])
def test_language_model_labels_are_checked_against_the_ids_and_vocabulary(change, message):
    from tests._tiny import gpt2

    model, inputs = gpt2()
    ids = inputs["input_ids"]
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, inputs, labels=change(ids))
    plain = probe.trace(model, inputs, labels=ids).output.loss
    torch.testing.assert_close(plain, model(**inputs, labels=ids).loss)
    ignored = ids.masked_fill(ids < 30, -100)
    assert torch.isfinite(probe.trace(model, inputs, labels=ignored).output.loss)


def test_masked_lm_labels_are_checked_like_causal_ones():
    from transformers import BertConfig, BertForMaskedLM

    model = BertForMaskedLM(BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=64)).eval()
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    assert torch.isfinite(probe.trace(model, ids, labels=torch.full_like(ids, -100).index_fill(
        1, torch.tensor([1]), 42)).output.loss)
    with pytest.raises(probe.ProbeError,
                       match=r"^label 99 is outside the 99 ids .*BertForMaskedLM"):
        probe.trace(model, ids, labels=torch.full_like(ids, 99))


@pytest.mark.parametrize("labels, message", [
    (torch.full((2, 9), 5), r"^label 5 is outside the 5 classes \(config\.num_labels\) of "
                            r"BertForTokenClassification"),
    (torch.zeros(2, 4, dtype=torch.long),
     r"^labels \(2, 4\) do not fit BertForTokenClassification: it takes one class index per "
     r"token, an integer tensor \(2, 9\); pass one label per token, -100 for tokens without one"),
    (torch.tensor([0, 1]), r"^labels \(2,\) do not fit BertForTokenClassification"),
])
def test_token_classification_labels_are_one_class_per_token(labels, message):
    from tests._tiny import _ids

    model, inputs = _token_classifier(), _ids()
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, inputs, labels=labels)
    fit = torch.randint(0, 5, (2, 9)).masked_fill(inputs["attention_mask"] == 0, -100)
    assert torch.isfinite(probe.trace(model, inputs, labels=fit).output.loss)


@pytest.mark.parametrize("build", ["t5", "bart"])
def test_seq2seq_labels_without_decoder_inputs_are_read_shifted_right(build):
    """``tokenizer(src, text_target=tgt)`` gives ``labels`` beside the ids: probe's own
    one-token decoder input made the loss fail on a length mismatch. Without decoder inputs
    the decoder reads the labels shifted right, as transformers does itself."""
    import tests._tiny as tiny

    model, inputs = getattr(tiny, build)()
    inputs.pop("decoder_input_ids")
    labels = torch.tensor([[5, 6, 7], [8, 9, -100]])
    tr = probe.trace(model, {**inputs, "labels": labels})
    hf = model(**inputs, labels=labels, output_attentions=True)
    torch.testing.assert_close(tr.output.loss, hf.loss)
    assert tr.cross.attentions.shape[-2] == 3  # three decoder tokens, not the start token alone
    torch.testing.assert_close(probe.trace(model, inputs, labels=labels).output.loss, hf.loss)


@pytest.mark.parametrize("labels, decoder, message", [
    (torch.tensor([[5, 6, 7]]), None,
     r"^labels \(1, 3\) do not fit T5ForConditionalGeneration: it takes one target token id per "
     r"decoder token, an integer tensor \(2, 3\); pass \[batch, target\] token ids"),
    (torch.tensor([5, 6, 7]), None, r"^labels \(3,\) do not fit T5ForConditionalGeneration"),
    (torch.tensor([[5, 6, 700], [5, 6, 7]]), None,
     r"^label 700 is outside the 99 ids of the vocabulary of T5ForConditionalGeneration"),
    (torch.tensor([[5, 6, 7], [5, 6, 7]]), torch.tensor([[0, 5]]),
     r"^labels \(2, 3\) do not fit .*an integer tensor \(2, 2\); pass labels as long as the "
     r"decoder input \(or leave decoder_inputs out"),
    (torch.tensor([[5.0, 6, 7], [5, 6, 7]]), None, r"^labels are torch\.float32 but"),
])
def test_seq2seq_labels_that_do_not_fit_are_named(labels, decoder, message):
    from tests._tiny import t5

    model, inputs = t5()
    inputs.pop("decoder_input_ids")
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, inputs, labels=labels, decoder_inputs=decoder)
    fit = probe.trace(model, inputs, labels=torch.tensor([[5, 6], [7, -100]]),
                      decoder_inputs=torch.tensor([[0, 5]]))
    assert torch.isfinite(fit.output.loss)


def test_a_composite_encoder_decoder_takes_sliced_labels():
    """EncoderDecoderModel's loss ``.view()``s the labels: a slice of the ids failed there."""
    from tests._tiny import _ids
    from tests.test_odd_inputs_hunt10 import _bert2bert

    model, ids = _bert2bert(), _ids()["input_ids"]
    out = probe.trace(model, {"input_ids": ids, "labels": ids[:, :4]}).output
    assert torch.isfinite(out.loss)
    with pytest.raises(probe.ProbeError, match=r"^label 2\d\d is outside the 99 ids .*"
                                               r"EncoderDecoderModel"):
        probe.trace(model, {"input_ids": ids, "labels": ids[:, :4] + 200})


def test_labels_given_twice_are_refused():
    from tests._tiny import bert_classifier

    model, inputs = bert_classifier()
    with pytest.raises(probe.ProbeError, match=r"^labels are given twice, as labels= and in the "
                                               r"input mapping: pass one of them$"):
        probe.trace(model, {**inputs, "labels": torch.tensor([0, 1])},
                    labels=torch.tensor([0, 1]))


def test_attribute_and_batches_check_labels_in_mapping_batches():
    """``probe.attribute`` and ``attribute_batches`` run the loss of a mapping with labels: a
    bad class was an IndexError from the model; labels that fit still pass."""
    from tests._tiny import bert_classifier

    model, inputs = bert_classifier()
    bad = {**inputs, "labels": torch.tensor([0, 5])}
    for method in ("attention", "ig"):
        with pytest.raises(probe.ProbeError, match=r"^label 5 is outside the 3 classes"):
            probe.attribute(model, bad, method, n_steps=2) if method == "ig" else \
                probe.attribute(model, bad, method)
    with pytest.raises(probe.ProbeError, match=r"^label 5 is outside the 3 classes"):
        probe.attribute_batches(model, [bad], "attention")
    good = {**inputs, "labels": torch.tensor([0, 2])}
    assert probe.attribute(model, good, "ig", n_steps=2).scores.shape == (2, 9)
    assert model.config.problem_type is None


def test_image_classifier_labels_are_checked():
    from tests._tiny import hf_vit

    model, pixels = hf_vit()
    assert torch.isfinite(probe.trace(model, pixels, labels=torch.tensor([0, 2])).output.loss)
    with pytest.raises(probe.ProbeError, match=r"^label 3 is outside the 3 classes "
                                               r"\(config\.num_labels\) of ViTForImageClassifi"):
        probe.trace(model, pixels, labels=torch.tensor([0, 3]))
    assert model.config.problem_type is None


def test_decoder_text_needs_no_pad_token_unless_lengths_differ():
    """The decoder text was encoded with ``padding=True``: a tokenizer without a pad token let
    transformers' "Asking to pad" ValueError through, even for one decoder text."""
    from tests._tiny import toy_marian

    model, tok = toy_marian()
    with_pad = probe.trace(model, ["the cat sat", "the dog"], tokenizer=tok,
                           decoder_inputs="the cat")
    tok.pad_token = None
    src = ["the cat sat", "the dog"]
    one = probe.trace(model, src, tokenizer=tok, decoder_inputs="the cat")
    assert one.decoder_tokens == (("the", "cat", "</s>"),) * 2
    torch.testing.assert_close(one.attentions, with_pad.attentions)
    torch.testing.assert_close(one.cross.attentions, with_pad.cross.attentions)
    same = probe.trace(model, src, tokenizer=tok, decoder_inputs=["the cat", "the dog"])
    assert same.decoder_tokens[1] == ("the", "dog", "</s>")
    with pytest.raises(probe.ProbeError, match=(
            r"^the 2 decoder texts are 3 to 4 tokens long and the tokenizer has no pad token "
            r"to even them out: set tokenizer\.pad_token \(e\.g\. tokenizer\.pad_token = "
            r"tokenizer\.eos_token\), or pass padded decoder_input_ids")):
        probe.trace(model, src, tokenizer=tok, decoder_inputs=["the cat", "the dog sat"])
    assert tok.pad_token is None



def _frames(path: Any, count: int, **save: Any) -> list[Any]:
    """``count`` frames of distinct colours saved as one animated/multi-page file."""
    from PIL import Image

    frames = [Image.new("RGB", (32, 32), (60 * i, 255 - 60 * i, 0)) for i in range(count)]
    frames[0].save(path, save_all=True, append_images=frames[1:], **save)
    return frames


@pytest.mark.parametrize("name, save", [("anim.gif", dict(duration=100, loop=0)),
                                        ("pages.tiff", {})])
def test_a_file_of_several_frames_warns_once_and_uses_frame_zero(name, save, tmp_path):
    """An animated GIF or multi-page TIFF silently gave its first frame. Frame 0 is still used
    (as transformers does, and as RGBA or 16-bit files are converted rather than refused), with
    one warning naming the frame count."""
    import warnings

    from PIL import Image

    model = probe.load_model("vit-shapes")
    path = tmp_path / name
    frames = _frames(path, 3, **save)
    still = tmp_path / "frame0.png"
    frames[0].save(still)
    with pytest.warns(UserWarning, match=rf"^probe\.load_image: '{name}' holds 3 frames \(an "
                      r"animation or a multi-page file\); frame 0 is used: save the frame you "
                      r"mean as a still image \(PNG\)") as caught:
        img = probe.load_image(str(path), model)
    assert len([w for w in caught if "frames" in str(w.message)]) == 1
    assert caught[0].filename == __file__  # points at the caller's line
    torch.testing.assert_close(img.pixel_values, probe.load_image(str(still), model).pixel_values,
                               atol=0.02, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.load_image(str(still), model)  # one frame: no warning
    assert Image.open(path).n_frames == 3


def test_render_notes_a_file_of_several_frames_on_stderr(tmp_path, capsys):
    from probe.cli import main

    path = tmp_path / "anim.gif"
    _frames(path, 4, duration=100, loop=0)
    out = tmp_path / "out"
    rc = main(["render", "rollout", "--image", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0 and len(list(out.iterdir())) == 1
    assert err.strip() == ("probe: note: --image 'anim.gif' holds 4 frames (an animation or a "
                           "multi-page file); frame 0 is used: save the frame you mean as a "
                           "still image (PNG) to look at another")


def test_coref_candidates_are_a_set_in_sentence_order(minilm):
    """``candidates=["animal", "animal"]`` was quietly de-duplicated: pinned and documented.
    A word named twice (as text, or as text and index) counts once, and the candidates are
    reported in sentence order whatever order they were given in."""
    model, tok = minilm
    tr = probe.trace(model, "The animal didn't cross the street because it was tired.",
                     tokenizer=tok)
    words = list(tr.words[0])
    animal, street = words.index("animal"), words.index("street")
    once = probe.coref(tr, "it", candidates=["animal"])
    assert probe.coref(tr, "it", candidates=["animal", "animal"]) == once
    assert probe.coref(tr, "it", candidates=["animal", animal, "Animal"]) == once
    both = probe.coref(tr, "it", candidates=["animal", "street"])
    assert probe.coref(tr, "it", candidates=["street", "animal", "street"]) == both
    for given in (["street", "animal"], ["animal", "street", street]):
        report = probe.best_antecedents(tr, "it", candidates=given)
        assert report.candidates == (animal, street)


def test_seq2seq_generation_past_the_decoder_positions_is_refused():
    """A Marian/BART decoder has a position table: ``max_new_tokens`` beyond it was an
    IndexError from the embedding after the model had generated that far."""
    from tests._tiny import t5, toy_marian

    model, tok = toy_marian()  # max_position_embeddings=32
    full = probe.generate(model, "the cat", tokenizer=tok, max_new_tokens=32, min_new_tokens=32)
    assert full.sequences.shape[-1] == 33
    with pytest.raises(probe.ProbeError, match=r"^max_new_tokens=33 would take the decoder past "
                                               r"the 32 positions MarianMTModel accepts: use "
                                               r"max_new_tokens <= 32$"):
        probe.generate(model, "the cat", tokenizer=tok, max_new_tokens=33)
    relative, inputs = t5()  # relative positions: no limit
    assert probe.generate(relative, inputs["input_ids"], max_new_tokens=70,
                          min_new_tokens=70).sequences.shape[-1] == 71


def test_json_output_to_a_device_or_pipe_is_refused_not_replaced(tmp_path, capsys):
    """``probe eval --json /dev/null`` replaced /dev/null with a regular file (the atomic
    rename; as root it broke the system's /dev/null). A FIFO stands in for the device here."""
    import os
    import stat

    from probe._report import write_json
    from probe.cli import main

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(probe.ProbeError, match=r"^cannot save JSON to '.*pipe': it is not a "
                                               r"regular file \(a device, pipe or socket\)"):
        write_json(fifo, {"a": 1})
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    rc = main(["eval", "coref", "--n", "2", "--json", str(fifo), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"probe: error: cannot write {fifo}: it is not a regular file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_json_output_through_a_symlink_keeps_the_link(tmp_path):
    import json
    import os

    from probe._report import write_json

    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    os.symlink(real, link)
    assert write_json(link, {"a": 1}) == link
    assert link.is_symlink() and json.loads(real.read_text()) == {"a": 1}


def test_integer_regression_targets_give_transformers_own_loss():
    """MSE promotes integer targets: a regressor takes ratings as ints (they were refused)."""
    from tests._tiny import bert_classifier

    model, inputs = bert_classifier()
    model.config.problem_type = "regression"
    labels = torch.tensor([[0, 1, 2], [2, 1, 0]])
    plain = model(**inputs, labels=labels).loss
    torch.testing.assert_close(probe.trace(model, inputs, labels=labels).output.loss, plain)
