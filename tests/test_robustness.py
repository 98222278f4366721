"""Robustness: hostile and unusual inputs give one clear ProbeError; odd but valid inputs work.

The first half is a table: each row is ``(id, callable(ctx) that must raise, message regex)``,
so a new case is one line. The second half checks what must *work*: every tokenizer family
gives clean words, pad-less tokenizers, tokenizer outputs, left padding, and captures from
several threads at once.
"""

from __future__ import annotations

import json
import os
import re
import threading
from functools import cached_property
from typing import Any, Callable

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import probe
from tests._tiny import HF_TEXT, TIMM
from tests._tokenizers import TOKENIZERS

SENTENCE = "The animal didn't cross the street because it was too tired."


class Ctx:
    """Things the error cases need, built on first use."""

    def __init__(self, tmp_path: Any, minilm: Any) -> None:
        self.tmp = tmp_path
        self.minilm, self.tok = minilm

    @cached_property
    def bert(self) -> tuple[Any, dict]:
        return HF_TEXT["bert"]()

    @cached_property
    def vit(self) -> tuple[Any, torch.Tensor]:
        return TIMM["vit"]()

    def folder(self, name: str, *, weights: bool = True, tokenizer: bool = True,
               config: dict | None = None) -> str:
        """A saved tiny BERT folder, optionally without weights or tokenizer, config edited."""
        path = str(self.tmp / name)
        model = _tiny_bert(len(TOKENIZERS["wordpiece"]()))
        if weights:
            model.save_pretrained(path)
        else:
            model.config.save_pretrained(path)
        if tokenizer:
            TOKENIZERS["wordpiece"]().save_pretrained(path)
        if config:
            file = os.path.join(path, "config.json")
            data = json.load(open(file))
            data.update(config)
            json.dump(data, open(file, "w"))
        return path


def _tiny_bert(vocab: int) -> Any:
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=64)).eval()


def _gpt2(vocab: int) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def _llama(vocab: int) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
                      bos_token_id=0, eos_token_id=0, pad_token_id=None)
    return LlamaForCausalLM(cfg).eval()


def _pickle_bomb(ctx: Ctx) -> str:
    """A folder whose pytorch_model.bin runs code when unpickled without weights_only."""
    path = ctx.folder("pickle", weights=False)

    class Bomb:
        def __reduce__(self):  # pragma: no cover - only ever executed by an unsafe loader
            return (os.system, ("touch " + os.path.join(path, "PWNED"),))

    torch.save({"embeddings.word_embeddings.weight": Bomb()},
               os.path.join(path, "pytorch_model.bin"))
    return path


def _load_pickle_bomb(ctx: Ctx) -> None:
    path = _pickle_bomb(ctx)
    try:
        probe.load_model(path)
    finally:
        assert not os.path.exists(os.path.join(path, "PWNED")), "the pickle ran code"


CASES: list[tuple[str, Callable[[Ctx], Any], str]] = [
    # ---- options: typos, booleans, duplicates
    ("typo_average_head", lambda c: probe.trace(*c.bert, average_head=True),
     r"did you mean 'average_heads'"),
    ("typo_on_timm", lambda c: probe.trace(*c.vit, layer=[0]),
     r"unknown option 'layer'.*did you mean 'layers'"),
    ("unknown_kwarg_timm", lambda c: probe.trace(*c.vit, foo=1), r"unknown option 'foo'"),
    # a HF forward takes **kwargs: a dict of forward options would pass on as one keyword
    ("forward_kwargs_dict", lambda c: probe.trace(*c.bert, forward_kwargs={"return_dict": True}),
     r"keyword arguments directly: write probe\.trace\(model, inputs, return_dict=\.\.\.\)"),
    ("heads_duplicate", lambda c: probe.trace(*c.bert, heads=[0, 0]), r"head 0 twice"),
    ("heads_duplicate_negative", lambda c: probe.trace(*c.bert, heads=[0, -4]), r"head 0 twice"),
    ("layers_duplicate_negative", lambda c: probe.trace(*c.bert, layers=[0, -3]), r"layer 0 twice"),
    ("layers_bool", lambda c: probe.trace(*c.bert, layers=[True]),
     r"layers must be a list of integers"),
    ("heads_bool", lambda c: probe.trace(*c.bert, heads=True), r"heads must be a list of integers"),
    ("chunk_size_bool", lambda c: probe.trace(*c.bert, chunk_size=True),
     r"chunk_size must be a positive"),
    ("start_layer_bool", lambda c: probe.trace(*c.bert, stream=True, start_layer=True),
     r"start_layer must be an integer"),
    # ---- text inputs
    ("empty_text", lambda c: probe.trace(c.minilm, "  ", tokenizer=c.tok),
     r"^empty text: pass a non-empty string$"),
    ("empty_text_in_batch", lambda c: probe.trace(c.minilm, ["a cat", ""], tokenizer=c.tok),
     r"empty text at index 1 of the 2 texts"),
    ("empty_text_list", lambda c: probe.trace(c.minilm, [], tokenizer=c.tok),
     r"the inputs are an empty list: pass at least one string"),
    ("lone_surrogate_text", lambda c: probe.trace(c.minilm, "it was \udcff tired", tokenizer=c.tok),
     r"not valid UTF-8.*character 7"),
    ("only_special_tokens", lambda c: probe.trace(c.minilm, "[CLS] [SEP]", tokenizer=c.tok),
     r"only special tokens"),
    ("zero_length_ids", lambda c: probe.trace(c.minilm, torch.zeros(1, 0, dtype=torch.long)),
     r"hold no tokens"),
    ("ids_outside_vocab", lambda c: probe.trace(c.minilm, torch.tensor([[101, 10**6, 102]])),
     r"outside the vocabulary.*tokenizer"),
    ("negative_ids", lambda c: probe.trace(c.minilm, torch.tensor([[101, -3, 102]])),
     r"outside the vocabulary"),
    ("float_ids", lambda c: probe.trace(c.minilm, torch.rand(1, 4)), r"integer tensor"),
    ("mask_wrong_length",
     lambda c: probe.trace(c.minilm, {"input_ids": torch.tensor([[101, 2000, 102]]),
                                                         "attention_mask": torch.ones(1, 5)}),
                                                         r"attention_mask \(1, 5\) does not match"),
    ("mask_all_zero",
     lambda c: probe.trace(c.minilm, {"input_ids": torch.tensor([[101, 2000, 102]]),
                                                     "attention_mask": torch.zeros(1, 3)}),
                                                     r"masks every token"),
    ("no_words_from_plain_dict", lambda c: probe.coref(probe.trace(
        c.minilm, dict(c.tok(SENTENCE, return_tensors="pt")), tokenizer=c.tok), "it"),
        r"tok\(text, return_tensors='pt'\)"),
    # ---- gradients inside torch.inference_mode() (no_grad is fine: probe enables grad)
    ("inference_mode_requires_grad",
     lambda c: _in_inference_mode(lambda: probe.trace(*c.bert, requires_grad=True)),
     r"needs gradients.*inference_mode"),
    ("inference_mode_gradient_method", lambda c: _in_inference_mode(lambda: probe.attribute(
        c.bert[0], c.bert[1], "saliency",
        target=lambda out, *_: out.last_hidden_state.sum((1, 2)))),
     r"needs gradients.*inference_mode"),
    ("inference_mode_gates", lambda c: _in_inference_mode(lambda: probe.trace_gates(
        __import__("timm").create_model("seresnet18").eval(), torch.randn(1, 3, 32, 32),
        requires_grad=True)),
     r"needs gradients.*inference_mode"),
    # ---- models
    ("model_name_as_model", lambda c: probe.trace("minilm", "hi"), r"load it first"),
    ("data_parallel", lambda c: probe.trace(nn.DataParallel(c.vit[0]), c.vit[1]), r"model\.module"),
    ("sequential", lambda c: probe.trace(nn.Sequential(c.vit[0]), c.vit[1]),
     r"not an nn\.Sequential"),
    ("timm_cnn", lambda c: probe.trace(__import__("timm").create_model("resnet18").eval(),
                                       torch.randn(1, 3, 32, 32)),
                                       r"convolutional network: probe.trace captures attention "
                                       r"matrices.*gradient methods"),
    ("uint8_pixels", lambda c: probe.trace(c.vit[0], (c.vit[1] * 50).clamp(0, 255).to(torch.uint8)),
     r"uint8.*normalise"),
    ("uint8_pixels_generic", lambda c: probe.adapter_for(nn.Conv2d(3, 3, 1)).prepare(
        torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), r"uint8.*normalise"),
    # ---- loading
    ("load_empty_name", lambda c: probe.load_model(""), r"non-empty"),
    ("load_unknown_name", lambda c: probe.load_model("bert base uncased"),
     r"unknown model 'bert base uncased'.*a hub id"),
    ("load_bare_hub_id_offline", lambda c: probe.load_model("bert-base-uncased"),
     r"could not load 'bert-base-uncased': it is not in the local HuggingFace cache and offline "
     r"mode is on"),
    ("load_empty_folder", lambda c: (c.tmp / "e").mkdir() or probe.load_model(str(c.tmp / "e")),
     r"is empty"),
    ("load_config_only", lambda c: probe.load_model(c.folder("cfg", weights=False)), r"no weights"),
    ("load_non_model_architecture",
     lambda c: probe.load_model(c.folder("arch", config={"architectures": ["BertTokenizer"]})),
     r"'BertTokenizer'.*not a transformers model class"),
    ("load_no_tokenizer", lambda c: probe.load_model(c.folder("notok", tokenizer=False)),
     r"no usable tokenizer"),
    ("load_remote_code", lambda c: probe.load_model(c.folder("remote", config={
        "auto_map": {"AutoModel": "modeling_x.X"}, "architectures": ["XModel"]})),
        r"auto_map.*Python API"),
    ("load_pickle_weights_only", _load_pickle_bomb, r"cannot load the model weights"),
    ("load_timm_unknown", lambda c: probe.load_model("timm:not_a_model"), r"unknown timm model"),
]


def _in_inference_mode(call: Callable[[], Any]) -> Any:
    with torch.inference_mode():
        return call()


@pytest.mark.parametrize("case_id, call, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(case_id, call, pattern, tmp_path, minilm):
    with pytest.raises(probe.ProbeError) as info:
        call(Ctx(tmp_path, minilm))
    message = str(info.value)
    assert "\n" not in message
    assert re.search(pattern, message), message


# ----------------------------------------------------------------------------- words
def _model_for(name: str, tok: Any) -> Any:
    return _tiny_bert(len(tok)) if name == "wordpiece" else _gpt2(len(tok))


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_words_are_clean_for_every_tokenizer_family(name):
    tok = TOKENIZERS[name]()
    model = _model_for(name, tok)
    for inputs in (SENTENCE, tok(SENTENCE, return_tensors="pt")):
        tr = probe.trace(model, inputs, tokenizer=tok)
        words = tr.words[0]
        assert all(w and w == w.strip() and not w.startswith(("▁", "Ġ")) for w in words), words
        assert {"animal", "street", "it", "because"} <= {w.lower() for w in words}, words
        token_words = [w for w in tr.word_ids[0] if w is not None]
        assert sorted(set(token_words)) == list(range(len(words)))  # every word has tokens
        links = probe.coref(tr, "it")
        assert links and links[0].antecedent in words


def test_tokenizer_output_gives_the_same_words_as_the_text():
    tok = TOKENIZERS["byte_level"]()
    model = _gpt2(len(tok))
    from_text = probe.trace(model, SENTENCE, tokenizer=tok)
    from_encoding = probe.trace(model, tok(SENTENCE, return_tensors="pt"), tokenizer=tok)
    assert from_encoding.words == from_text.words
    assert from_encoding.word_ids == from_text.word_ids


def test_unknown_and_mask_tokens_belong_to_words(minilm):
    model, tok = minilm
    text = "她说 [MASK] 很累, 因为它走了很久"  # mostly [UNK] for the English vocabulary
    tr = probe.trace(model, text, tokenizer=tok)
    unk_or_mask = [i for i, t in enumerate(tr.tokens[0]) if t in ("[UNK]", "[MASK]")]
    assert unk_or_mask and not tr.special_tokens_mask[0, unk_or_mask].any()
    assert all(tr.word_ids[0][i] is not None for i in unk_or_mask)
    assert tr.special_tokens_mask[0, 0] and tr.special_tokens_mask[0, -1]  # [CLS], [SEP]
    assert probe.coref(tr, "它")  # every word has tokens: no "no tokens in the trace"


# ----------------------------------------------------------------------------- padding
@pytest.mark.parametrize("build", [_gpt2, _llama], ids=["gpt2", "llama"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_padless_tokenizer_batches_equal_single_item_traces(build, side):
    tok = TOKENIZERS["byte_level"]()  # no pad token
    assert tok.pad_token is None
    tok.padding_side = side
    model = build(len(tok))
    texts = [SENTENCE, "A short one."]
    batch = probe.trace(model, texts, tokenizer=tok)
    for b, text in enumerate(texts):
        single = probe.trace(model, text, tokenizer=tok)
        real = batch.attention_mask[b].nonzero().flatten()
        got = batch.attentions[:, b][..., real, :][..., real]
        assert_close(got, single.attentions[:, 0], atol=1e-5, rtol=0)
        assert batch.words[b] == single.words[0]
        assert [batch.word_ids[b][i] for i in real.tolist()] == list(single.word_ids[0])
    assert tok.pad_token is None  # the tokenizer is not modified


def test_single_string_with_padless_tokenizer():
    tok = TOKENIZERS["llama2"]()
    tr = probe.trace(_llama(len(tok)), SENTENCE, tokenizer=tok)
    assert tr.words[0][:3] == ("The", "animal", "didn't")
    assert tr.special_tokens_mask[0, 0]  # BOS


def test_forward_keywords_still_pass_through():
    model, inputs = HF_TEXT["bert"]()
    tr = probe.trace(model, inputs, output_hidden_states=True)
    assert tr.output.hidden_states is not None


# ----------------------------------------------------------------------------- threads
def _run_threads(work: Callable[[int], Any], n: int = 3, rounds: int = 4) -> list[Any]:
    results: list[Any] = [None] * (n * rounds)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        for r in range(rounds):
            try:
                results[t * rounds + r] = work(t * rounds + r)
            except probe.ProbeError as exc:
                results[t * rounds + r] = exc
            except BaseException as exc:  # noqa: BLE001 - any other error fails the test
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "capture deadlocked"
    assert not errors, errors
    return results


def test_threads_on_one_hf_model(minilm):
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    model, tok = minilm
    impl = model.config._attn_implementation
    reference = probe.trace(model, SENTENCE, tokenizer=tok).attentions

    def work(i: int) -> Any:
        if i % 3 == 2:  # a capture that fails inside the forward pass
            return probe.trace(model, SENTENCE, tokenizer=tok, heads=[40])
        return probe.trace(model, SENTENCE, tokenizer=tok).attentions

    results = _run_threads(work)
    for i, r in enumerate(results):
        if i % 3 == 2:
            assert isinstance(r, probe.ProbeError) and "out of range" in str(r)
        else:
            assert_close(r, reference, atol=1e-6, rtol=0)
    assert model.config._attn_implementation == impl
    assert not [k for k in AttentionInterface._global_mapping if k.startswith("probe_")]
    assert not [k for k in AttentionMaskInterface._global_mapping if k.startswith("probe_")]
    with torch.no_grad():
        model(**tok(SENTENCE, return_tensors="pt"))  # a plain forward still works


def test_threads_on_one_timm_model():
    model, x = TIMM["vit"]()
    reference = probe.trace(model, x).attentions

    def work(i: int) -> Any:
        if i % 3 == 2:
            return probe.trace(model, x, heads=[40])
        return probe.trace(model, x).attentions

    for i, r in enumerate(_run_threads(work)):
        if i % 3 == 2:
            assert isinstance(r, probe.ProbeError)
        else:
            assert_close(r, reference, atol=1e-6, rtol=0)
    assert all(m.fused_attn for m in model.modules() if hasattr(m, "fused_attn"))


def test_threads_attribution_and_capture_restore_frozen_parameters():
    model, x = TIMM["vit"]()
    for p in model.patch_embed.parameters():
        p.requires_grad_(False)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    reference = probe.attribute(model, x, "saliency").scores

    def work(i: int) -> Any:
        if i % 2:
            return probe.trace(model, x).attentions
        return probe.attribute(model, x, "saliency").scores

    for i, r in enumerate(_run_threads(work, rounds=2)):
        if not i % 2:
            assert_close(r, reference, atol=1e-6, rtol=0)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags


def test_capture_inside_a_gradient_block_does_not_deadlock():
    from probe.attribution._gradient import differentiable

    model, x = TIMM["vit"]()
    done = []

    def nested() -> None:
        with differentiable(model):
            done.append(probe.trace(model, x))

    th = threading.Thread(target=nested)
    th.start()
    th.join(timeout=120)
    assert done, "a capture inside differentiable() on the same model deadlocked"


def _blocks(hold: Any, then: Any) -> bool:
    """Whether ``model_lock(then)`` on a second thread waits while this thread holds ``hold``."""
    from probe.capture._locks import model_lock

    entered = threading.Event()

    def other() -> None:
        with model_lock(then):
            entered.set()

    with model_lock(hold):
        th = threading.Thread(target=other)
        th.start()
        waited = not entered.wait(timeout=0.5)
    th.join(timeout=30)
    assert entered.is_set() and not th.is_alive(), "the second thread never got the lock"
    return waited


def test_a_wrapper_and_the_model_inside_it_take_turns():
    # a capture on Wrapper(model) and one on model switch the same attention modules' flags:
    # they must not run at once in either order (the lock used to be per object passed in)
    model, _ = TIMM["vit"]()
    wrapper = torch.nn.Sequential(model)
    assert _blocks(wrapper, model)
    assert _blocks(model, wrapper)
    assert _blocks(model.blocks[0], wrapper)  # any shared submodule
    other, _ = TIMM["vit"]()
    assert not _blocks(model, other)  # models sharing no module never wait
    assert not _blocks(object(), object())  # non-modules: locked as themselves


def test_the_lock_is_reentrant_through_a_wrapper():
    from probe.capture._locks import model_lock

    model, x = TIMM["vit"]()
    wrapper = torch.nn.Sequential(model)
    done = []

    def nested() -> None:
        with model_lock(wrapper), model_lock(model), model_lock(wrapper):
            done.append(probe.trace(model, x))

    th = threading.Thread(target=nested)
    th.start()
    th.join(timeout=120)
    assert done, "nested locks on a wrapper and its model deadlocked"
    assert _blocks(model, wrapper) is True  # and everything was released again


def test_threads_on_a_head_model_and_its_base_model_restore_the_attention_path():
    # BertForSequenceClassification and its .bert share modules and config: traced on two
    # threads at once, each switches config._attn_implementation for its forward pass
    from tests._tiny import bert_classifier

    clf, ids = bert_classifier()
    clf.config._attn_implementation = "sdpa"
    reference = probe.trace(clf.bert, ids).attentions

    def work(i: int) -> Any:
        return probe.trace(clf if i % 2 else clf.bert, ids).attentions

    for r in _run_threads(work):
        assert_close(r, reference, atol=1e-6, rtol=0)
    assert clf.config._attn_implementation == "sdpa"
    assert clf.bert.config._attn_implementation == "sdpa"
