"""Odd inputs found by a third hunt on the error promise (generation, attribution, gates, render):
each is one ``ProbeError`` line naming the problem and the fix, never an error from deep inside
torch or transformers, and nothing is left on the model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import probe
from tests._tiny import gpt2


def _state(model: torch.nn.Module) -> tuple:
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    return hooks, model.training, model.config._attn_implementation


@pytest.fixture(scope="module")
def tiny_gpt2():
    model, inputs = gpt2()
    return model, inputs["input_ids"][:1]


# each was an error from inside transformers' generate (or, for custom_generate, probe's own
# AttributeError on the None it returned), or a silently wrong result; all refused up front now
REFUSED = [
    (dict(dola_layers="low"), r"^dola_layers='low' \(passed to generate\) asks for DoLa"),
    (dict(force_words_ids=[[5]]), r"force_words_ids=\[\[5\]\] .* constrained beam search"),
    (dict(penalty_alpha=0.6, top_k=4), r"penalty_alpha=0\.6 .* contrastive search.*drop"),
    (dict(custom_generate=lambda *a, **k: None), r"^custom_generate=.* drop it"),
    (dict(use_mtp=True), r"^use_mtp=True .* multi-token prediction"),
    (dict(logits_processor=5), r"^logits_processor= must be a list of callables .* got int"),
    (dict(past_key_values=5), r"^past_key_values= starts generation from a cache"),
    (dict(stop_strings=["a"]), r"^stop_strings=\['a'\] \(passed to generate\) needs the "
                               r"tokenizer: pass tokenizer="),
    (dict(generation_config=__import__("transformers").GenerationConfig(stop_strings=["a"])),
     r"^stop_strings=\['a'\] \(from the generation_config passed\) needs the tokenizer"),
    (dict(forced_eos_token_id=1000), r"^forced_eos_token_id=1000 .* outside the vocabulary .*"
                                     r"\(ids 0\.\.98\)"),
    (dict(eos_token_id="x"), r"^eos_token_id='x' \(passed to generate\) is not a token id"),
    (dict(cache_implementation="quantized"), r"^cache_implementation='quantized' .* drop it"),
    (dict(cache_implementation="static"), r"^cache_implementation='static' .* drop it"),
    # was a CUDA error from transformers on a CPU model
    (dict(cache_implementation="offloaded"), r"^cache_implementation='offloaded' \(passed to "
                                             r"generate\) moves the cache between a CUDA device"),
    # was AttributeError: 'object' object has no attribute 'put'
    (dict(streamer=object()), r"^streamer= must have put\(\) and end\(\) methods .* got "
                              r"object"),
    (dict(generation_config={"do_sample": True}), r"^generation_config= must be a transformers "
                                                  r"GenerationConfig, got dict"),
    # a mask passed beside the inputs reached the model but not probe's record of the keys
    (dict(attention_mask=torch.ones(1, 9, dtype=torch.long)), r"^attention_mask= passed to "
                                                              r"generate would bypass"),
    (dict(bad_words_ids=[[500]]), r"^bad_words_ids=\[\[500\]\] .* token id 500 is outside"),
    (dict(sequence_bias={(500,): 1.0}), r"token id 500 is outside the vocabulary"),
    (dict(exponential_decay_length_penalty=5), r"must be a pair \(start_index, decay_factor\)"),
    (dict(synced_gpus=True), r"^synced_gpus=True needs a torch\.distributed process group"),
    # was RuntimeError: Boolean value of Tensor with more than one value is ambiguous (probe's)
    (dict(do_sample=True, temperature=torch.rand(30)), r"^temperature=<Tensor of shape \(30,\)> "
                                                       r"must be a plain Python number"),
    # said "did you mean temperature?"
    (dict(do_sample=True, generator=torch.Generator()), r"^generator=.* \(sampling draws from "
                                                         r"torch's global random state: call "
                                                         r"torch\.manual_seed\(n\) before"),
    # was the tensor printed over many lines
    (dict(pixel_values=torch.rand(1, 3, 32, 32)), r"^pixel_values=<Tensor of shape \(1, 3, 32, "
                                                  r"32\)> \(passed to generate\) is neither"),
]


@pytest.mark.parametrize("options, message", REFUSED, ids=[str(sorted(o)) for o, _ in REFUSED])
def test_generate_refuses_modes_and_arguments_up_front(tiny_gpt2, options, message):
    model, ids = tiny_gpt2
    before = _state(model)
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(probe.ProbeError, match=message) as err:
            probe.generate(model, ids, max_new_tokens=2, **options)
    finally:
        handle.remove()
    assert not calls  # refused before any forward pass
    assert "\n" not in str(err.value)
    assert _state(model) == before


def test_generate_from_inputs_embeds_of_a_decoder_is_refused(tiny_gpt2):
    """Was a result whose rows lacked the prompt's keys (they summed to 0.67, not 1): generate
    returns only the new tokens from ``inputs_embeds``."""
    model, _ = tiny_gpt2
    with pytest.raises(probe.ProbeError, match=r"needs the prompt as input_ids"):
        probe.generate(model, {"inputs_embeds": torch.randn(1, 3, 32)}, max_new_tokens=2)


def test_stop_strings_reach_generate_with_the_tokenizer_given_to_probe():
    """``probe.generate(..., tokenizer=tok, stop_strings=[...])`` was transformers' ValueError
    'could not locate a tokenizer': probe took the tokenizer and did not pass it on."""
    from tests._tokenizers import byte_level

    tok = byte_level()
    torch.manual_seed(0)  # the weights pick the first token: fixed, not the suite's RNG state
    model, _ = gpt2()
    model.resize_token_embeddings(len(tok))
    enc = tok(["The cat sat"], return_tensors="pt")
    first = model.generate(**enc, max_new_tokens=1, do_sample=False)[0, -1]
    stop = tok.decode([int(first)])  # the first generated token: generation stops at once
    assert "\ufffd" not in stop  # a whole character (part of one's bytes would never match)
    plain = model.generate(**enc, max_new_tokens=6, stop_strings=[stop], tokenizer=tok)
    gen = probe.generate(model, "The cat sat", tokenizer=tok, max_new_tokens=6,
                         stop_strings=[stop])
    torch.testing.assert_close(gen.sequences, plain)
    assert gen.sequences.shape[1] == enc["input_ids"].shape[1] + 1


def test_aer_takes_links_from_json_and_tensors():
    """Gold links read from JSON are lists of lists: ``set()`` of them was ``TypeError:
    unhashable type: 'list'``; an ``[n, 2]`` tensor was a set of tensors that never matched."""
    pred = [[1, 1], [0, 0]]  # as json.load gives them
    assert probe.alignment_error_rate(pred, [[1, 1]], [[0, 0]]) == 0.0
    assert probe.alignment_error_rate(torch.tensor(pred), {(1, 1)}, {(0, 0)}) == 0.0
    assert probe.corpus_aer([pred], [[[1, 1]]], [[[0, 0]]]) == 0.0
    assert probe.corpus_aer((links for links in [{(0, 0)}]), [{(0, 0)}]) == 0.0  # a generator


@pytest.mark.parametrize("call, message", [
    # was a silent AER of 1.0: the ints 1 and 2 never equal a pair
    (lambda: probe.alignment_error_rate([1, 2], {(1, 1)}), r"^predicted link 1 is not a "
                                                           r"\(target_word, source_word\) pair"),
    (lambda: probe.alignment_error_rate(None, {(1, 1)}), r"^predicted links must be a set .* "
                                                         r"got NoneType"),  # was a TypeError
    (lambda: probe.alignment_error_rate({(0, 0)}, {(-1, 0)}), r"^sure link \(-1, 0\) has a "
                                                              r"negative word index"),
    # one sentence's links passed as the corpus: was a silent AER over the pairs' numbers
    (lambda: probe.corpus_aer({(0, 0), (1, 1)}, {(0, 0), (1, 1)}),
     r"^predicted must be a list with one set of links per sentence, got set"),
])
def test_aer_names_links_that_are_not_pairs(call, message):
    with pytest.raises(probe.ProbeError, match=message):
        call()


@pytest.fixture(scope="module")
def classifier():
    from tests._tiny import bert_classifier

    return bert_classifier()  # 3 classes, LABEL_0..LABEL_2, vocabulary 0..98


def test_a_numpy_class_index_is_a_class_index(classifier):
    """``target=np.argmax(...)`` (an ``np.int64``) was 'target must be ..., got int64'."""
    import numpy as np

    model, inputs = classifier
    got = probe.attribute(model, inputs, "saliency", target=np.int64(2))
    torch.testing.assert_close(got.scores,
                               probe.attribute(model, inputs, "saliency", target=2).scores)


@pytest.mark.parametrize("options, message", [
    # were 'target must be None, ..., got str' without naming the index to pass
    (dict(target="LABEL_1"), r"^target='LABEL_1' is a label name: pass its class index, "
                             r"target=1 \(model\.config\.label2id\)$"),
    (dict(target="positive"), r"^target='positive' is not a class of the model \(its labels: "
                              r"\['LABEL_0', 'LABEL_1', 'LABEL_2'\]\)"),
    (dict(target=[0, 1]), r"^target is a list: pass one class per batch item as a tensor"),
    # was RuntimeError: element 0 of tensors does not require grad (torch autograd)
    (dict(target=lambda out: out.logits[:, 0].detach()), r"returned a tensor cut from the "
                                                         r"model output's graph"),
    # were NaN scores, returned silently
    (dict(target=lambda out: (out.logits[:, 0] - out.logits[:, 0]).log()),  # log(0)
     r"returned -inf for batch item 0: the explained score must be finite"),
    # were IndexError: index out of range in self (the embedding, inside captum)
    (dict(method="ig", n_steps=2, baseline=1000), r"^the Integrated Gradients baseline token id "
                                                  r"1000 is outside the vocabulary .*0\.\.98"),
    (dict(method="ig", n_steps=2, baseline=torch.full((2, 9), -1)), r"baseline token id -1 "),
    # 1.5 was taken silently (torch seeded with 1), 2**70 was an OverflowError from torch
    (dict(method="random", seed=1.5), r"^seed must be an integer, got 1\.5$"),
    (dict(method="random", seed=2**70), r"^seed 1180591620717411303424 is out of range"),
])
def test_attribute_names_odd_targets_baselines_and_seeds(classifier, options, message):
    model, inputs = classifier
    options = dict(options)
    method = options.pop("method", "saliency")
    with pytest.raises(probe.ProbeError, match=message) as err:
        probe.attribute(model, inputs, method, **options)
    assert "\n" not in str(err.value)
    assert not model.training


def test_a_numpy_batch_size_counts_as_its_int(classifier):
    """``batch_size=np.int64(1)`` was 'batch_size must be a positive integer or None, got
    np.int64(1)': refused as not an integer while being one."""
    import numpy as np

    model, inputs = classifier
    ids = inputs["input_ids"]
    got = probe.attribute_batches(model, ids, "random", batch_size=np.int64(1), progress=False)
    assert got.info["batches"] == 2


def test_an_image_processor_output_names_its_pixel_values():
    """``probe.trace(vit, processor(images, return_tensors='pt'))`` said 'convert images with
    the model's preprocessing first' to someone who had just done so."""
    from transformers import BatchFeature

    from tests._tiny import hf_vit

    model, pixels = hf_vit()
    with pytest.raises(probe.ProbeError, match=r"^vision models take the pixel tensor itself, "
                       r"got the processor's BatchFeature \['pixel_values'\]: pass "
                       r"inputs\['pixel_values'\]$"):
        probe.trace(model, BatchFeature({"pixel_values": pixels}))
    torch.testing.assert_close(probe.trace(model, pixels).attentions.sum(-1),
                               torch.ones(2, 2, 4, 17))  # the fix works


def test_an_image_that_is_not_a_tensor_names_probe_load_image(tmp_path):
    """A PIL image or an array said only "convert images with the model's preprocessing
    first"; ``probe.load_image`` (in the README nowhere) does that for an image file."""
    from PIL import Image

    from tests._tiny import hf_vit

    model, _ = hf_vit()
    image = Image.new("RGB", (40, 30), (200, 10, 10))
    for given, name in ((image, "Image"), (np.zeros((1, 3, 32, 32), np.float32), "ndarray")):
        with pytest.raises(probe.ProbeError) as err:
            probe.trace(model, given)
        assert str(err.value) == (
            f"vision models take a pixel tensor [batch, channel, height, width], got {name}; "
            "convert images with the model's preprocessing first (an image file: "
            "probe.load_image(path, model).pixel_values)")
    image.save(tmp_path / "red.png")
    pixels = probe.load_image(str(tmp_path / "red.png"), model).pixel_values  # the named fix
    assert probe.trace(model, pixels).attentions.shape[1] == 1


@pytest.fixture(scope="module")
def detr():
    from transformers import DetrForObjectDetection

    from tests.test_detr import _config

    torch.manual_seed(0)
    return DetrForObjectDetection(_config(attn_implementation="sdpa")).eval()


def test_detr_padded_processor_output_and_class_targets_are_named(detr):
    padded = {"pixel_values": torch.rand(2, 3, 64, 64),
              "pixel_mask": torch.cat([torch.ones(1, 64, 64), torch.zeros(1, 64, 64)]).long()}
    with pytest.raises(probe.ProbeError, match=r"^the image processor padded these images .*"
                                               r"pixel_mask has zeros"):
        probe.trace(detr, padded)
    # was '(per-token logits); pass ... out.logits[:, -1, token_id]': a language-model hint
    with pytest.raises(probe.ProbeError, match=r"per-query logits of an object detector.*"
                                               r"out\.logits\[:, query, class_id\]"):
        probe.attribute(detr, torch.rand(1, 3, 64, 96), "saliency", target=0)
    got = probe.attribute(detr, torch.rand(1, 3, 64, 96), "saliency",
                          target=lambda out: out.logits[:, 0, 1])  # the fix named works
    assert got.scores.shape == (1, 6)


def test_the_unknown_word_note_cuts_a_very_long_word(minilm):
    """A 3000-letter ``--text`` word was printed whole in the note: one 3100-character line."""
    from probe.commands.render._notes import unknown_words_note

    _, tok = minilm
    note = unknown_words_note(tok, "a " + "x" * 3000 + " b", "minilm")
    assert note.endswith(f"reaches the model as [UNK]: {'x' * 30!r}... (3000 characters)")
    assert len(note) < 200
    short = unknown_words_note(tok, "a 👨\u200d👩\u200d👧 b", "minilm")  # short words stay whole
    assert short.endswith(": '👨\\u200d👩\\u200d👧'")


def test_gradient_alignment_names_a_model_that_did_not_generate():
    """Another encoder-decoder whose vocabulary holds the ids gave a silent alignment of
    gradients through a model that never made these tokens."""
    from tests._tiny import t5

    model, tok = probe.load_model("toy-mt")
    gen = probe.generate(model, "a huge tree greets a fire truck today", tokenizer=tok,
                         max_new_tokens=24)
    other = t5()[0]
    before = _state(other)
    with pytest.raises(probe.ProbeError, match=r"^this generation was not made by "
                       r"T5ForConditionalGeneration \(92 scores per step; the model has 99 "
                       r"logits\): pass the model that generated it \(toy-mt\)$"):
        probe.gradient_alignment(other, gen)
    assert _state(other) == before and all(not p.requires_grad or p.grad is None
                                           for p in other.parameters())
    assert probe.gradient_alignment(model, gen).target_words == probe.alignment(gen).target_words


@pytest.mark.parametrize("options, message", [
    # were NaN scores, returned silently
    (dict(baseline=float("inf")), r"^option 'baseline' of method 'ig' holds NaN or inf"),
    (dict(baseline=torch.full((1, 3, 32, 32), float("nan"))), r"holds NaN or inf"),
    # were the whole array / tensor printed over many lines
    (dict(baseline=__import__("numpy").zeros((1, 3, 32, 32), "float32")),
     r"got a ndarray of shape \(1, 3, 32, 32\): pass torch\.as_tensor\(baseline\)$"),
    (dict(n_steps=torch.arange(100)), r"^option 'n_steps' of method 'ig' must be int, got a "
                                      r"Tensor of shape \(100,\)$"),
])
def test_ig_options_on_images_are_finite_and_named_in_one_line(options, message):
    from tests._tiny import timm_model

    model, pixels = timm_model("vit_small_patch16_224")
    with pytest.raises(probe.ProbeError, match=message) as err:
        probe.attribute(model, pixels, "ig", **{"n_steps": 2, **options})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("options", [
    dict(do_sample=True, temperature=np.float64(0.7), top_p=np.float64(0.9),
         repetition_penalty=np.float64(1.1)),
    dict(eos_token_id=[np.int64(3)], pad_token_id=np.int64(3)),
    dict(eos_token_id=np.array([3, 4])),
    dict(eos_token_id=np.int64(3)),
    dict(eos_token_id=torch.tensor(3)),
], ids=["numpy-floats", "numpy-int-list", "numpy-array", "numpy-int", "0-d-tensor"])
def test_numpy_numbers_and_0d_tensors_are_taken_as_transformers_takes_them(tiny_gpt2, options):
    """numpy floats and token ids were refused (or a raw TypeError after the whole generation
    for a 0-d tensor of EOS); transformers takes them all."""
    model, ids = tiny_gpt2
    torch.manual_seed(0)
    gen = probe.generate(model, ids, max_new_tokens=3, **options)
    torch.manual_seed(0)
    plain = model.generate(ids, max_new_tokens=3, **options)
    assert torch.equal(gen.sequences, plain)


def test_a_tensor_of_eos_ids_is_taken_as_transformers_takes_it(tiny_gpt2):
    model, ids = tiny_gpt2
    as_list = probe.generate(model, ids, max_new_tokens=3, eos_token_id=[1, 2])
    as_tensor = probe.generate(model, ids, max_new_tokens=3, eos_token_id=torch.tensor([1, 2]))
    torch.testing.assert_close(as_tensor.sequences, as_list.sequences)


def test_plot_of_an_alignment_or_gates_names_their_viewers():
    """``probe.plot(probe.alignment(gen))`` was AttributeError: 'Alignment' object has no
    attribute 'model_name' (it has ``scores`` and ``method``, so it passed for an
    attribution)."""
    from tests._cnn import timm_cnn

    model, tok = probe.load_model("toy-mt")
    al = probe.alignment(probe.generate(model, "a huge tree", tokenizer=tok, max_new_tokens=5))
    with pytest.raises(probe.ProbeError, match=r"^plot draws traces and attributions, not an "
                                               r"Alignment: .*alignment_view"):
        probe.plot(al)
    gates = probe.trace_gates(timm_cnn("resnet18", attn="cbam"), torch.rand(1, 3, 32, 32))
    with pytest.raises(probe.ProbeError, match=r"not a GateTrace: .*gate_figures"):
        probe.plot(gates)


def test_non_finite_pixels_are_named_before_the_forward():
    """NaN or inf pixels gave NaN attention maps and gate maps silently."""
    from tests._cnn import timm_cnn
    from tests._tiny import hf_vit

    model, pixels = hf_vit()
    bad = pixels.clone()
    bad[1, 2, 3, 4] = float("nan")
    bad[1, 0, 5, 5] = float("inf")
    before = bad.clone()
    message = (r"^pixel_values hold 2 non-finite value\(s\) \(first: inf at image 1, channel 0, "
               r"row 5, column 5\), which would make every attention map NaN: fix the image or "
               r"its preprocessing \(torch\.nan_to_num\(x\) replaces them\)$")
    with pytest.raises(probe.ProbeError, match=message):
        probe.trace(model, bad)
    with pytest.raises(probe.ProbeError, match=r"^pixel_values hold 2 non-finite"):
        probe.attribute(model, bad, "rollout")
    torch.testing.assert_close(bad, before, equal_nan=True)  # the input is untouched
    cnn = timm_cnn("resnet10t", "se")
    images = torch.zeros(1, 3, 32, 32)
    images[0, 1, 0, 0] = float("nan")
    with pytest.raises(probe.ProbeError, match=r"non-finite value\(s\) \(first: nan at image 0"):
        probe.trace_gates(cnn, images)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in cnn.modules())


def _all_hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_output_flags_leave_no_transformers_hooks_behind():
    """transformers installs its output-capturing hooks for good on the first forward asked for
    ``output_attentions``/``output_hidden_states``; a probe call that passed one left 4 hooks
    (and the mark) on a model that had none."""
    model, inputs = gpt2()
    model.set_attn_implementation("eager")
    trace = probe.trace(model, inputs, output_attentions=True)
    assert len(trace.output.attentions) == 2  # the flag reached the model
    assert _all_hooks(model) == 0
    assert not any(hasattr(m, "_output_capturing_hooks_installed") for m in model.modules())
    probe.generate(model, inputs["input_ids"][:1], max_new_tokens=2, output_hidden_states=True)
    assert _all_hooks(model) == 0
    # also when the forward raises
    def boom(*_):
        raise RuntimeError("boom")

    handle = model.transformer.h[1].register_forward_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        probe.trace(model, inputs, output_attentions=True)
    handle.remove()
    assert _all_hooks(model) == 0
    # a hook of the user's that happens to share transformers' function name stays
    def output_capturing_hook(*_):
        return None

    mine = model.transformer.h[0].register_forward_hook(output_capturing_hook)
    probe.trace(model, inputs, output_attentions=True)
    assert list(model.transformer.h[0]._forward_hooks.values()) == [output_capturing_hook]
    mine.remove()
    # a model the user hooked that way before keeps its hooks, and they still work
    expected = model(**inputs, output_attentions=True).attentions
    assert _all_hooks(model) == 4
    probe.trace(model, inputs, output_attentions=True)
    assert _all_hooks(model) == 4 and model.transformer._output_capturing_hooks_installed
    after = model(**inputs, output_attentions=True).attentions
    torch.testing.assert_close(after, expected)


def test_gradient_alignment_takes_a_model_with_its_own_decoder_vocabulary():
    """Marian with separate encoder and decoder vocabularies: the generated ids were checked
    against the encoder's embeddings and the model was said not to have made its generation."""
    from transformers import MarianConfig, MarianMTModel

    from probe.models._toy_mt import build_toy_tokenizer

    tok = build_toy_tokenizer()
    size = len(tok)
    source = max(tok("the big dog")["input_ids"]) + 1  # an encoder vocabulary smaller than V
    torch.manual_seed(0)
    cfg = MarianConfig(vocab_size=source, decoder_vocab_size=size,
                       share_encoder_decoder_embeddings=False, d_model=32, encoder_layers=1,
                       decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                       encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=32,
                       pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                       forced_eos_token_id=None)
    model = MarianMTModel(cfg).eval()
    gen = probe.generate(model, "the big dog", tokenizer=tok, max_new_tokens=3,
                         eos_token_id=None, min_new_tokens=3,
                         sequence_bias=[[[size - 1], 100.0]])
    assert int(gen.sequences.max()) == size - 1 >= source  # beyond the encoder's ids
    al = probe.gradient_alignment(model, gen)
    assert al.scores.shape == (1, 1, 3, 3) and bool(torch.isfinite(al.scores).all())
