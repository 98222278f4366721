"""Words of a batched generation are kept per item: an item whose generated tokens do not
encode back to themselves loses its words (reading them says why), the others keep theirs."""

from __future__ import annotations

import pickle

import pytest
import torch

import probe
from tests._tokenizers import sentencepiece_unigram


def _t5_pair() -> tuple[object, object]:
    from transformers import T5Config, T5ForConditionalGeneration

    tok = sentencepiece_unigram()
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
        num_heads=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)).eval()
    return model, tok


def _mixed_batch() -> tuple[object, object, probe.GenerationTrace]:
    """Item 0 writes '▁on' pieces (canonical: 'on on on' encodes to them again), item 1
    writes bare 'e' pieces ('eee' encodes to other pieces)."""
    model, tok = _t5_pair()
    on, e = tok.convert_tokens_to_ids("▁on"), tok.convert_tokens_to_ids("e")
    assert tok.unk_token_id not in (on, e)
    gen = probe.generate(model, ["The cat sat on the mat.", "The dog sat."], tokenizer=tok,
                         max_new_tokens=3, prefix_allowed_tokens_fn=lambda b, _ids: [(on, e)[b]])
    return model, tok, gen


def test_one_odd_item_keeps_the_others_words() -> None:
    model, tok, gen = _mixed_batch()
    # item 0: exact words, as the tokenizer gives them for the decoded text
    assert gen.words is not None and gen.word_ids is not None
    assert gen.words[0] == ("on", "on", "on")
    assert gen.word_ids[0] == (0, 1, 2)
    assert gen.words_missing[0] is None
    # item 1: a one-line error that says why and what to read instead
    reason = gen.words_missing[1]
    assert reason is not None and "\n" not in reason
    for read in (lambda: gen.words[1], lambda: gen.word_ids[-1], lambda: list(gen.words)):
        with pytest.raises(probe.ProbeError, match=r"batch item 1 .* not how the tokenizer "
                                                   r"writes .*gen\.generated_tokens\[1\]") as err:
            read()
        assert "\n" not in str(err.value)
    assert gen.generated_tokens[1] == ("e", "e", "e")  # what the message points at
    # comparisons and pickling treat the missing item as None
    assert gen.words == (("on", "on", "on"), None)
    assert pickle.loads(pickle.dumps(gen.words)).missing == gen.words_missing
    # word-level analyses work on item 0 and refuse item 1 with the reason
    assert probe.alignment(gen, batch_index=0).target_words == ("on", "on", "on")
    assert probe.gradient_alignment(model, gen, batch_index=0).target_words == (
        "on", "on", "on")
    for call in (lambda: probe.alignment(gen, batch_index=1),
                 lambda: probe.gradient_alignment(model, gen, batch_index=1)):
        with pytest.raises(probe.ProbeError, match=r"batch item 1 .*gen\.cross\.attentions"):
            call()


def test_every_item_exact_gives_plain_tuples() -> None:
    model, tok = _t5_pair()
    on = tok.convert_tokens_to_ids("▁on")
    gen = probe.generate(model, ["The cat sat on the mat.", "The dog sat."], tokenizer=tok,
                         max_new_tokens=2, prefix_allowed_tokens_fn=lambda _b, _ids: [on])
    assert type(gen.words) is tuple and gen.words == (("on", "on"), ("on", "on"))
    assert gen.words_missing == (None, None)


def test_decoder_only_to_trace_keeps_the_exact_items_words() -> None:
    """to_trace joins prompt and generated words per item: the odd item's generated tokens
    get no word (word id None), item 0's get theirs."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests._tokenizers import byte_level

    tok = byte_level()
    tok.padding_side = "left"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4,
                                       n_positions=64)).eval()
    the = tok.convert_tokens_to_ids("Ġthe")
    a, t = tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("t")
    assert tok.unk_token_id not in (the, a, t) and tok("at", add_special_tokens=False)[
        "input_ids"] != [a, t]  # 'a' 't' decodes to 'at', which encodes otherwise
    prompts = ["The cat sat on", "The dog"]
    first: dict[str, int] = {}  # the padded prompt length, seen at the first step
    gen = probe.generate(model, prompts, tokenizer=tok, max_new_tokens=2, eos_token_id=None,
                         prefix_allowed_tokens_fn=lambda b, ids: [the] if b == 0 else
                         [(a, t)[len(ids) - first.setdefault("n", len(ids))]])
    n = gen.num_prompt_tokens
    assert gen.generated_tokens[1] == ("a", "t")
    assert gen.words[0] == ("the", "the") and gen.words_missing[1] is not None
    trace = gen.to_trace()
    assert trace.words[0] == ("The", "cat", "sat", "on", "the")
    assert trace.word_ids[0][n:] == (4,)  # the one generated token read by the model
    assert trace.word_ids[1][n:] == (None,)
